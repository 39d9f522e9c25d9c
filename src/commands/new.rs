//! `new NAME`: the four files of the next migration (up and undo, PostgreSQL and SQLite) at
//! the version after the highest in either dialect, each opening with what belongs in it;
//! with `--from URL`, written from the models' database: compared with what the folder's
//! migrations make and planned by `generate`. Works on the source tree: the files are
//! embedded by the next build.

use crate::cli::NewArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::generate::files::File;
use crate::migrations::{Dialect, Migration};
use crate::schema::logical::logical;
use crate::schema::Schema;
use std::path::{Path, PathBuf};

/// The existing migrations of one dialect folder: (version, name).
fn existing(dir: &Path) -> Result<Vec<(u32, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::config(format!(
            "{}: not a migrations folder (run from the repository root, or pass --dir)",
            dir.display()
        ))
        .with_source(e)
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let file = entry?.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        if stem.ends_with(".down") {
            continue;
        }
        let parsed = stem
            .strip_prefix('V')
            .and_then(|s| s.split_once("__"))
            .and_then(|(v, name)| Some((v.parse::<u32>().ok()?, name.to_string())));
        if let Some(p) = parsed {
            out.push(p);
        }
    }
    Ok(out)
}

/// What each file says at its top.
fn header(dialect: &str, undo: bool, stem: &str, previous: u32) -> String {
    let never = "-- Never edit this file once it has been deployed: its checksum is recorded in \
                 every database,\n-- and one changed byte stops every deploy. Fix forward with \
                 a new migration.\n";
    match (dialect, undo) {
        ("postgres", false) => format!(
            "-- {stem} (PostgreSQL): what `up` runs, in one transaction with its history row.\n\
             -- Each statement waits at most MIGRATE_DDL_LOCK_TIMEOUT for a table lock, then the\n\
             -- migration gives way to the app and is retried. On a table with rows, prefer\n\
             -- forms that do not block it: a new column without NOT NULL (or with a default),\n\
             -- foreign keys NOT VALID then VALIDATE CONSTRAINT, no type changes in place;\n\
             -- `yogaflow-migrate lint` checks for those. For CREATE INDEX CONCURRENTLY, make\n\
             -- `-- no-transaction` the first line of this file and of its undo.\n\
             {never}\n"
        ),
        ("postgres", true) => format!(
            "-- Undo of {stem} (PostgreSQL): run by `down`, in one transaction with the removal of\n\
             -- its history row. It must leave the schema exactly as V{previous} made it (`verify`\n\
             -- checks). A DROP TABLE of a table with rows is refused unless `--yes`.\n{never}\n"
        ),
        (_, false) => format!(
            "-- {stem} (SQLite): the same change as the PostgreSQL file, for development databases;\n\
             -- run by `up` in one BEGIN IMMEDIATE transaction with its history row. SQLite's\n\
             -- ALTER TABLE only adds, renames and drops columns: anything else is a table\n\
             -- rebuild (https://www.sqlite.org/lang_altertable.html, the 12 steps).\n{never}\n"
        ),
        (_, true) => format!(
            "-- Undo of {stem} (SQLite): run by `down` in one transaction with the removal of its\n\
             -- history row; it must leave the schema exactly as V{previous} made it.\n{never}\n"
        ),
    }
}

/// Runs `new`: the empty files to fill by hand, or, with `--from`, the migration written from
/// the models' database.
pub async fn run(args: &NewArgs, config: &Config) -> Result<()> {
    let name = args.name.trim();
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::config(format!(
            "migration name '{name}': use letters, digits and '_' (at most 100), e.g. add_pose_tags"
        )));
    }
    let highest = highest(&args.dir, name)?;
    let files = match &args.from {
        None => {
            let stem = format!("V{}__{name}", highest + 1);
            let mut files = Vec::new();
            for d in ["postgres", "sqlite"] {
                for undo in [false, true] {
                    let suffix = if undo { ".down.sql" } else { ".sql" };
                    files.push(File {
                        path: format!("{d}/{stem}{suffix}"),
                        text: header(d, undo, &stem, highest),
                    });
                }
            }
            files
        }
        Some(from) => match generated(args, config, from, highest, name).await? {
            Some(files) => files,
            None => return Ok(()),
        },
    };
    write_all(&args.dir, &files)?;
    log::info!(
        "created migration V{}: build (`cargo build --release`) so the binary embeds it; `up` \
         applies it",
        highest + 1
    );
    Ok(())
}

/// The highest version in either dialect's folder; Err if `name` is taken.
fn highest(dir: &Path, name: &str) -> Result<u32> {
    let mut highest = 0;
    for d in ["postgres", "sqlite"] {
        for (version, existing_name) in existing(&dir.join(d))? {
            if existing_name == name {
                return Err(Error::config(format!(
                    "a migration named {name} exists already: V{version}__{name} in {}",
                    dir.join(d).display()
                )));
            }
            highest = highest.max(version);
        }
    }
    Ok(highest)
}

/// Writes `files` under `dir`, never over an existing file; on a failure, removes what it
/// wrote. Prints each path.
fn write_all(dir: &Path, files: &[File]) -> Result<()> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for file in files {
            let path = dir.join(&file.path);
            // create_new: a file of that name is never overwritten.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| {
                    Error::config(format!("cannot create {}", path.display())).with_source(e)
                })?;
            written.push(path);
            use std::io::Write as _;
            f.write_all(file.text.as_bytes())?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    for path in &written {
        crate::outln!("{}", path.display())?;
    }
    Ok(())
}

