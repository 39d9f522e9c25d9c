//! Command-line interface: the subcommands and flags, each with its help text.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const ENV_HELP: &str = "\
Environment:
  DATABASE_URL              postgresql://, postgres://, postgresql+asyncpg://, ..., sqlite:///rel.db,
                            sqlite:////abs.db (unset: sqlite:///./yogaflow.db, an error on Railway)
  PGSSLMODE, PGSSLROOTCERT, PGCONNECT_TIMEOUT, PGAPPNAME, PGHOST, PGPORT, PGUSER, PGPASSWORD,
  PGDATABASE                libpq's fallbacks for what DATABASE_URL does not say
  MIGRATE_WAIT_TIMEOUT      seconds to wait for the database (default 60)
  MIGRATE_LOCK_TIMEOUT      seconds to wait for another migrator, and for a migration's table
                            locks in all (default 120)
  MIGRATE_NET_TIMEOUT       seconds a PostgreSQL connection may stay silent before it is given
                            up (default 30)
  MIGRATE_DDL_LOCK_TIMEOUT  seconds one migration attempt waits for a table lock before it
                            gives way to the app and retries (default 3)
  MIGRATE_STRICT            true: a database newer than this binary is an error (default false)
  MIGRATE_ALLOW_DATA_LOSS   true: same as `down --yes`
  MIGRATE_BASELINE          true: `up` adopts a database made before this tool (as `baseline`)
  MIGRATE_LOCK              auto (default), session, or transaction (behind a pooler in
                            transaction mode: PgBouncer, Supabase, Neon)
  MIGRATE_LOG_FORMAT        plain (default) or json
  RAILWAY_DEPLOYMENT_ID, RAILWAY_GIT_COMMIT_SHA
                            recorded in the history with each step applied
  RUST_LOG                  log filter (default info)
";

/// yogaflow-migrate: brings YogaFlow's database to the schema this binary carries, operates
/// it, and moves its data. With no command it runs `up`.
#[derive(Parser, Debug)]
#[command(name = "yogaflow-migrate", version, about, long_about = None,
    after_help = format!("{ENV_HELP}\n{}", crate::error::EXIT_CODES_HELP))]
pub struct Cli {
    /// What to do (default: up).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands (each `--help` ends with the exit-code table).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply pending migrations and exit (what the container runs at start).
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Up(UpArgs),
    /// Show the schema version, each migration as applied or pending, and history problems.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// Compare the live schema with the one the recorded version should have.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Verify(VerifyArgs),
    /// Undo migrations, newest first, each with the removal of its history row.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Down(DownArgs),
    /// Adopt a database made before this tool: check its schema, then record migrations as applied.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Baseline(BaselineArgs),
    /// Apply the deferred contract steps, once the app version that predates them is gone.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Complete(CompleteArgs),
    /// Write every table's rows to one JSON document.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Export(ExportArgs),
    /// Load a JSON document written by `export`, all or nothing.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Import(ImportArgs),
    /// Copy every row from another database into DATABASE_URL (or --to), all or nothing.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Copy(CopyArgs),
    /// Write the next migration for both dialects with its undo: from the models' database
    /// (`--from`), or empty to fill by hand; print the files.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    New(NewArgs),
    /// Check PostgreSQL migrations for what blocks a busy table or breaks the running app.
    #[command(after_help = crate::error::EXIT_CODES_HELP)]
    Lint(LintArgs),
}

/// `lint` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct LintArgs {
    /// The PostgreSQL migration files to check (default: every `.sql` file in DIR/postgres).
    #[arg(value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// The migrations folder, holding `postgres/` (run from the repository root).
    #[arg(long, value_name = "DIR", default_value = "sql")]
    pub dir: PathBuf,
}

