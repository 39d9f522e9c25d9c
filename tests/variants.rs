//! Every database the Python backend could have made, read and adopted on both dialects. The
//! models of tests/python/models.py in the variants YOGAFLOW_VARIANT picks (`loose`:
//! Python-side defaults, no CHECKs, unbounded String(), foreign keys without ON DELETE;
//! `bool13`: SQLAlchemy 1.3's boolean CHECKs; `autoincrement`), plus a column and a table of
//! the app's own. `export` and `copy` read them (their defaults, checks, lengths and ON DELETE
//! rules change no value that moves), leave what is outside the contract behind and say so,
//! and every ORM object arrives; the sources are never written. `baseline --repair` adopts
//! them, `verify` is clean, and the app's ORM writes. What a source lacks is named against the
//! nearest version by structure; what a repair would have to guess needs a flag naming it.

mod support;

use support::*;

/// The loose models, with SQLAlchemy 1.3's boolean CHECKs too (SQLite only has them).
const LOOSE: &[(&str, &str)] = &[("YOGAFLOW_VARIANT", "loose,bool13")];

/// A database of `dialect` the loose models made and seeded, with an app column and table of
/// its own: its URL as the backend spells it.
fn loose_source(dialect: &str) -> (String, Option<TempSqlite>) {
    let (url, file) = match dialect {
        "postgres" => {
            let db = cluster().create_db();
            let url = cluster()
                .url(&db)
                .replacen("postgresql://", "postgresql+asyncpg://", 1);
            (url, None)
        }
        _ => {
            let file = TempSqlite::new();
            (
                format!("sqlite+aiosqlite:///{}", file.path().display()),
                Some(file),
            )
        }
    };
    backend_with("create-all", &url, LOOSE);
    backend_with("seed", &url, LOOSE);
    let own = "ALTER TABLE users ADD COLUMN nickname TEXT; \
               CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note TEXT)";
    match &file {
        Some(f) => f.sqlite(own),
        None => cluster().psql(url.rsplit('/').next().unwrap(), own),
    };
    (url, file)
}

/// A fresh target of `dialect`, migrated by this tool: its URL as the backend spells it.
fn target(dialect: &str) -> (String, Option<TempSqlite>) {
    let (url, file) = match dialect {
        "postgres" => {
            let db = cluster().create_db();
            (cluster().url(&db), None)
        }
        _ => {
            let file = TempSqlite::new();
            (file.url(), Some(file))
        }
    };
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    let backend_url = url
        .replacen("postgresql://", "postgresql+asyncpg://", 1)
        .replacen("sqlite://", "sqlite+aiosqlite://", 1);
    (backend_url, file)
}

/// What identifies the source's content: a SQLite file's bytes, or a PostgreSQL dump of its
/// rows through the backend.
fn image(url: &str, file: &Option<TempSqlite>) -> Vec<u8> {
    match file {
        Some(f) => std::fs::read(f.path()).unwrap(),
        None => backend_with("dump", url, LOOSE).into_bytes(),
    }
}

#[test]
fn export_and_copy_read_loose_sources_on_both_dialects() {
    let mut outcomes = Vec::new();
    for from in ["sqlite", "postgres"] {
        let (source, source_file) = loose_source(from);
        let before = image(&source, &source_file);
        let want = backend_with("dump", &source, LOOSE);
        for to in ["postgres", "sqlite"] {
            let (dest, _dest_file) = target(to);
            let r = run(&["copy", "--from", &source], &[("DATABASE_URL", &dest)]);
            r.assert_ok(&[
                "its tables and columns are those of version 5",
                "left behind, outside the contract: table audit_log, column users.nickname",
            ]);
            assert_eq!(backend("dump", &dest), want, "copy {from} -> {to}");
            outcomes.push(format!("copy {from} -> {to}: 0"));
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.json");
        let r = run(
            &["export", "--out", file.to_str().unwrap()],
            &[("DATABASE_URL", &source)],
        );
        r.assert_ok(&["left behind, outside the contract"]);
        for to in ["postgres", "sqlite"] {
            let (dest, _dest_file) = target(to);
            let r = run(
                &["import", file.to_str().unwrap()],
                &[("DATABASE_URL", &dest)],
            );
            r.assert_code(0);
            assert_eq!(backend("dump", &dest), want, "export {from}, import {to}");
            // The app's ORM writes into the copy with its own models.
            backend("insert", &dest);
            outcomes.push(format!("export {from}, import {to}: 0"));
        }
        assert!(
            image(&source, &source_file) == before,
            "the {from} source changed"
        );
    }
    println!("{}", outcomes.join("\n"));
}

#[test]
fn a_source_that_lacks_a_column_is_named_against_the_nearest_version() {
    let (source, file) = loose_source("sqlite");
    let f = file.unwrap();
    f.sqlite("ALTER TABLE poses DROP COLUMN category");
    let (dest, _d) = target("postgres");
    let r = run(&["copy", "--from", &source], &[("DATABASE_URL", &dest)]);
    r.assert_error(
        9,
        &[
            "its tables and columns are no version of this binary's; the nearest is version 5, \
             for which it lacks 1 thing(s): column poses.category: missing",
        ],
    );
}

/// A SQLite file whose tables were made with AUTOINCREMENT, its newest user deleted: the id
/// the backend handed out last must never come back, after `copy`, `export` + `import`, or a
/// `baseline` that rebuilds the file's tables.
#[test]
fn ids_of_deleted_rows_never_come_back() {
    let env = &[("YOGAFLOW_VARIANT", "loose,autoincrement")];
    let file = TempSqlite::new();
    let source = format!("sqlite+aiosqlite:///{}", file.path().display());
    backend_with("create-all", &source, env);
    backend_with("seed", &source, env);
    file.sqlite("DELETE FROM practice_history WHERE user_id = 2; DELETE FROM users WHERE id = 2");
    assert_eq!(
        file.sqlite("SELECT seq FROM sqlite_sequence WHERE name = 'users'"),
        "2"
    );
    let next_user = |url: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&backend("insert", url)).unwrap()["users"].clone()
    };
    let (dest, _) = target("postgres");
    run(&["copy", "--from", &source], &[("DATABASE_URL", &dest)]).assert_code(0);
    assert_eq!(next_user(&dest), 3, "copy handed out a deleted row's id");
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("e.json");
    let out = export.to_str().unwrap();
    run(&["export", "--out", out], &[("DATABASE_URL", &source)]).assert_code(0);
    let (dest, _) = target("postgres");
    run(&["import", out], &[("DATABASE_URL", &dest)]).assert_code(0);
    assert_eq!(next_user(&dest), 3, "import handed out a deleted row's id");
    run(&["baseline", "--repair"], &[("DATABASE_URL", &source)]).assert_ok(&["users: rebuilt"]);
    run(&["verify"], &[("DATABASE_URL", &source)]).assert_code(0);
    assert_eq!(
        next_user(&source),
        3,
        "the adopted file handed out a deleted row's id"
    );
}

