//! Adoption, decided once for both dialects: which version a database made before this tool
//! (by Alembic or `create_all`) is at by meaning, whether it may be adopted there, what a
//! repair may bring and what it may not, and the plan a refusal shows. Carrying a decided
//! [`Adoption`] out (renames, repairs, table rebuilds) is each dialect's, behind the seam
//! (`db/postgres/adopt.rs`, `db/sqlite/rebuild.rs`).

use crate::db::{AdoptMode, Adoption, Database, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, highest, APP_TABLES};
use crate::schema::{Difference, Schema};
use std::time::Duration;

/// Adopts a database made before this tool at `version`: checks that it has no history and
/// that its schema is, by meaning, the one `version` should have (or, with `repair`, differs
/// only where a repair loses nothing), then records 1..=`version` without running them, in
/// one transaction. The caller holds the migration lock.
pub async fn adopt(
    db: &mut Database,
    version: i32,
    dry_run: bool,
    repair: bool,
    time_zone: Option<&str>,
) -> Result<()> {
    refuse_history(db).await?;
    let expected = db.expected_schema(version).await?;
    let live = db.live_schema().await?;
    log_others(&expected, &live);
    let later = later_tables(&expected, &live);
    let diffs = managed(crate::schema::diff(&expected, &live, true));
    let migrations = migrate::up_to(db.dialect(), version);
    refuse_unrepairable(version, &later, &diffs, repair, time_zone)?;
    if !later.is_empty() || (!diffs.is_empty() && !repair) {
        return Err(refuse_with_plan(db, version, &migrations, &later, &diffs).await);
    }
    let repairing = repair && !diffs.is_empty();
    let adoption = Adoption {
        migrations: &migrations,
        repair: repairing,
        mode: if dry_run {
            AdoptMode::Rehearse
        } else {
            AdoptMode::Commit
        },
        time_zone,
    };
    db.run_step(Step::Adopt(&adoption))
        .await
        .map_err(|e| match repairing {
            true => Error::new(
                e.kind(),
                format!(
                    "{e} (the schema differs in {} place(s): {})",
                    diffs.len(),
                    joined(&diffs)
                ),
            ),
            false => e,
        })?;
    if dry_run {
        log::info!(
            "dry run: baseline would record migrations 1 to {version} as applied and make the \
             changes above; all of it was rolled back, nothing changed"
        );
    } else {
        log::info!("baselined: migrations 1 to {version} recorded as applied without running them");
    }
    Ok(())
}

/// Baseline is only for a database without history.
async fn refuse_history(db: &Database) -> Result<()> {
    match db.read_history().await? {
        Some(history) if !history.is_empty() => Err(Error::new(
            Kind::Diverged,
            format!(
                "the database already has a migration history (version {}): baseline is only \
                 for databases without one",
                highest(&history)
            ),
        )),
        _ => Ok(()),
    }
}

/// Names the tables outside the YogaFlow schema, which adoption leaves alone.
fn log_others(expected: &Schema, live: &Schema) {
    let others: Vec<&str> = live
        .tables
        .keys()
        .filter(|t| !expected.tables.contains_key(*t) && !APP_TABLES.contains(&t.as_str()))
        .map(|s| s.as_str())
        .collect();
    if !others.is_empty() {
        log::info!(
            "tables outside the YogaFlow schema are left alone: {}",
            others.join(", ")
        );
    }
}

/// The differences adoption manages: the app's own additions it works with (see
/// [`Difference::tolerated`]) are named in the log and left as they are.
fn managed(diffs: Vec<Difference>) -> Vec<Difference> {
    let (tolerated, managed): (Vec<Difference>, Vec<Difference>) =
        diffs.into_iter().partition(Difference::tolerated);
    if !tolerated.is_empty() {
        log::info!(
            "not managed, the app's own (left as they are): {}",
            joined(&tolerated)
        );
    }
    managed
}

