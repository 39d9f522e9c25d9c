//! The embedded migrations and their history: which are applied, which are pending, whether
//! the history still fits this binary, and applying them so that each migration and its
//! history row commit together, on both dialects.
//!
//! refinery supplies the migration naming rules, the checksum and the history table's layout
//! (`refinery_schema_history`, so refinery itself and people reading the database see the
//! usual table); the runner is ours because refinery's SQLite path commits a migration and its
//! history row separately, and its errors hide the position and SQLSTATE.

use crate::db::{Database, Dialect, Outcome, Step};
use crate::error::{Error, Kind, Result};
use std::time::Duration;

/// One embedded migration file pair as the build script found it.
pub(crate) struct EmbeddedSql {
    stem: &'static str,
    up: &'static str,
    down: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// The history table: refinery's default name, kept so other tools and people find it.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// refinery's history table layout (`int4` versions).
pub const HISTORY_DDL: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history (\
    version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255))";

/// A migration this binary carries.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The number after `V`.
    pub version: i32,
    /// The name after `__`.
    pub name: String,
    /// The SQL that applies it.
    pub up: &'static str,
    /// The SQL that undoes it (`V<n>__<name>.down.sql`).
    pub down: &'static str,
    /// refinery's checksum of name, version and SQL.
    pub checksum: u64,
}

impl std::fmt::Display for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// The migrations embedded for `dialect`, oldest first.
pub fn migrations(dialect: Dialect) -> Vec<Migration> {
    let files = match dialect {
        Dialect::Postgres => POSTGRES,
        Dialect::Sqlite => SQLITE,
    };
    files
        .iter()
        .map(|f| {
            let m = refinery::Migration::unapplied(f.stem, f.up)
                .unwrap_or_else(|e| panic!("embedded migration {} is misnamed: {e}", f.stem));
            Migration {
                version: m.version(),
                name: m.name().to_string(),
                up: f.up,
                down: f.down,
                checksum: m.checksum(),
            }
        })
        .collect()
}

impl Migration {
    /// The tables this migration's undo script drops, in order.
    pub fn dropped_tables(&self) -> Vec<String> {
        dropped_tables(self.down)
    }

    /// The history row recording this migration as applied at `applied_on`.
    pub fn as_applied(&self, applied_on: &str) -> Applied {
        Applied {
            version: self.version,
            name: self.name.clone(),
            applied_on: applied_on.to_string(),
            checksum: self.checksum,
        }
    }
}

/// A row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Migration version.
    pub version: i32,
    /// Migration name.
    pub name: String,
    /// When it was applied (RFC 3339 text, as refinery writes it).
    pub applied_on: String,
    /// Checksum recorded when it was applied.
    pub checksum: u64,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// Where a database stands against this binary's migrations.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Highest applied version (0 when none).
    pub current: i32,
    /// Applied migrations this binary knows.
    pub applied: Vec<Applied>,
    /// Known migrations not yet applied (up to `to`), oldest first.
    pub pending: Vec<Migration>,
    /// Applied versions newer than anything this binary knows (an older image rolled back).
    pub ahead: Vec<Applied>,
}