/// `baseline --repair` adopts what the loose models made, on both dialects: defaults, checks,
/// ON DELETE rules, varchar lengths and names brought to the contract; the app's own column
/// (nullable) and table tolerated and named as not managed. Then `verify` is clean, and the
/// app's ORM writes with either the loose models or the contract's.
#[test]
fn baseline_repair_adopts_loose_databases_on_both_dialects() {
    for dialect in ["postgres", "sqlite"] {
        let (url, _file) = loose_source(dialect);
        let want = backend_with("dump", &url, LOOSE);
        let r = run(&["baseline", "--repair"], &[("DATABASE_URL", &url)]);
        r.assert_ok(&[
            "not managed, the app's own (left as they are): column users.nickname: extra",
        ]);
        run(&["verify"], &[("DATABASE_URL", &url)]).assert_ok(&[]);
        let v = run(&["verify"], &[("DATABASE_URL", &url)]);
        assert!(
            v.stdout
                .contains("not managed: column users.nickname: extra"),
            "{dialect}: {}",
            v.stdout
        );
        assert_eq!(backend("dump", &url), want, "{dialect}: rows changed");
        backend_with("insert", &url, LOOSE);
        backend("insert", &url);
    }
}

/// A column of the app's own with a default is carried through SQLite's table rebuild, values
/// and all; one that the app's inserts must name (NOT NULL, no default) would break the
/// contract's app: refused, saying so.
#[test]
fn app_columns_are_kept_or_refused_by_what_inserts_need() {
    let (url, file) = loose_source("sqlite");
    let f = file.unwrap();
    f.sqlite(
        "ALTER TABLE poses ADD COLUMN level INTEGER NOT NULL DEFAULT 1; UPDATE poses SET level = 7",
    );
    run(&["baseline", "--repair"], &[("DATABASE_URL", &url)]).assert_code(0);
    assert_eq!(f.sqlite("SELECT DISTINCT level FROM poses"), "7");
    backend("insert", &url);

    let db = cluster().create_db();
    let pg_url = cluster()
        .url(&db)
        .replacen("postgresql://", "postgresql+asyncpg://", 1);
    backend_with("create-all", &pg_url, LOOSE);
    cluster().psql(&db, "ALTER TABLE users ADD COLUMN must integer NOT NULL");
    let r = run(&["baseline", "--repair"], &[("DATABASE_URL", &pg_url)]);
    r.assert_error(
        9,
        &[
            "column users.must: extra, NOT NULL without a default (the app's inserts, which do \
           not name it, would fail)",
        ],
    );
}

