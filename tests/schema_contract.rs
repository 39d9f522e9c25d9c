//! The schema the migrations produce, on real PostgreSQL and on a real SQLite file, matches the
//! contract in `shared/yogaflow-schema.md`: tables, columns, types, nullability, defaults, keys,
//! foreign keys with their ON DELETE rules, checks and indexes. The contract is written here as
//! data, in its logical types, and mapped onto each dialect's spelling.

mod support;

use std::collections::BTreeSet;
use support::*;
use yogaflow_migrate::db::{Database, Dialect};
use yogaflow_migrate::schema::Schema;

/// (table, column, logical type, nullable, logical default)
const COLUMNS: &[(&str, &str, &str, bool, &str)] = &[
    ("users", "id", "id", false, ""),
    ("users", "email", "string(255)", false, ""),
    ("users", "hashed_password", "string(255)", false, ""),
    ("users", "full_name", "string(255)", true, ""),
    ("users", "is_active", "bool", false, "true"),
    ("users", "is_superuser", "bool", false, "false"),
    ("users", "created_at", "timestamp", false, "now"),
    ("users", "updated_at", "timestamp", true, ""),
    ("poses", "id", "id", false, ""),
    ("poses", "name", "string(255)", false, ""),
    ("poses", "sanskrit_name", "string(255)", true, ""),
    ("poses", "description", "text", true, ""),
    ("poses", "difficulty", "string(20)", false, ""),
    ("poses", "category", "string(50)", true, ""),
    ("poses", "benefits", "json", true, ""),
    ("poses", "metadata", "json", false, "{}"),
    ("poses", "image", "bytes", true, ""),
    ("poses", "duration_seconds", "integer", true, ""),
    ("poses", "created_at", "timestamp", false, "now"),
    ("sequences", "id", "id", false, ""),
    ("sequences", "name", "string(255)", false, ""),
    ("sequences", "description", "text", true, ""),
    ("sequences", "difficulty", "string(20)", true, ""),
    ("sequences", "duration_minutes", "integer", true, ""),
    ("sequences", "is_public", "bool", false, "false"),
    ("sequences", "user_id", "integer", true, ""),
    ("sequences", "created_at", "timestamp", false, "now"),
    ("sequences", "updated_at", "timestamp", true, ""),
    ("sequence_poses", "id", "id", false, ""),
    ("sequence_poses", "sequence_id", "integer", false, ""),
    ("sequence_poses", "pose_id", "integer", false, ""),
    ("sequence_poses", "position", "integer", false, ""),
    ("sequence_poses", "duration_seconds", "integer", true, ""),
    ("practice_sessions", "id", "id", false, ""),
    ("practice_sessions", "user_id", "integer", false, ""),
    ("practice_sessions", "sequence_id", "integer", true, ""),
    ("practice_sessions", "started_at", "timestamp", false, ""),
    ("practice_sessions", "completed_at", "timestamp", true, ""),
    ("practice_sessions", "duration_seconds", "integer", true, ""),
    ("practice_sessions", "completed", "bool", false, "false"),
    ("practice_sessions", "rating", "float", true, ""),
    ("practice_sessions", "notes", "text", true, ""),
    ("practice_history", "id", "id", false, ""),
    ("practice_history", "user_id", "integer", false, ""),
    ("practice_history", "session_id", "integer", true, ""),
    ("practice_history", "pose_id", "integer", true, ""),
    ("practice_history", "practiced_at", "timestamp", false, ""),
    ("practice_history", "duration_seconds", "float", true, ""),
    ("practice_history", "notes", "text", true, ""),
];

/// (table, column, referenced table, ON DELETE)
const FOREIGN_KEYS: &[(&str, &str, &str, &str)] = &[
    ("sequences", "user_id", "users", "CASCADE"),
    ("sequence_poses", "sequence_id", "sequences", "CASCADE"),
    ("sequence_poses", "pose_id", "poses", "RESTRICT"),
    ("practice_sessions", "user_id", "users", "CASCADE"),
    ("practice_sessions", "sequence_id", "sequences", "SET NULL"),
    ("practice_history", "user_id", "users", "CASCADE"),
    (
        "practice_history",
        "session_id",
        "practice_sessions",
        "CASCADE",
    ),
    ("practice_history", "pose_id", "poses", "SET NULL"),
];

/// (table, columns) of unique constraints.
const UNIQUES: &[(&str, &[&str])] = &[
    ("poses", &["name"]),
    ("sequence_poses", &["sequence_id", "position"]),
];

