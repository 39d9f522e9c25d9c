//! The seam between the commands and the two dialects, as sqlx's `Migrate` trait is for its
//! drivers: an open [`Database`] offers the few primitives every command needs (history,
//! the migration lock, a script run atomically with its history change, the live and the
//! expected schema, row counts), each implemented once per dialect in `postgres/` and
//! `sqlite/`. Commands are written once over these and never match on the dialect.

pub mod postgres;
pub mod retry;
pub mod sqlite;

use crate::error::{Error, Kind, Result};
pub use crate::migrations::Dialect;
use crate::migrations::{Applied, Migration};
use crate::schema::{Difference, Schema};
use crate::url::DbUrl;
use std::time::Duration;

/// How migrators keep out of each other's way on PostgreSQL (`MIGRATE_LOCK`). All three take
/// the same advisory lock key, so migrators in different modes still keep out of each
/// other's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Safe behind any pooler, with no configuration: each step takes the transaction
    /// advisory lock inside its own transaction and reads its history row again under it (as
    /// `Transaction`). Where the connection proves to be one server session (the backend pid
    /// announced at login is the one a statement runs on), the session lock is held for the
    /// whole run as well (as `Session`): one migrator at a time, and what a `-- no-transaction`
    /// script needs. A URL that names a pooler by the usual signs (a host name holding
    /// `pooler`, port 6432 or 6543) is taken as `Transaction` outright.
    #[default]
    Auto,
    /// A session advisory lock held for the whole run, and nothing else: one migrator at a
    /// time, and the no-op start takes no lock at all. Needs one server session (a direct
    /// connection or a session pooler).
    Session,
    /// A transaction advisory lock in each step's transaction, with the history read again
    /// under it, and no session state at all: what a transaction-mode pooler (PgBouncer,
    /// Supabase, Neon) can keep, since it hands each transaction, not each session, one
    /// server connection. A `-- no-transaction` script is refused.
    Transaction,
}

/// How a command opens its database.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// How long to wait for a PostgreSQL server to accept us (`MIGRATE_WAIT_TIMEOUT`).
    pub wait: Duration,
    /// Whether a missing SQLite file may be created (commands that only read refuse one).
    pub create: bool,
    /// How long a change may wait for others in all (`MIGRATE_LOCK_TIMEOUT`): SQLite's
    /// `busy_timeout`, and on PostgreSQL the bound on a migration's retried table-lock waits.
    /// `None` for readers (rusqlite's 5 s default on SQLite).
    pub lock_wait: Option<Duration>,
    /// How long one attempt of a migration waits for a table lock before giving way to the
    /// app's traffic and retrying (PostgreSQL's `lock_timeout`; `MIGRATE_DDL_LOCK_TIMEOUT`).
    pub ddl_lock_timeout: Duration,
    /// How long a PostgreSQL connection may go without a sign of life from the server before
    /// it is given up (`MIGRATE_NET_TIMEOUT`).
    pub net_timeout: Duration,
    /// `MIGRATE_LOCK`.
    pub lock_mode: LockMode,
}

impl LockMode {
    /// The mode for `url`: `Auto` stays `Auto` (decided by the connection's behaviour),
    /// except that a URL naming a pooler by the usual signs is `Transaction` at once.
    pub fn for_url(self, url: &crate::url::PgUrl) -> LockMode {
        if self != LockMode::Auto {
            return self;
        }
        let pooled_host = url.hosts.iter().any(|h| {
            matches!(h, crate::url::Host::Tcp(name) if name.to_ascii_lowercase().contains("pooler"))
        });
        let pooled_port = url.ports.iter().any(|p| *p == 6432 || *p == 6543);
        if pooled_host || pooled_port {
            LockMode::Transaction
        } else {
            LockMode::Auto
        }
    }
}

impl OpenOptions {
    /// Options for a reader that waits `wait` for the server (other bounds at their defaults).
    pub fn reading(wait: Duration) -> OpenOptions {
        OpenOptions {
            wait,
            create: false,
            lock_wait: None,
            ddl_lock_timeout: Duration::from_secs(3),
            net_timeout: Duration::from_secs(30),
            lock_mode: LockMode::Auto,
        }
    }
}