/// `new` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct NewArgs {
    /// What the migration does, as a name: letters, digits and `_` (it becomes
    /// `V<n>__<NAME>.sql`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The migrations folder, holding `postgres/` and `sqlite/` (run from the repository root).
    #[arg(long, value_name = "DIR", default_value = "sql")]
    pub dir: PathBuf,
    /// Write the migration from a database whose schema is the one wanted (the backend's
    /// models' `create_all` on a scratch PostgreSQL or SQLite; any DATABASE_URL form): both
    /// dialects and their undo, compared with what DIR's migrations make. Without it, the four
    /// files are written empty, to fill by hand.
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// A column the models renamed, as TABLE.OLD=NEW (repeatable): its data is kept. A column
    /// gone and another new in one table is refused unless named here.
    #[arg(long, value_name = "TABLE.OLD=NEW", requires = "from")]
    pub rename: Vec<crate::generate::Rename>,
}

/// `up` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct UpArgs {
    /// Stop after this version instead of applying everything.
    #[arg(long = "target", value_name = "VERSION")]
    pub to_version: Option<i32>,
    /// Print what would be applied, SQL included, and change nothing (the lock is still taken).
    #[arg(long)]
    pub dry_run: bool,
}

/// `status` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct StatusArgs {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit 8 when migrations are pending (off by default: pending is not an error).
    #[arg(long)]
    pub exit_code: bool,
}

/// `verify` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct VerifyArgs {
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `down` flags: exactly one of --steps, --to, --all.
#[derive(Args, Debug, Default, Clone)]
#[command(group(clap::ArgGroup::new("how_far").required(true).multiple(false)))]
pub struct DownArgs {
    /// Undo this many migrations.
    #[arg(long, value_name = "N", group = "how_far")]
    pub steps: Option<u32>,
    /// Undo down to this version (it stays applied; 0 undoes everything).
    #[arg(long, value_name = "VERSION", group = "how_far")]
    pub to: Option<i32>,
    /// Undo every migration.
    #[arg(long, group = "how_far")]
    pub all: bool,
    /// Confirm dropping tables that hold rows (also MIGRATE_ALLOW_DATA_LOSS=true).
    #[arg(long)]
    pub yes: bool,
}

/// `baseline` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct BaselineArgs {
    /// Record migrations 1..=VERSION as applied (default: the latest).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<i32>,
    /// Do everything in a transaction that is rolled back, logging what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Bring real differences to the contract where nothing is lost: a missing index, check,
    /// foreign key or default, json to jsonb, NOT NULL where no row is NULL (on SQLite, by
    /// rebuilding the table).
    #[arg(long)]
    pub repair: bool,
    /// With --repair: the time zone a `timestamp` column's values are in, so that it can become
    /// the contract's `timestamptz` (PostgreSQL; they carry no zone, and none is guessed).
    #[arg(long, value_name = "ZONE", requires = "repair")]
    pub assume_time_zone: Option<String>,
}

/// `complete` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct CompleteArgs {
    /// How long to wait, in seconds, for the sessions that connected before the expand steps
    /// were applied (the previous app version's) to end (default 0: refuse at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
    /// Apply even though such sessions are connected (a pooler's or an admin's, known not to
    /// be the previous app version's).
    #[arg(long)]
    pub force: bool,
}

/// `export` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct ExportArgs {
    /// Where to write the JSON ("-" for standard output).
    #[arg(long, short, value_name = "FILE", default_value = "data_export.json")]
    pub out: PathBuf,
}

/// `import` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct ImportArgs {
    /// The JSON document to load ("-" for standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Delete the rows the target holds first (in the same transaction).
    #[arg(long)]
    pub replace: bool,
}

/// `copy` flags.
#[derive(Args, Debug, Default, Clone)]
pub struct CopyArgs {
    /// Source database URL (same forms as DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Target database URL (default: DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Delete the rows the target holds first (in the same transaction).
    #[arg(long)]
    pub replace: bool,
    /// Skip the row-count and checksum comparison after the copy.
    #[arg(long)]
    pub no_verify: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