/// The migration's files from `--from`, or None when the models' schema is already the one
/// the migrations make (said, and nothing written).
async fn generated(
    args: &NewArgs,
    config: &Config,
    from: &str,
    highest: u32,
    name: &str,
) -> Result<Option<Vec<File>>> {
    let started = std::time::Instant::now();
    let url = crate::config::parse_url(from)?;
    let pg_files = from_dir(&args.dir, Dialect::Postgres)?;
    let lite_files = from_dir(&args.dir, Dialect::Sqlite)?;
    let db = Database::open(&url, config.for_reading()).await?;
    let d = db.dialect();
    let models = logical(d, &db.live_schema().await?);
    let mine = if d == Dialect::Postgres {
        &pg_files
    } else {
        &lite_files
    };
    let made = logical(d, &db.schema_of(mine).await?);
    let lite_made = logical(
        Dialect::Sqlite,
        &tokio::task::spawn_blocking(move || crate::db::sqlite::scratch_schema(&lite_files))
            .await
            .map_err(|e| Error::internal("building the SQLite schema").with_source(e))??,
    );
    if d == Dialect::Postgres {
        refuse_disagreement(&made, &lite_made, highest)?;
    }
    let changes = crate::generate::plan(&made, &models, &args.rename)?;
    if changes.is_empty() {
        log::info!(
            "nothing to generate: the schema of {url} is the one the migrations in {} make \
             (V{highest})",
            args.dir.display()
        );
        return Ok(None);
    }
    for c in &changes {
        log::info!("{}", c.describe());
    }
    let files = crate::generate::files::files(&changes, highest + 1, name, &lite_made)
        .map_err(|e| Error::config(format!("cannot write this change for both dialects: {e}; write this migration by hand (`yogaflow-migrate new NAME`)")))?;
    report_lint(&pg_files, &files);
    let contract: Vec<&str> = files
        .iter()
        .filter(|f| f.path.starts_with("postgres/") && !crate::lint::is_undo(&f.path))
        .filter(|f| crate::script::is_contract(&f.text))
        .map(|f| {
            f.path
                .trim_start_matches("postgres/")
                .trim_end_matches(".sql")
        })
        .collect();
    if !contract.is_empty() {
        log::warn!(
            "{}: contract step(s) (`-- phase: contract`): they would break the app version \
             still serving, so `up` leaves them on PostgreSQL for `yogaflow-migrate complete`, \
             run once that version is gone (docs/migrations.md, \"Changes without downtime\")",
            contract.join(", ")
        );
    }
    log::info!("planned in {} ms", started.elapsed().as_millis());
    Ok(Some(files))
}

/// The two dialects' migrations must agree before a change is written for both.
fn refuse_disagreement(pg: &Schema, lite: &Schema, version: u32) -> Result<()> {
    let differences = crate::schema::diff(pg, lite, false);
    if differences.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
    Err(Error::config(format!(
        "the postgres and sqlite migrations disagree at V{version} (postgres -> sqlite): {}; \
         make them agree first",
        list.join("; ")
    )))
}

/// Says which statements carry a `lint: allow` marker and why, and any finding `lint` has,
/// each file told the schema the migrations before it leave (`existing`: the folder's).
fn report_lint(existing: &[Migration], files: &[File]) {
    let mut ups: Vec<&str> = existing.iter().map(|m| m.up).collect();
    for f in files.iter().filter(|f| f.path.starts_with("postgres/")) {
        let undo = crate::lint::is_undo(&f.path);
        // An undo is told its own version too: its up came just before it.
        let schema = crate::lint::Schema::after(ups.iter().copied());
        if !undo {
            ups.push(&f.text);
        }
        for finding in crate::lint::lint_with(&f.text, undo, &schema) {
            match &finding.allowed {
                Some(reason) if !undo => log::warn!(
                    "{} line {}: {} is allowed: {reason}",
                    f.path,
                    finding.line,
                    finding.rule
                ),
                Some(_) => {}
                None => log::warn!(
                    "{} line {}: {}: {}",
                    f.path,
                    finding.line,
                    finding.rule,
                    finding.why()
                ),
            }
        }
    }
}

/// The migrations in `dir/<dialect>`, as files on disk (not the ones this binary embeds: the
/// next one is written before it is built).
pub fn from_dir(dir: &Path, d: Dialect) -> Result<Vec<Migration>> {
    let folder = dir.join(d.name());
    let mut out = Vec::new();
    for (version, name) in existing(&folder)? {
        let stem = format!("V{version}__{name}");
        let read = |suffix: &str| -> Result<&'static str> {
            let path = folder.join(format!("{stem}{suffix}"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(format!("cannot read {}", path.display())).with_source(e)
            })?;
            // One command's worth of files, kept for its whole run.
            Ok(Box::leak(text.into_boxed_str()))
        };
        let up = read(".sql")?;
        out.push(Migration {
            version: version as i32,
            name,
            up,
            down: read(".down.sql").unwrap_or(""),
            checksum: 0,
        });
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}