/// (table, index, columns, unique)
const INDEXES: &[(&str, &str, &[&str], bool)] = &[
    ("users", "ix_users_email", &["email"], true),
    ("poses", "ix_poses_difficulty", &["difficulty"], false),
    (
        "practice_sessions",
        "ix_practice_sessions_user_id",
        &["user_id"],
        false,
    ),
    (
        "practice_history",
        "ix_practice_history_user_id_practiced_at",
        &["user_id", "practiced_at"],
        false,
    ),
];

/// (table, column the CHECK is about, words its expression must contain)
const CHECKS: &[(&str, &str, &[&str])] = &[
    (
        "poses",
        "difficulty",
        &["beginner", "intermediate", "advanced"],
    ),
    (
        "sequences",
        "difficulty",
        &["beginner", "intermediate", "advanced"],
    ),
    ("practice_sessions", "rating", &["1", "5"]),
];

fn spell_type(d: Dialect, logical: &str) -> String {
    if let Some(n) = logical.strip_prefix("string(") {
        let n = n.trim_end_matches(')');
        return match d {
            Dialect::Postgres => format!("character varying({n})"),
            Dialect::Sqlite => format!("varchar({n})"),
        };
    }
    let (pg, lite) = match logical {
        "id" | "integer" => ("integer", "integer"),
        "text" => ("text", "text"),
        "bool" => ("boolean", "boolean"),
        "timestamp" => ("timestamp with time zone", "datetime"),
        "float" => ("double precision", "real"),
        "json" => ("jsonb", "json"),
        "bytes" => ("bytea", "blob"),
        other => panic!("unknown logical type {other}"),
    };
    match d {
        Dialect::Postgres => pg.into(),
        Dialect::Sqlite => lite.into(),
    }
}

fn spell_default(d: Dialect, logical_type: &str, logical: &str) -> Option<String> {
    let pg = d == Dialect::Postgres;
    match (logical_type, logical) {
        ("id", _) if pg => Some("generated by default as identity".into()),
        (_, "") => None,
        (_, "true") => Some(if pg { "true" } else { "1" }.into()),
        (_, "false") => Some(if pg { "false" } else { "0" }.into()),
        (_, "now") => Some(if pg { "now()" } else { "current_timestamp" }.into()),
        (_, "{}") => Some(if pg { "'{}'::jsonb" } else { "'{}'" }.into()),
        (_, other) => panic!("unknown default {other}"),
    }
}

