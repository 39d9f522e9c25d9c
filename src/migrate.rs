//! Bringing a database to this binary's migrations over the [`Database`] seam: where it stands
//! ([`current_state`]), refusing what must not be migrated, applying what is pending under the
//! migration lock ([`upgrade`]), and checking the result for drift. The runner is ours because
//! refinery's SQLite path commits a migration and its history row separately, and its errors
//! hide the position and SQLSTATE. What a migration and a history row *are* is
//! [`crate::migrations`]'s, re-exported here.

use crate::db::{Database, Outcome, Step};
use crate::error::{Error, Kind, Result};
pub use crate::migrations::*;
use std::time::Duration;

/// Refuses to migrate a database that holds YogaFlow tables but no history: running the
/// migrations would fail with "already exists" half-way; `baseline` is the way in.
pub async fn refuse_untracked(db: &Database) -> Result<()> {
    let found: Vec<String> = db
        .table_names()
        .await?
        .into_iter()
        .filter(|t| APP_TABLES.contains(&t.as_str()))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Kind::Diverged,
        format!(
            "the database already has YogaFlow tables ({}) but no {HISTORY_TABLE}: it was made \
             before yogaflow-migrate (for example by Alembic). Adopt it with `yogaflow-migrate \
             baseline`, which checks its schema and records the migrations without running them, \
             or let the deploy do that with MIGRATE_BASELINE=true",
            found.join(", ")
        ),
    ))
}

/// Reads and checks the history against this binary's migrations, up to `to` (all when
/// `None`). A database with YogaFlow tables and no history is refused.
pub async fn current_state(db: &Database, to: Option<i32>) -> Result<State> {
    let known = migrations(db.dialect());
    let mut history = db.read_history().await?;
    if history.is_none() {
        if let Err(e) = refuse_untracked(db).await {
            // A concurrent migrator creates the history table before (PostgreSQL) or together
            // with (SQLite) the first table: tables without history may just be its work in
            // progress. Only a second look that still finds no history means untracked.
            history = db.read_history().await?;
            if history.is_none() {
                return Err(e);
            }
        }
    }
    assess(&known, history.as_deref().unwrap_or_default(), to)
}

/// The highest applied version this binary knows (0 when none).
pub async fn current_version(db: &Database) -> Result<i32> {
    let state = current_state(db, None).await?;
    Ok(highest(&state.applied))
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

/// Applies what is pending up to `to`, under the migration lock (waiting up to
/// `lock_timeout`), each migration with its history row in one transaction. The history is
/// read again under the lock: another replica may have done the work while we waited.
/// Returns the versions before and after.
pub async fn upgrade(
    db: &mut Database,
    to: Option<i32>,
    lock_timeout: Duration,
) -> Result<(i32, i32)> {
    db.with_lock(lock_timeout, async |db: &mut Database| {
        db.ensure_history().await?;
        let state = current_state(db, to).await?;
        let before = state.current;
        if state.pending.is_empty() {
            log::info!("schema is current at version {before} (applied by another process)");
            return Ok((before, before));
        }
        log::info!(
            "schema version {before}; applying {} migration(s)",
            state.pending.len()
        );
        let mut after = before;
        for m in &state.pending {
            match db.run_step(Step::Apply(m)).await? {
                Outcome::Done(took) => {
                    log::info!("applied {m} in {:.1} ms", took.as_secs_f64() * 1000.0)
                }
                Outcome::AlreadyDone => log::info!("{m} was applied by another process"),
            }
            after = m.version;
        }
        log::info!("schema version {before} -> {after}");
        Ok((before, after))
    })
    .await
}

/// Logs differences between the live schema and the expected one as warnings (after `up`).
/// Never fails the run: the migrations did commit.
pub async fn warn_drift(db: &Database) {
    let result = async {
        let version = highest(db.read_history().await?.as_deref().unwrap_or_default());
        let latest = migrations(db.dialect()).last().map_or(0, |m| m.version);
        let expected = db.expected_schema(version.min(latest)).await?;
        Ok::<_, Error>(crate::schema::diff(
            &expected,
            &db.live_schema().await?,
            true,
        ))
    }
    .await;
    match result {
        Ok(diffs) => {
            for d in diffs.iter().filter(|d| !d.tolerated()) {
                log::warn!("schema drift: {d}");
            }
        }
        Err(e) => log::warn!("could not check the schema for drift: {}", e.report()),
    }
}
