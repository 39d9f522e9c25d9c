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

/// What [`upgrade`] does with contract steps (`-- phase: contract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contracts {
    /// Leave them pending, deferred, while later expand steps are applied: the app version
    /// still serving during a deploy needs what they remove. `up` on PostgreSQL.
    Defer,
    /// Apply them in order with the rest: `complete`; `up` on SQLite, where one app version
    /// serves a development database; a transfer's target, which no app serves yet.
    Apply,
}

impl Contracts {
    /// What `up` does: defer on PostgreSQL, apply on SQLite.
    pub fn for_up(d: Dialect) -> Contracts {
        match d {
            Dialect::Postgres => Contracts::Defer,
            Dialect::Sqlite => Contracts::Apply,
        }
    }
}

impl State {
    /// The pending migrations to apply now, oldest first.
    pub fn to_apply(&self, c: Contracts) -> Vec<&Migration> {
        self.pending
            .iter()
            .filter(|m| c == Contracts::Apply || !m.is_contract())
            .collect()
    }

    /// With contract steps deferred: a pending expand step that comes after a pending contract
    /// step, which it may depend on (a column re-added after the contract step drops it, a
    /// constraint dropped after it adds it). Not applied out of order: the deploy stops until
    /// `complete` has run.
    pub fn refuse_out_of_order(&self, c: Contracts) -> Result<()> {
        let Some(first) = self.pending.iter().find(|m| m.is_contract()) else {
            return Ok(());
        };
        let later = self
            .pending
            .iter()
            .find(|m| !m.is_contract() && m.version > first.version);
        match (c, later) {
            (Contracts::Defer, Some(e)) => Err(Error::new(
                Kind::Pending,
                format!(
                    "{e} cannot be applied: it comes after {first}, a contract step still \
                     deferred, which it may depend on. Run `yogaflow-migrate complete` once the \
                     app version that predates {first} is gone (after the deploy that brought it \
                     succeeded), then deploy again; nothing was applied"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The pending contract steps (deferred by `up` on PostgreSQL until `complete`).
    pub fn deferred(&self) -> Vec<&Migration> {
        self.pending.iter().filter(|m| m.is_contract()).collect()
    }
}

/// Says which contract steps wait, and what applies them.
pub fn log_deferred(state: &State) {
    for m in state.deferred() {
        log::info!(
            "{m} deferred: a contract step, which would break the app version still serving; \
             `yogaflow-migrate complete` applies it once that version is gone"
        );
    }
}

/// Applies what is pending up to `to` (contract steps as `contracts` says), under the
/// migration lock (waiting up to `lock_timeout`), each migration with its history row in one
/// transaction. The history is read again under the lock: another replica may have done the
/// work while we waited. Returns the versions before and after.
pub async fn upgrade(
    db: &mut Database,
    to: Option<i32>,
    lock_timeout: Duration,
    contracts: Contracts,
) -> Result<(i32, i32)> {
    db.with_lock(lock_timeout, async |db: &mut Database| {
        db.ensure_history().await?;
        let state = current_state(db, to).await?;
        let before = state.current;
        state.refuse_out_of_order(contracts)?;
        let pending = state.to_apply(contracts);
        if contracts == Contracts::Defer {
            log_deferred(&state);
        }
        if pending.is_empty() {
            log::info!("schema is current at version {before} (applied by another process)");
            return Ok((before, before));
        }
        log::info!(
            "schema version {before}; applying {} migration(s)",
            pending.len()
        );
        let mut after = before;
        for m in pending {
            match db.run_step(Step::Apply(m)).await? {
                Outcome::Done(took) => {
                    log::info!("applied {m} in {:.1} ms", took.as_secs_f64() * 1000.0)
                }
                Outcome::AlreadyDone => log::info!("{m} was applied by another process"),
            }
            after = after.max(m.version);
        }
        log::info!("schema version {before} -> {after}");
        Ok((before, after))
    })
    .await
}

/// The schema the applied migrations this binary knows make, in version order: a deferred
/// contract step's changes are not in it (a database between expand and contract has both
/// the old and the new column, and the sync triggers).
pub async fn expected_schema(db: &Database, applied: &[Applied]) -> Result<crate::schema::Schema> {
    let ms: Vec<Migration> = migrations(db.dialect())
        .into_iter()
        .filter(|m| applied.iter().any(|a| a.version == m.version))
        .collect();
    db.schema_of(&ms).await
}

/// Logs differences between the live schema and the expected one as warnings (after `up`).
/// Never fails the run: the migrations did commit.
pub async fn warn_drift(db: &Database) {
    let result = async {
        let applied = db.read_history().await?.unwrap_or_default();
        let expected = expected_schema(db, &applied).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: i32, up: &'static str) -> Migration {
        Migration {
            version,
            name: format!("m{version}"),
            up,
            down: "",
            checksum: 0,
        }
    }

    /// Deferred contract steps wait; an expand step after one is not applied out of order.
    #[test]
    fn an_expand_step_after_a_deferred_contract_step_waits_for_complete() {
        let contract = "-- phase: contract\nALTER TABLE t DROP COLUMN a;";
        let state = State {
            pending: vec![m(6, "ALTER TABLE t ADD COLUMN b int;"), m(7, contract)],
            ..State::default()
        };
        let apply: Vec<i32> = state
            .to_apply(Contracts::Defer)
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(apply, [6]);
        assert!(state.refuse_out_of_order(Contracts::Defer).is_ok());
        let later = State {
            pending: vec![m(7, contract), m(8, "ALTER TABLE t ADD COLUMN a int;")],
            ..State::default()
        };
        let e = later.refuse_out_of_order(Contracts::Defer).unwrap_err();
        assert_eq!(e.kind(), Kind::Pending);
        assert!(
            e.to_string()
                .contains("V8__m8 cannot be applied: it comes after V7__m7"),
            "{e}"
        );
        assert!(later.refuse_out_of_order(Contracts::Apply).is_ok());
        assert_eq!(later.to_apply(Contracts::Apply).len(), 2);
    }
}