fn joined(diffs: &[Difference]) -> String {
    diffs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses what no repair covers (it would lose or have to guess something), and, with
/// `repair`, tables of later versions.
fn refuse_unrepairable(
    version: i32,
    later: &[Difference],
    diffs: &[Difference],
    repair: bool,
    time_zone: Option<&str>,
) -> Result<()> {
    let assumed = |d: &Difference| d.needs_assumption().is_some() && time_zone.is_some();
    let unrepairable: Vec<&Difference> = diffs
        .iter()
        .filter(|d| !d.repairable() && !assumed(d))
        .collect();
    if unrepairable.is_empty() && (!repair || later.is_empty()) {
        return Ok(());
    }
    let all: Vec<Difference> = later.iter().chain(diffs).cloned().collect();
    let blocking: Vec<Difference> = unrepairable.into_iter().chain(later).cloned().collect();
    let flags: Vec<&str> = blocking
        .iter()
        .filter_map(Difference::needs_assumption)
        .collect();
    let flags = match flags.first() {
        Some(flag) => {
            format!(" (with {flag}, --repair can: the values carry no zone, and none is guessed)")
        }
        None => String::new(),
    };
    Err(Error::new(
        Kind::SchemaDiffers,
        format!(
            "refusing to baseline at version {version}: the schema differs in {} place(s): {}; \
             {} of them no repair covers (it would lose or have to guess something): {}{flags}; \
             nothing was changed",
            all.len(),
            joined(&all),
            blocking.len(),
            joined(&blocking)
        ),
    ))
}

/// The refusal of a database that differs where `--repair` could mend it (or holds tables of a
/// later version), with the exact plan `--repair` would carry out: rehearsed without changing
/// anything, so that the log shows its statements, or the row that would stop it.
async fn refuse_with_plan(
    db: &mut Database,
    version: i32,
    migrations: &[migrate::Migration],
    later: &[Difference],
    diffs: &[Difference],
) -> Error {
    let plan = if !later.is_empty() {
        String::new()
    } else {
        let adoption = Adoption {
            migrations,
            repair: true,
            mode: AdoptMode::PlanOnly,
            time_zone: None,
        };
        match db.run_step(Step::Adopt(&adoption)).await {
            Ok(_) => "; `baseline --repair` brings it to the contract with the statements \
                      logged above as \"repair:\" (nothing is lost)"
                .to_string(),
            Err(e) => format!("; `baseline --repair` cannot: {e}"),
        }
    };
    let all: Vec<Difference> = later.iter().chain(diffs).cloned().collect();
    Error::new(
        Kind::SchemaDiffers,
        format!(
            "refusing to baseline at version {version}: the schema differs in {} place(s): \
             {}{plan}",
            all.len(),
            joined(&all)
        ),
    )
}

/// YogaFlow tables the database has that `expected` (a version's schema) does not: tables of
/// later versions. A database holding them is not at that version, whatever else matches.
fn later_tables(expected: &Schema, live: &Schema) -> Vec<Difference> {
    live.tables
        .keys()
        .filter(|t| APP_TABLES.contains(&t.as_str()) && !expected.tables.contains_key(*t))
        .map(|t| Difference::LaterTable { table: t.clone() })
        .collect()
}

/// The newest version whose schema a database without history has, by meaning (tables of
/// later versions disqualify a version); or, when none matches, the closest version and its
/// differences.
pub async fn version_by_meaning(
    db: &Database,
) -> Result<std::result::Result<i32, (i32, Vec<Difference>)>> {
    newest_version(db, |d| !d.tolerated()).await
}

/// The newest version at which none of the differences `counts` keeps remain (tables of later
/// versions always count); or the nearest version, by how many remain, and those.
async fn newest_version(
    db: &Database,
    counts: impl Fn(&Difference) -> bool,
) -> Result<std::result::Result<i32, (i32, Vec<Difference>)>> {
    let live = db.live_schema().await?;
    let mut nearest: Option<(i32, Vec<Difference>)> = None;
    for m in migrate::migrations(db.dialect()).iter().rev() {
        let expected = db.expected_schema(m.version).await?;
        let mut left = later_tables(&expected, &live);
        left.extend(
            crate::schema::diff(&expected, &live, true)
                .into_iter()
                .filter(|d| counts(d)),
        );
        if left.is_empty() {
            return Ok(Ok(m.version));
        }
        if nearest.as_ref().is_none_or(|(_, d)| left.len() < d.len()) {
            nearest = Some((m.version, left));
        }
    }
    Ok(Err(nearest.unwrap_or_default()))
}

/// The schema version of a database read as a source (`export`, `copy --from`): its history's,
/// or, for one the backend made before this tool (no history), the newest version whose
/// tables and columns it has ([`version_by_structure`]: what its data needs, never its
/// defaults, checks, indexes or names). `readable`: whether values of a column type can be
/// read. Never writes to it.
pub async fn source_version(db: &Database, readable: &dyn Fn(&str) -> bool) -> Result<i32> {
    if db.read_history().await?.is_some() {
        return migrate::current_version(db).await;
    }
    let tables = db.table_names().await?;
    if !tables.iter().any(|t| APP_TABLES.contains(&t.as_str())) {
        return Ok(0);
    }
    match version_by_structure(db, readable).await? {
        Ok(v) => {
            log::info!(
                "the source has no migration history; its tables and columns are those of \
                 version {v}"
            );
            Ok(v)
        }
        Err((v, blocking)) => Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "it has no migration history, and its tables and columns are no version of \
                 this binary's; the nearest is version {v}, for which it lacks {} thing(s): {}",
                blocking.len(),
                joined(&blocking)
            ),
        )),
    }
}