/// Compares the history with the embedded migrations. A changed or renamed applied migration,
/// an unknown version below the newest known one, or a gap (a migration missing below an
/// applied one) is [`Kind::Diverged`]: running anything then could corrupt the schema.
pub fn assess(known: &[Migration], applied: &[Applied], to: Option<i32>) -> Result<State> {
    let latest = known.last().map_or(0, |m| m.version);
    if let Some(t) = to {
        if t < 0 || (t > 0 && !known.iter().any(|m| m.version == t)) {
            return Err(Error::config(format!(
                "--target {t} is not a migration version of this binary (latest is {latest})"
            )));
        }
    }
    let mut state = State {
        current: applied.iter().map(|a| a.version).max().unwrap_or(0),
        ..State::default()
    };
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            Some(m) if m.name != a.name || m.checksum != a.checksum => {
                return Err(Error::new(
                    Kind::Diverged,
                    format!(
                        "migration {m} was changed after it was applied (history has {a} with checksum {}, \
                         this binary {m} with checksum {}): an applied migration must never be edited; \
                         restore it and add a new migration instead",
                        a.checksum, m.checksum
                    ),
                ));
            }
            Some(_) => state.applied.push(a.clone()),
            None if a.version > latest => state.ahead.push(a.clone()),
            None => {
                return Err(Error::new(
                    Kind::Diverged,
                    format!("history holds migration {a}, which this binary does not have"),
                ))
            }
        }
    }
    let highest_known_applied = state.applied.iter().map(|a| a.version).max().unwrap_or(0);
    for m in known {
        if applied.iter().any(|a| a.version == m.version) {
            continue;
        }
        if m.version < highest_known_applied {
            return Err(Error::new(
                Kind::Diverged,
                format!(
                    "migration {m} is not applied, but the later V{highest_known_applied} is: the history has a gap"
                ),
            ));
        }
        if to.is_none_or(|t| m.version <= t) {
            state.pending.push(m.clone());
        }
    }
    Ok(state)
}

/// The query both dialects read the history with.
pub const HISTORY_SELECT: &str =
    "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version";

/// One history row, read as text in the order of [`HISTORY_SELECT`].
pub fn parse_history_row(r: [Option<String>; 4]) -> Result<Applied> {
    let [version, name, applied_on, checksum] = r;
    let bad = |what: &str, v: &Option<String>| {
        Error::new(
            Kind::Diverged,
            format!("{HISTORY_TABLE} holds a row with an unreadable {what}: {v:?}"),
        )
    };
    Ok(Applied {
        version: version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("version", &version))?,
        checksum: checksum
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("checksum", &checksum))?,
        name: name.unwrap_or_default(),
        applied_on: applied_on.unwrap_or_default(),
    })
}

/// The statement recording `m` as applied now, in refinery's format.
pub fn record_sql(m: &Migration) -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of the current time");
    // Names are `\w+` and numbers are ours: nothing here needs quoting beyond the literals.
    format!(
        "INSERT INTO {HISTORY_TABLE} (version, name, applied_on, checksum) VALUES ({}, '{}', '{now}', '{}')",
        m.version, m.name, m.checksum
    )
}

/// The tables an undo script drops (`DROP TABLE [IF EXISTS] name`), in order.
fn dropped_tables(down_sql: &str) -> Vec<String> {
    let words: Vec<String> = down_sql
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('"').to_string())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i].eq_ignore_ascii_case("drop")
            && words
                .get(i + 1)
                .is_some_and(|w| w.eq_ignore_ascii_case("table"))
        {
            let mut j = i + 2;
            if words.get(j).is_some_and(|w| w.eq_ignore_ascii_case("if")) {
                j += 2;
            }
            if let Some(name) = words.get(j) {
                out.push(name.clone());
            }
            i = j;
        }
        i += 1;
    }
    out
}

/// The refusal of an undo that would drop `table` with its `rows` (found inside the step's
/// transaction: inserted since `down` counted).
pub fn refused_loss(m: &Migration, table: &str, rows: &str) -> Error {
    Error::new(
        Kind::DataLoss,
        format!(
            "refusing to delete data: undoing {m} would drop {table}, which now holds {rows} \
             row(s) (written since down counted them); this step was not changed. Pass --yes \
             (or MIGRATE_ALLOW_DATA_LOSS=true) to confirm"
        ),
    )
}

/// The statement deleting `m`'s history row (its undo ran).
pub fn delete_sql(m: &Migration) -> String {
    format!("DELETE FROM {HISTORY_TABLE} WHERE version = {}", m.version)
}

