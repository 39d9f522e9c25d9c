//! The embedded migrations and the history model, pure: which files this binary carries per
//! dialect, what a history row says, whether a history still fits the binary ([`assess`]), and
//! the SQL that records or deletes a history row. No database is reached from here; running
//! them over a database is `migrate`'s.
//!
//! refinery supplies the migration naming rules, the checksum and the history table's layout
//! (`refinery_schema_history`, so refinery itself and people reading the database see the
//! usual table).

use crate::error::{Error, Kind, Result};

/// Which SQL dialect a database speaks: each has its own set of migrations under `sql/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The folder name under `sql/`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// One embedded migration file pair as the build script found it.
pub(crate) struct EmbeddedSql {
    stem: &'static str,
    up: &'static str,
    down: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// The history table: refinery's default name, kept so other tools and people find it.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// refinery's history table layout (`int4` versions), and which deployment applied each step
/// (columns refinery does not read, NULL outside Railway).
pub const HISTORY_DDL: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history (\
    version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255), \
    deployment_id VARCHAR(255), git_commit_sha VARCHAR(255))";

/// The columns a history table made before they existed (by an older binary, or refinery)
/// lacks: added, on PostgreSQL, in the transaction of the first step recorded with them. Only
/// then: ALTER TABLE locks the history against reads until the step commits, and another
/// replica's start reads the history without the migration lock.
pub const HISTORY_DEPLOYMENT_COLUMNS_PG: &str = "DO $$ BEGIN \
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'refinery_schema_history'::regclass \
                   AND attname = 'git_commit_sha' AND NOT attisdropped) THEN \
        ALTER TABLE refinery_schema_history \
            ADD COLUMN IF NOT EXISTS deployment_id VARCHAR(255), \
            ADD COLUMN IF NOT EXISTS git_commit_sha VARCHAR(255); \
    END IF; END $$";

/// The deployment this process runs in, recorded with every step it applies: Railway's
/// `RAILWAY_DEPLOYMENT_ID` and `RAILWAY_GIT_COMMIT_SHA`, when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// `RAILWAY_DEPLOYMENT_ID`.
    pub id: Option<String>,
    /// `RAILWAY_GIT_COMMIT_SHA`.
    pub commit: Option<String>,
}

static DEPLOYMENT: std::sync::OnceLock<Deployment> = std::sync::OnceLock::new();

impl Deployment {
    /// Sets the deployment for the process (once, from the environment at start).
    pub fn set(d: Deployment) {
        let _ = DEPLOYMENT.set(d);
    }

    /// The process's deployment (none recorded when never set).
    pub fn current() -> &'static Deployment {
        DEPLOYMENT.get_or_init(Deployment::default)
    }
}

/// A SQL string literal, or NULL.
fn literal(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |v| format!("'{}'", v.replace('\'', "''")))
}

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

/// The migrations embedded for `dialect` up to and including `version`, oldest first: what
/// builds the schema of that version on a scratch copy.
pub fn up_to(dialect: Dialect, version: i32) -> Vec<Migration> {
    migrations(dialect)
        .into_iter()
        .filter(|m| m.version <= version)
        .collect()
}

/// The highest version among `applied` (0 when none).
pub fn highest(applied: &[Applied]) -> i32 {
    applied.iter().map(|a| a.version).max().unwrap_or(0)
}

impl Migration {
    /// Whether `a`, a history row of this version, records this very file: the same name and
    /// checksum. Anything else means the file changed after it was applied.
    pub fn recorded_as(&self, a: &Applied) -> bool {
        self.name == a.name && self.checksum == a.checksum
    }

    /// The tables this migration's undo script drops, in order.
    pub fn dropped_tables(&self) -> Vec<String> {
        dropped_tables(self.down)
    }

    /// Whether this is a contract step (`-- phase: contract`): deferred by `up` on
    /// PostgreSQL, applied by `complete`.
    pub fn is_contract(&self) -> bool {
        crate::script::is_contract(self.up)
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
/// applied one, other than a deferred contract step) is [`Kind::Diverged`]: running anything
/// then could corrupt the schema.
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
        current: highest(applied),
        ..State::default()
    };
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            Some(m) if !m.recorded_as(a) => {
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
    let highest_known_applied = highest(&state.applied);
    for m in known {
        if applied.iter().any(|a| a.version == m.version) {
            continue;
        }
        // A contract step may wait (`up` defers it) while later expand steps are applied.
        if m.version < highest_known_applied && !m.is_contract() {
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
    // Names are `\w+` and numbers are ours: only the deployment's values need quoting.
    let d = Deployment::current();
    format!(
        "INSERT INTO {HISTORY_TABLE} (version, name, applied_on, checksum, deployment_id, \
         git_commit_sha) VALUES ({}, '{}', '{now}', '{}', {}, {})",
        m.version,
        m.name,
        m.checksum,
        literal(d.id.as_deref()),
        literal(d.commit.as_deref())
    )
}

/// Whether a script drops any table (a rebuild's included).
pub fn drops_tables(sql: &str) -> bool {
    !dropped_or_rebuilt(sql).is_empty()
}

/// The tables an undo script drops (`DROP TABLE [IF EXISTS] name`), in order; not those it
/// rebuilds (a table renamed to the dropped one's name later in the script keeps its rows).
fn dropped_tables(down_sql: &str) -> Vec<String> {
    let lower = down_sql.to_ascii_lowercase();
    dropped_or_rebuilt(down_sql)
        .into_iter()
        .filter(|t| {
            let renamed_to = format!("rename to \"{}\"", t.to_ascii_lowercase());
            let plain = format!("rename to {};", t.to_ascii_lowercase());
            !lower.contains(&renamed_to) && !lower.contains(&plain)
        })
        .collect()
}

/// The tables a script drops (`DROP TABLE [IF EXISTS] name`), in order.
fn dropped_or_rebuilt(down_sql: &str) -> Vec<String> {
    // Comments aside: a header that says "a DROP TABLE of a table with rows is refused" names
    // no table.
    let code: String = down_sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let words: Vec<String> = code
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

/// [`record_sql`] on PostgreSQL: the deployment columns added first where an older history
/// table lacks them (a catalog read, and no lock, where it has them).
pub fn record_sql_pg(m: &Migration) -> String {
    format!("{HISTORY_DEPLOYMENT_COLUMNS_PG}; {}", record_sql(m))
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
        // What `new` writes at the top of an undo script is a comment, not a table.
        let header = "-- A DROP TABLE of a table with rows is refused unless `--yes`.\n\
                      ALTER TABLE poses DROP COLUMN note; -- DROP TABLE x\n";
        assert!(dropped_tables(header).is_empty());
        assert!(!drops_tables(header));
        // A rebuild drops the old table and renames the new one to its name: its rows stay.
        let rebuild = "CREATE TABLE _yogaflow_new_users (id INTEGER);\n\
                       INSERT INTO _yogaflow_new_users (id) SELECT id FROM users;\n\
                       DROP TABLE users;\nALTER TABLE _yogaflow_new_users RENAME TO users;\n\
                       DROP TABLE pose_tags;";
        assert_eq!(dropped_tables(rebuild), vec!["pose_tags"]);
        assert!(drops_tables(rebuild));
        assert!(!drops_tables("ALTER TABLE users ADD COLUMN tz TEXT;"));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("abc", 1), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 1));
        assert_eq!(line_col("ab\ncd", 5), (2, 2));
    }
}
