//! `up` (and the bare command): bring the database to the latest (or `--target`) version.
//! The common case, nothing to apply, is one connection and one query, without the lock.

use crate::cli::UpArgs;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Migration, Outcome, State};
use crate::url::Target;
use crate::{connect, lock};
use std::time::Instant;

/// Runs `up`.
pub async fn run(config: &Config, target: &Target, args: &UpArgs) -> Result<()> {
    let start = Instant::now();
    log::info!("database: {target}");
    let mut db = open_for_writing(config, target).await?;
    let known = migrate::migrations(db.dialect());
    let state = current_state(&db, &known, args.target).await?;
    report_ahead(&state, config.strict)?;
    if state.pending.is_empty() && !args.dry_run {
        log::info!(
            "schema is current at version {} (nothing to apply, {} ms)",
            state.current,
            start.elapsed().as_millis()
        );
        return Ok(());
    }
    let guard = lock::acquire(&db, config.lock_timeout).await?;
    let result = apply_pending(&mut db, &known, args).await;
    let released = guard.release(&db).await;
    result.and(released)?;
    crate::schema::warn_drift(&db).await;
    log::info!("done in {} ms", start.elapsed().as_millis());
    Ok(())
}

/// Opens the target for a command that may change it: waits for PostgreSQL, creates a
/// missing SQLite file, and bounds SQLite's lock waits by `MIGRATE_LOCK_TIMEOUT`.
pub async fn open_for_writing(config: &Config, target: &Target) -> Result<Db> {
    let db = connect::open(target, config.wait_timeout, true).await?;
    if let Db::Sqlite(c) = &db {
        c.busy_timeout(config.lock_timeout)?;
    }
    Ok(db)
}

/// Reads and checks the history. A database with YogaFlow tables and no history is refused.
pub async fn current_state(db: &Db, known: &[Migration], target: Option<i32>) -> Result<State> {
    let mut history = migrate::read_history(db).await?;
    if history.is_none() {
        if let Err(e) = migrate::refuse_untracked(db).await {
            // A concurrent migrator creates the history table before (PostgreSQL) or together
            // with (SQLite) the first table: tables without history may just be its work in
            // progress. Only a second look that still finds no history means untracked.
            history = migrate::read_history(db).await?;
            if history.is_none() {
                return Err(e);
            }
        }
    }
    migrate::assess(known, history.as_deref().unwrap_or_default(), target)
}

/// A database newer than this binary: a warning (an older image after a rollback must still
/// start), or an error with `MIGRATE_STRICT=true`.
pub fn report_ahead(state: &State, strict: bool) -> Result<()> {
    if state.ahead.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = state.ahead.iter().map(|a| a.to_string()).collect();
    let msg = format!(
        "the database is at version {}, newer than this binary knows ({} unknown: {}); \
         probably an older image after a rollback",
        state.current,
        names.len(),
        names.join(", ")
    );
    if strict {
        return Err(Error::new(
            Kind::Diverged,
            format!("{msg} (MIGRATE_STRICT=true)"),
        ));
    }
    log::warn!("{msg}; continuing without changes (MIGRATE_STRICT=true makes this an error)");
    Ok(())
}

async fn apply_pending(db: &mut Db, known: &[Migration], args: &UpArgs) -> Result<()> {
    if let Db::Postgres(c) = db {
        c.batch_execute(migrate::HISTORY_DDL).await?;
    }
    // Re-read under the lock: another replica may have done the work while we waited.
    let state = current_state(db, known, args.target).await?;
    let before = state.current;
    if args.dry_run {
        return print_dry_run(db, &state).await;
    }
    if state.pending.is_empty() {
        log::info!("schema is current at version {before} (applied by another process)");
        return Ok(());
    }
    log::info!(
        "schema version {before}; applying {} migration(s)",
        state.pending.len()
    );
    let mut after = before;
    for m in &state.pending {
        match migrate::apply(db, m).await? {
            Outcome::Applied(took) => {
                log::info!("applied {m} in {:.1} ms", took.as_secs_f64() * 1000.0)
            }
            Outcome::AlreadyApplied => log::info!("{m} was applied by another process"),
        }
        after = m.version;
    }
    log::info!("schema version {before} -> {after}");
    Ok(())
}

async fn print_dry_run(db: &mut Db, state: &State) -> Result<()> {
    // SQLite: hold the write lock while printing, as a real run would.
    let _tx = match db {
        Db::Sqlite(c) => Some(migrate::immediate(c)?),
        Db::Postgres(_) => None,
    };
    if state.pending.is_empty() {
        println!(
            "-- nothing to apply: schema is at version {}",
            state.current
        );
    }
    for m in &state.pending {
        println!("-- {m} (would apply)\n{}", m.up.trim_end());
    }
    Ok(())
}