/// The history table, created if missing, with every one of `ms` recorded (baseline).
pub fn record_all_sql(ms: &[Migration]) -> String {
    let mut sql = format!("{HISTORY_DDL};\n");
    for m in ms {
        sql.push_str(&record_sql(m));
        sql.push_str(";\n");
    }
    sql
}

/// The tables the migrations create, for telling a YogaFlow database without history
/// (one the Python backend made) from an empty one.
pub const APP_TABLES: &[&str] = &[
    "users",
    "poses",
    "sequences",
    "sequence_poses",
    "practice_sessions",
    "practice_history",
];

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
    Ok(state.applied.iter().map(|a| a.version).max().unwrap_or(0))
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

/// Adopts a database made before this tool (by Alembic or `create_all`) at `version`: checks
/// that it has no history and that its schema is, by meaning, the one `version` should have,
/// then records 1..=`version` without running them, in one transaction. The caller holds the
/// migration lock.
pub async fn adopt(db: &mut Database, version: i32, dry_run: bool, repair: bool) -> Result<()> {
    if let Some(history) = db.read_history().await? {
        if !history.is_empty() {
            return Err(Error::new(
                Kind::Diverged,
                format!(
                    "the database already has a migration history (version {}): baseline is only for databases without one",
                    history.iter().map(|a| a.version).max().unwrap_or(0)
                ),
            ));
        }
    }
    let expected = db.expected_schema(version).await?;
    let live = db.live_schema().await?;
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
    let later = later_tables(&expected, &live);
    let diffs = crate::schema::diff(&expected, &live, true);
    let adopted: Vec<_> = migrations(db.dialect())
        .into_iter()
        .filter(|m| m.version <= version)
        .collect();
    let unrepairable: Vec<&String> = diffs.iter().filter(|d| !repairable(d)).collect();
    if !unrepairable.is_empty() || (repair && !later.is_empty()) {
        let all: Vec<String> = later.iter().chain(diffs.iter()).cloned().collect();
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "refusing to baseline at version {version}: the schema differs in {} place(s): \
                 {}; {} of them no repair covers (it would lose or have to guess something): \
                 {}; nothing was changed",
                all.len(),
                all.join("; "),
                unrepairable.len() + later.len(),
                unrepairable
                    .iter()
                    .map(|s| s.as_str())
                    .chain(later.iter().map(|s| s.as_str()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if !later.is_empty() || (!diffs.is_empty() && !repair) {
        // The exact plan `--repair` would carry out: rehearsed (and rolled back) so that the
        // log shows its statements, or the row that would stop it.
        let plan = if !later.is_empty() {
            String::new()
        } else {
            let rehearsal = db
                .run_step(Step::Record {
                    migrations: &adopted,
                    dry_run: true,
                    repair: true,
                    plan_only: true,
                })
                .await;
            match rehearsal {
                Ok(_) => "; `baseline --repair` brings it to the contract with the statements \
                          logged above as \"repair:\" (nothing is lost)"
                    .to_string(),
                Err(e) => format!("; `baseline --repair` cannot: {e}"),
            }
        };
        let all: Vec<String> = later.into_iter().chain(diffs).collect();
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "refusing to baseline at version {version}: the schema differs in {} place(s): \
                 {}{plan}",
                all.len(),
                all.join("; ")
            ),
        ));
    }
    let repairing = repair && !diffs.is_empty();
    db.run_step(Step::Record {
        migrations: &adopted,
        dry_run,
        repair: repairing,
        plan_only: false,
    })
    .await
    .map_err(|e| match repairing {
        true => Error::new(
            e.kind(),
            format!(
                "{e} (the schema differs in {} place(s): {})",
                diffs.len(),
                diffs.join("; ")
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

/// Whether `baseline --repair` can make a difference (a line of [`crate::schema::diff`]) as
/// the contract wants without losing or guessing anything: something missing that the
/// migrations define (index, check, foreign key, unique constraint, default, NOT NULL), `json`
/// where the contract has `jsonb`, another `varchar` length. Not: a missing table or column,
/// anything extra, another primary key, type, default or index definition.
pub fn repairable(difference: &str) -> bool {
    let varchar = |t: &str| t.starts_with("character varying(") || t.starts_with("varchar(");
    if let Some((_, change)) = difference.split_once(": type changed from ") {
        return match change.split_once(" to ") {
            Some(("jsonb", "json")) => true,
            Some((want, have)) => varchar(want) && varchar(have),
            None => false,
        };
    }
    if difference.starts_with("table ") || difference.starts_with("primary key ") {
        return false;
    }
    if let Some((_, change)) = difference.split_once(": default changed from ") {
        return match change.rsplit_once(" to ") {
            Some((_, "none")) => true,
            // The json default of a json column that becomes jsonb: set again with it.
            Some((want, have)) => want.ends_with("::jsonb") && want.strip_suffix('b') == Some(have),
            None => false,
        };
    }
    if difference.starts_with("column ") {
        return difference.ends_with(": changed from NOT NULL to NULL");
    }
    difference.ends_with(": missing")
}

/// YogaFlow tables the database has that `expected` (a version's schema) does not: tables of
/// later versions. A database holding them is not at that version, whatever else matches.
fn later_tables(expected: &crate::schema::Schema, live: &crate::schema::Schema) -> Vec<String> {
    live.tables
        .keys()
        .filter(|t| APP_TABLES.contains(&t.as_str()) && !expected.tables.contains_key(*t))
        .map(|t| format!("table {t}: belongs to a later version"))
        .collect()
}

/// The newest version whose schema a database without history has, by meaning (tables of
/// later versions disqualify a version); or, when none matches, the closest version and its
/// differences.
pub async fn version_by_meaning(
    db: &Database,
) -> Result<std::result::Result<i32, (i32, Vec<String>)>> {
    let live = db.live_schema().await?;
    let mut closest: Option<(i32, Vec<String>)> = None;
    for m in migrations(db.dialect()).iter().rev() {
        let expected = db.expected_schema(m.version).await?;
        let mut diffs = later_tables(&expected, &live);
        diffs.extend(crate::schema::diff(&expected, &live, true));
        if diffs.is_empty() {
            return Ok(Ok(m.version));
        }
        if closest.as_ref().is_none_or(|(_, d)| diffs.len() < d.len()) {
            closest = Some((m.version, diffs));
        }
    }
    Ok(Err(closest.unwrap_or_default()))
}

/// The schema version of a database read as a source (`export`, `copy --from`): its history's,
/// or, for one the backend made before this tool (no history), the version its schema has by
/// meaning. Never writes to it.
pub async fn source_version(db: &Database) -> Result<i32> {
    if db.read_history().await?.is_some() {
        return current_version(db).await;
    }
    let tables = db.table_names().await?;
    if !tables.iter().any(|t| APP_TABLES.contains(&t.as_str())) {
        return Ok(0);
    }
    match version_by_meaning(db).await? {
        Ok(v) => {
            log::info!("the source has no migration history; its schema is version {v} by meaning");
            Ok(v)
        }
        Err((v, diffs)) => Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "it has no migration history and its schema is no version of this binary by \
                 meaning; closest is version {v}, which differs in {} place(s): {}",
                diffs.len(),
                diffs.join("; ")
            ),
        )),
    }
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
                adopt(db, v, false, false).await
            }
            Err((v, diffs)) => Err(Error::new(
                Kind::SchemaDiffers,
                format!(
                    "MIGRATE_BASELINE=true, but the schema is no version of this binary by \
                     meaning; closest is version {v}, which differs in {} place(s): {}; nothing \
                     was changed (`yogaflow-migrate baseline --version N` names the differences)",
                    diffs.len(),
                    diffs.join("; ")
                ),
            )),
        }
    })
    .await
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