/// The newest version whose tables and columns a database has, with types whose values are
/// `readable` (tables of a later version disqualify a version: reading at it would leave them
/// behind); or, when none, the nearest version and exactly what blocks reading it there.
pub async fn version_by_structure(
    db: &Database,
    readable: &dyn Fn(&str) -> bool,
) -> Result<std::result::Result<i32, (i32, Vec<Difference>)>> {
    newest_version(db, |d| d.blocks_reading(readable)).await
}

/// `MIGRATE_BASELINE=true` on a database with YogaFlow tables and no history: under the lock
/// (several replicas may start at once), unless another replica adopted it meanwhile, find
/// the newest version whose schema the database has, by meaning, and adopt it there; `up` then
/// applies the rest.
pub async fn adopt_on_deploy(db: &mut Database, lock_timeout: Duration) -> Result<()> {
    db.with_lock(lock_timeout, async |db: &mut Database| {
        if db.read_history().await?.is_some() {
            log::info!("another process adopted the database meanwhile");
            return Ok(());
        }
        match version_by_meaning(db).await? {
            Ok(v) => {
                log::info!(
                    "MIGRATE_BASELINE=true: the schema is version {v} by meaning; adopting it"
                );
                adopt(db, v, false, false, None).await
            }
            Err((v, diffs)) => Err(no_version_on_deploy(db, v, diffs).await?),
        }
    })
    .await
}

/// Why `MIGRATE_BASELINE=true` adopts nothing, told by structure: the version whose tables
/// and columns the database has and what differs from it there (what `baseline --repair` may
/// mend), or the nearest version by structure and exactly what it lacks for it.
async fn no_version_on_deploy(db: &Database, v: i32, diffs: Vec<Difference>) -> Result<Error> {
    let why = match version_by_structure(db, &|_| true).await? {
        Ok(at) => {
            let diffs = if at == v {
                diffs
            } else {
                let expected = db.expected_schema(at).await?;
                managed(crate::schema::diff(
                    &expected,
                    &db.live_schema().await?,
                    true,
                ))
            };
            format!(
                "its tables and columns are those of version {at}, from which it differs in {} \
                 place(s): {}; nothing was changed (`yogaflow-migrate baseline --repair` brings \
                 what loses nothing to the contract, and names the rest)",
                diffs.len(),
                joined(&diffs)
            )
        }
        Err((at, blocking)) => format!(
            "the nearest version by structure is {at}, for which it lacks {} thing(s): {}; \
             nothing was changed",
            blocking.len(),
            joined(&blocking)
        ),
    };
    Ok(Error::new(
        Kind::SchemaDiffers,
        format!(
            "MIGRATE_BASELINE=true, but the schema is no version of this binary by meaning; {why}"
        ),
    ))
}