/// A script run atomically with its history change: the script and the change commit
/// together or not at all.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Run the migration and record it (skipped if it is already recorded).
    Apply(&'a Migration),
    /// Run the migration's undo script and delete its history row (skipped if it is not
    /// recorded). Unless `allow_loss`, a table the script drops must be empty, checked inside
    /// the transaction with the table locked: rows the app inserted since `down` counted are
    /// never dropped unconfirmed.
    Undo {
        /// The migration to undo.
        migration: &'a Migration,
        /// `--yes` / `MIGRATE_ALLOW_DATA_LOSS`.
        allow_loss: bool,
    },
    /// Adopt a database made before this tool: record the migrations without running them,
    /// leaving the database as `up` would have made it (see [`Adoption`]).
    Adopt(&'a Adoption<'a>),
}

/// A baseline decided above the seam (`crate::adopt`), for each dialect to carry out in one
/// transaction with the history it records: PostgreSQL's SERIAL ids become identity columns
/// and constraints and indexes take the migrations' names; SQLite's tables are rebuilt as the
/// migrations make them; with `repair`, what differs for real but loses nothing is brought
/// to the contract too, and what no repair covers is refused.
#[derive(Debug, Clone, Copy)]
pub struct Adoption<'a> {
    /// The migrations to record, oldest first.
    pub migrations: &'a [Migration],
    /// Also bring real differences to the contract where nothing is lost (`--repair`).
    pub repair: bool,
    /// Whether it commits, is rehearsed, or is only planned.
    pub mode: AdoptMode,
    /// The zone a `timestamp` column's values are in (`--assume-time-zone`), for making it the
    /// contract's `timestamptz`; without it, no such repair.
    pub time_zone: Option<&'a str>,
}

/// How an [`Adoption`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptMode {
    /// Done and committed.
    Commit,
    /// Done and rolled back: the log says what would change (`baseline --dry-run`).
    Rehearse,
    /// Nothing changed at all, not even inside the transaction: each change it would make is
    /// logged and the rows each would reject are looked for (reads only). What a refusing
    /// `baseline` shows as the repair plan, without taking the locks the changes need.
    PlanOnly,
}

/// The refusal of a repair that left differences no `what` (repair, rebuild) covers.
pub(crate) fn refuse_unrepaired(left: &[Difference], what: &str) -> Result<()> {
    let left: Vec<&Difference> = left.iter().filter(|d| !d.tolerated()).collect();
    if left.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = left.iter().map(ToString::to_string).collect();
    Err(Error::new(
        Kind::SchemaDiffers,
        format!(
            "--repair cannot bring the schema to the contract without losing or guessing: {} \
             difference(s) no {what} covers: {}; nothing was changed",
            left.len(),
            list.join("; ")
        ),
    ))
}

/// How a [`Step`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done now, in this time.
    Done(Duration),
    /// Another process did it meanwhile (SQLite, where the lock is per step).
    AlreadyDone,
}

/// An open connection of either dialect.
pub enum Database {
    /// A PostgreSQL session.
    Postgres(postgres::Postgres),
    /// A SQLite file, reached through its worker thread.
    Sqlite(sqlite::Sqlite),
}

/// Calls the same method on whichever dialect `$db` is.
macro_rules! each {
    ($db:expr, $d:ident => $call:expr) => {
        match $db {
            Database::Postgres($d) => $call,
            Database::Sqlite($d) => $call,
        }
    };
}

impl Database {
    /// Opens the database `url` names.
    pub async fn open(url: &DbUrl, options: OpenOptions) -> Result<Database> {
        Ok(match url {
            DbUrl::Postgres(pg) => {
                Database::Postgres(postgres::Postgres::connect(pg, options).await?)
            }
            DbUrl::Sqlite(s) => Database::Sqlite(sqlite::Sqlite::open(s, options).await?),
        })
    }