/// 1-based line and column of the 1-based character position `pos` in `sql`.
pub fn line_col(sql: &str, pos: usize) -> (usize, usize) {
    let before: String = sql.chars().take(pos.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_repair_covers() {
        for (difference, want) in [
            ("index ix_poses_difficulty on poses: missing", true),
            ("check on practice_sessions (rating <= 5 and rating >= 1): missing", true),
            ("foreign key sequences(user_id) -> users(id) ON DELETE CASCADE: missing", true),
            ("unique constraint poses(name): missing", true),
            ("column poses.benefits: type changed from jsonb to json", true),
            ("column users.email: type changed from character varying(255) to character varying(300)", true),
            ("column poses.created_at: changed from NOT NULL to NULL", true),
            ("column users.is_active: default changed from true to none", true),
            ("column users.is_active: default changed from true to false", false),
            ("column poses.metadata: default changed from '{}'::jsonb to '{}'::json", true),
            ("column poses.legacy: extra", false),
            ("column poses.name: missing", false),
            ("column poses.id: type changed from integer to bigint", false),
            ("column poses.notes: changed from NULL to NOT NULL", false),
            ("table tags: missing", false),
            ("primary key of poses: changed from (id) to (name)", false),
            ("check on poses (difficulty <> '') : extra", false),
            ("index ix_poses_difficulty on poses: changed from (difficulty) to (name)", false),
            ("index ix_extra on poses: extra", false),
        ] {
            assert_eq!(repairable(difference), want, "{difference}");
        }
    }

    #[test]
    fn both_dialects_have_the_same_versions_and_names() {
        let names = |d| {
            migrations(d)
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Dialect::Postgres), names(Dialect::Sqlite));
        assert_eq!(names(Dialect::Postgres).len(), 5);
    }

    #[test]
    fn assess_table() {
        let known = migrations(Dialect::Sqlite);
        let all: Vec<Applied> = known.iter().map(|m| m.as_applied("")).collect();

        let s = assess(&known, &[], None).unwrap();
        assert_eq!((s.current, s.pending.len()), (0, 5));
        let s = assess(&known, &all[..2], None).unwrap();
        assert_eq!((s.current, s.pending[0].version), (2, 3));
        let s = assess(&known, &[], Some(3)).unwrap();
        assert_eq!(s.pending.len(), 3);
        let s = assess(&known, &all, None).unwrap();
        assert!(s.pending.is_empty() && s.ahead.is_empty());

        let mut ahead = all.clone();
        ahead.push(Applied {
            version: 99,
            name: "future".into(),
            applied_on: String::new(),
            checksum: 1,
        });
        let s = assess(&known, &ahead, None).unwrap();
        assert_eq!(s.ahead.len(), 1);

        let mut changed = all.clone();
        changed[2].checksum ^= 1;
        let e = assess(&known, &changed, None).unwrap_err();
        assert_eq!(e.kind(), Kind::Diverged);
        assert!(e.to_string().contains("V3__sequences was changed"), "{e}");

        let gap = vec![all[0].clone(), all[2].clone()];
        let e = assess(&known, &gap, None).unwrap_err();
        assert!(e.to_string().contains("V2__poses is not applied"), "{e}");

        assert_eq!(
            assess(&known, &[], Some(42)).unwrap_err().kind(),
            Kind::Config
        );
    }

    #[test]
    fn finds_dropped_tables() {
        assert_eq!(
            dropped_tables("DROP TABLE sequence_poses;\nDROP TABLE sequences;\n"),
            vec!["sequence_poses", "sequences"]
        );
        assert_eq!(
            dropped_tables("drop table if exists \"users\";"),
            vec!["users"]
        );
        assert!(dropped_tables("DROP INDEX ix_a;").is_empty());
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("abc", 1), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 1));
        assert_eq!(line_col("ab\ncd", 5), (2, 2));
    }
}