/// SQLAlchemy 1.3 put `CHECK (col IN (0, 1))` on every Boolean on SQLite: nothing the
/// contract's BOOLEAN lacks by meaning, so a file with them is adopted (without `--repair`),
/// the rebuild leaves them out, and `verify` is clean.
#[test]
fn sqlalchemy_13_boolean_checks_are_accepted_by_meaning() {
    let file = TempSqlite::new();
    let url = format!("sqlite+aiosqlite:///{}", file.path().display());
    let env = &[("YOGAFLOW_VARIANT", "bool13")];
    backend_with("create-all", &url, env);
    backend_with("seed", &url, env);
    let users = "SELECT sql FROM sqlite_master WHERE name = 'users'";
    assert!(
        file.sqlite(users).contains("IN (0, 1)"),
        "{}",
        file.sqlite(users)
    );
    let want = backend("dump", &url);
    run(&["baseline"], &[("DATABASE_URL", &url)]).assert_ok(&["users: rebuilt"]);
    run(&["verify"], &[("DATABASE_URL", &url)]).assert_code(0);
    assert!(!file.sqlite(users).contains("IN (0, 1)"));
    assert_eq!(backend("dump", &url), want);
    backend("insert", &url);
}

/// A `timestamp` column (no zone) where the contract has `timestamptz`: its values carry no
/// zone, so `--repair` refuses to guess one and names the flag; with `--assume-time-zone UTC`
/// the column becomes `timestamptz`, every instant kept, and `verify` is clean.
#[test]
fn a_naive_timestamp_is_repaired_only_with_the_zone_named() {
    let db = cluster().create_db();
    let url = cluster()
        .url(&db)
        .replacen("postgresql://", "postgresql+asyncpg://", 1);
    backend("create-all", &url);
    backend("seed", &url);
    let want = backend("dump", &url);
    cluster().psql(
        &db,
        "ALTER TABLE users ALTER COLUMN created_at TYPE timestamp USING created_at AT TIME ZONE 'UTC'",
    );
    let env = [("DATABASE_URL", url.as_str())];
    run(&["baseline", "--repair"], &env).assert_error(
        9,
        &[
            "column users.created_at: type changed from timestamp with time zone to timestamp \
             without time zone",
            "(with --assume-time-zone ZONE, --repair can: the values carry no zone, and none is \
             guessed)",
        ],
    );
    run(&["baseline", "--assume-time-zone", "UTC"], &env).assert_code(2);
    run(&["baseline", "--repair", "--assume-time-zone", "UTC"], &env).assert_ok(&[
        "repair: ALTER TABLE \"users\" ALTER COLUMN \"created_at\" TYPE timestamptz USING \
         \"created_at\" AT TIME ZONE 'UTC'",
    ]);
    run(&["verify"], &env).assert_code(0);
    assert_eq!(backend("dump", &url), want);
}

/// `MIGRATE_BASELINE=true` adopts only what is a version by meaning: a loose database is told
/// by structure which version it has and what differs from it, and pointed at
/// `baseline --repair`; nothing changes.
#[test]
fn a_deploy_adoption_of_a_loose_database_names_its_version_by_structure() {
    let (url, _file) = loose_source("postgres");
    let r = run(
        &["up"],
        &[("DATABASE_URL", &url), ("MIGRATE_BASELINE", "true")],
    );
    r.assert_error(
        9,
        &[
            "MIGRATE_BASELINE=true, but the schema is no version of this binary by meaning; its \
             tables and columns are those of version 5, from which it differs in",
            "foreign key sequences(user_id) -> users(id): ON DELETE changed from CASCADE to NO \
             ACTION",
            "`yogaflow-migrate baseline --repair` brings what loses nothing to the contract",
        ],
    );
    let status = run(&["status"], &[("DATABASE_URL", &url)]);
    assert!(
        status.stdout.contains("no history table"),
        "{}",
        status.stdout
    );
}

/// An unbounded `String()` holding a value longer than the contract's `varchar(255)`: export
/// refuses it (import would), and `baseline --repair` refuses to shorten it, naming the row,
/// on both dialects; nothing changes.
#[test]
fn a_value_longer_than_the_contract_is_refused_by_row() {
    for dialect in ["sqlite", "postgres"] {
        let (url, file) = loose_source(dialect);
        let long = format!("'{}@example.com'", "x".repeat(300));
        let sql = format!("UPDATE users SET email = {long} WHERE id = 1");
        match &file {
            Some(f) => {
                f.sqlite(&sql);
            }
            None => {
                cluster().psql(url.rsplit('/').next().unwrap(), &sql);
            }
        }
        let before = backend_with("dump", &url, LOOSE);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("e.json");
        let r = run(
            &["export", "--out", out.to_str().unwrap()],
            &[("DATABASE_URL", &url)],
        );
        r.assert_error(
            10,
            &["table users, row id 1, column email: 312 characters, longer than the 255"],
        );
        assert!(!out.exists(), "{dialect}: export left a file");
        let r = run(&["baseline", "--repair"], &[("DATABASE_URL", &url)]);
        r.assert_error(
            9,
            &["repair refused: users row id=1", "nothing was changed"],
        );
        assert!(
            r.stderr
                .contains("longer than the contract's 255 characters"),
            "{dialect}: {}",
            r.stderr
        );
        assert_eq!(
            backend_with("dump", &url, LOOSE),
            before,
            "{dialect}: changed"
        );
        let status = run(&["status"], &[("DATABASE_URL", &url)]);
        assert!(status.stdout.contains("no history table"), "{dialect}");
    }
}