fn check_contract(d: Dialect, s: &Schema) {
    let mut problems = Vec::new();
    let tables: BTreeSet<&str> = COLUMNS.iter().map(|c| c.0).collect();
    let have: BTreeSet<&str> = s.tables.keys().map(|t| t.as_str()).collect();
    if tables != have {
        problems.push(format!("tables: want {tables:?}, have {have:?}"));
    }
    for (t, c, ty, nullable, default) in COLUMNS {
        let Some(col) = s.tables.get(*t).and_then(|tb| tb.columns.get(*c)) else {
            problems.push(format!("{t}.{c}: missing"));
            continue;
        };
        if col.data_type != spell_type(d, ty) {
            problems.push(format!(
                "{t}.{c}: type {} (want {})",
                col.data_type,
                spell_type(d, ty)
            ));
        }
        if col.nullable != *nullable {
            problems.push(format!(
                "{t}.{c}: nullable {} (want {nullable})",
                col.nullable
            ));
        }
        if col.default != spell_default(d, ty, default) {
            problems.push(format!(
                "{t}.{c}: default {:?} (want {:?})",
                col.default,
                spell_default(d, ty, default)
            ));
        }
    }
    for t in &tables {
        let table = &s.tables[*t];
        let columns: usize = COLUMNS.iter().filter(|c| c.0 == *t).count();
        if table.columns.len() != columns {
            problems.push(format!(
                "{t}: {} columns, contract has {columns}",
                table.columns.len()
            ));
        }
        if table.primary_key != ["id"] {
            problems.push(format!("{t}: primary key {:?}", table.primary_key));
        }
        let fks: BTreeSet<String> = table.foreign_keys.iter().map(|f| f.to_string()).collect();
        let want: BTreeSet<String> = FOREIGN_KEYS
            .iter()
            .filter(|f| f.0 == *t)
            .map(|(_, c, r, od)| format!("({c}) -> {r}(id) ON DELETE {od}"))
            .collect();
        if fks != want {
            problems.push(format!("{t}: foreign keys {fks:?}, want {want:?}"));
        }
        let uniques: BTreeSet<Vec<String>> = UNIQUES
            .iter()
            .filter(|u| u.0 == *t)
            .map(|u| u.1.iter().map(|c| c.to_string()).collect())
            .collect();
        if table.uniques != uniques {
            problems.push(format!(
                "{t}: uniques {:?}, want {uniques:?}",
                table.uniques
            ));
        }
        let indexes: BTreeSet<(String, Vec<String>, bool)> = table
            .indexes
            .iter()
            .map(|(n, i)| (n.clone(), i.columns.clone(), i.unique))
            .collect();
        let want: BTreeSet<(String, Vec<String>, bool)> = INDEXES
            .iter()
            .filter(|i| i.0 == *t)
            .map(|i| {
                (
                    i.1.to_string(),
                    i.2.iter().map(|c| c.to_string()).collect(),
                    i.3,
                )
            })
            .collect();
        if indexes != want {
            problems.push(format!("{t}: indexes {indexes:?}, want {want:?}"));
        }
        let want_checks: Vec<_> = CHECKS.iter().filter(|c| c.0 == *t).collect();
        if table.checks.len() != want_checks.len() {
            problems.push(format!(
                "{t}: checks {:?}, want {} of them",
                table.checks,
                want_checks.len()
            ));
        }
        for (_, column, words) in want_checks {
            let found = table
                .checks
                .iter()
                .any(|expr| expr.contains(column) && words.iter().all(|w| expr.contains(w)));
            if !found {
                problems.push(format!(
                    "{t}: no CHECK on {column} with {words:?} in {:?}",
                    table.checks
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{d:?} schema breaks the contract:\n{}",
        problems.join("\n")
    );
}

fn migrated_schema(url: &str) -> (Dialect, Schema) {
    run(&["up"], &[("DATABASE_URL", url)]).assert_code(0);
    live_schema(url)
}

#[test]
fn postgres_schema_matches_the_contract() {
    let c = PgCluster::start(PgOptions::default());
    let (d, s) = migrated_schema(&c.url(&c.create_db()));
    assert_eq!(d, Dialect::Postgres);
    check_contract(d, &s);
}

#[test]
fn sqlite_schema_matches_the_contract() {
    let f = TempSqlite::new();
    let (d, s) = migrated_schema(&f.url());
    assert_eq!(d, Dialect::Sqlite);
    check_contract(d, &s);
}

/// `sql/postgres` and `sql/sqlite` say the same thing at every version, not only the last:
/// after each `up --target k`, the two live schemas are equal in logical terms.
#[test]
fn both_dialects_agree_at_every_version() {
    let c = PgCluster::start(PgOptions::default());
    let pg = c.url(&c.create_db());
    let lite = TempSqlite::new();
    let mut differences = Vec::new();
    let last = yogaflow_migrate::migrations::migrations(Dialect::Postgres)
        .last()
        .map_or(0, |m| m.version);
    for k in 1..=last {
        let target = k.to_string();
        let mut seen = Vec::new();
        for url in [pg.as_str(), lite.url().as_str()] {
            run(&["up", "--target", &target], &[("DATABASE_URL", url)]).assert_code(0);
            let (d, s) = live_schema(url);
            // The contract's vocabulary, the one `new --from` compares and writes in.
            seen.push(yogaflow_migrate::schema::logical::logical(d, &s));
        }
        for line in yogaflow_migrate::schema::diff(&seen[0], &seen[1], false) {
            differences.push(format!("version {k}: postgres -> sqlite: {line}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Every undo script leaves the schema exactly (not only by meaning) as the version before
/// made it: after `down --steps 1` from k, the live schema equals the one migrations 1..k-1
/// build.
#[test]
fn every_down_restores_the_previous_version_exactly() {
    let c = PgCluster::start(PgOptions::default());
    let pg = c.url(&c.create_db());
    let lite = TempSqlite::new();
    for url in [pg.as_str(), lite.url().as_str()] {
        run(&["up"], &[("DATABASE_URL", url)]).assert_code(0);
        let last = yogaflow_migrate::migrations::migrations(Dialect::Postgres)
            .last()
            .map_or(0, |m| m.version);
        for k in (1..=last).rev() {
            run(&["down", "--steps", "1"], &[("DATABASE_URL", url)]).assert_code(0);
            let (live, expected) = with_db(url, async |db| {
                (
                    db.live_schema().await.unwrap(),
                    db.expected_schema(k - 1).await.unwrap(),
                )
            });
            assert_eq!(live, expected, "{url}: after undoing V{k}");
        }
    }
}

fn live_schema(url: &str) -> (Dialect, Schema) {
    with_db(url, async |db| {
        (db.dialect(), db.live_schema().await.unwrap())
    })
}

/// Opens `url` for reading and runs `f` on it.
fn with_db<T>(url: &str, f: impl AsyncFnOnce(&Database) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = yogaflow_migrate::config::parse_url(url).unwrap();
        let options =
            yogaflow_migrate::db::OpenOptions::reading(std::time::Duration::from_secs(10));
        let db = Database::open(&url, options).await.unwrap();
        f(&db).await
    })
}