    /// The dialect of this connection.
    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Postgres(_) => Dialect::Postgres,
            Database::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Names of the ordinary tables in the working schema (`public` on PostgreSQL), sorted.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        each!(self, d => d.table_names().await)
    }

    /// The history table's rows, oldest first; `None` when the table does not exist.
    pub async fn read_history(&self) -> Result<Option<Vec<Applied>>> {
        each!(self, d => d.read_history().await)
    }

    /// Creates the history table if it is missing (PostgreSQL; SQLite creates it inside each
    /// step's transaction).
    pub async fn ensure_history(&self) -> Result<()> {
        each!(self, d => d.ensure_history().await)
    }

    /// Runs `f` holding the migration lock (waiting up to `timeout` for another migrator),
    /// and releases it whatever `f` returns. On SQLite the lock is the database's own write
    /// lock, taken by each [`Step`].
    pub async fn with_lock<T>(
        &mut self,
        timeout: Duration,
        f: impl AsyncFnOnce(&mut Database) -> Result<T>,
    ) -> Result<T> {
        each!(&mut *self, d => d.lock(timeout).await)?;
        let result = f(self).await;
        let released = each!(&mut *self, d => d.unlock().await);
        let value = result?;
        released.map(|()| value)
    }

    /// Runs `step` and its history change in one transaction.
    pub async fn run_step(&mut self, step: Step<'_>) -> Result<Outcome> {
        each!(self, d => d.run_step(step).await)
    }

    /// The live schema.
    pub async fn live_schema(&self) -> Result<Schema> {
        each!(self, d => d.live_schema().await)
    }

    /// The schema migrations `1..=version` produce in this dialect, built from the migrations
    /// themselves on a scratch copy that is thrown away.
    pub async fn expected_schema(&self, version: i32) -> Result<Schema> {
        let ms = crate::migrations::up_to(self.dialect(), version);
        self.schema_of(&ms).await
    }

    /// The schema `migrations` (of this dialect, in order) produce, built on a scratch copy
    /// that is thrown away.
    pub async fn schema_of(&self, migrations: &[Migration]) -> Result<Schema> {
        each!(self, d => d.schema_of(migrations).await)
    }

    /// The highest id each of `tables` ever handed out, where the database remembers more than
    /// its rows show (ids of deleted rows): PostgreSQL's identity sequence, SQLite's
    /// `sqlite_sequence` for a table made with AUTOINCREMENT. Tables it knows nothing of are
    /// left out.
    pub async fn id_high_water(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        each!(self, d => d.id_high_water(tables).await)
    }

    /// Which deployment applied each recorded version (`RAILWAY_DEPLOYMENT_ID`,
    /// `RAILWAY_GIT_COMMIT_SHA`), where the history says; a history table made before those
    /// columns existed says nothing.
    pub async fn read_deployments(
        &self,
    ) -> Result<std::collections::BTreeMap<i32, crate::migrations::Deployment>> {
        each!(self, d => d.read_deployments().await)
    }

    /// The other client sessions of this database that connected before the newest step
    /// applied below version `below`, each described (application, address, since when): on
    /// PostgreSQL, what tells that an app started before then is still running. SQLite keeps
    /// no such list: none.
    pub async fn sessions_before(&self, below: i32) -> Result<Vec<String>> {
        match self {
            Database::Postgres(d) => d.sessions_before(below).await,
            Database::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// `count(*)` of each of `tables`.
    pub async fn row_counts(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        each!(self, d => d.row_counts(tables).await)
    }
}

/// `name` as a quoted SQL identifier (both dialects use double quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::LockMode;

    #[test]
    fn auto_lock_mode_follows_the_url() {
        let mode = |url: &str| {
            let crate::url::DbUrl::Postgres(pg) = crate::url::parse(url, &|_| None).unwrap().url
            else {
                unreachable!()
            };
            LockMode::Auto.for_url(&pg)
        };
        let cases = [
            (
                "postgresql://u@postgres.railway.internal:5432/railway",
                LockMode::Auto,
            ),
            (
                "postgresql://u@aws-0-eu.pooler.supabase.com:6543/postgres",
                LockMode::Transaction,
            ),
            (
                "postgresql://u@ep-x-pooler.eu-central-1.aws.neon.tech/db",
                LockMode::Transaction,
            ),
            ("postgresql://u@10.0.0.5:6432/db", LockMode::Transaction),
            ("postgresql://u@db.example.com/db", LockMode::Auto),
        ];
        for (url, want) in cases {
            assert_eq!(mode(url), want, "{url}");
        }
        assert_eq!(
            LockMode::Session.for_url(&match crate::url::parse("postgresql://h:6432/d", &|_| None)
                .unwrap()
                .url
            {
                crate::url::DbUrl::Postgres(p) => *p,
                _ => unreachable!(),
            }),
            LockMode::Session
        );
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(super::quote_ident("poses"), "\"poses\"");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
