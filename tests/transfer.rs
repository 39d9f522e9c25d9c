//! export, import and copy against real servers: lossless round trips of every value class
//! (from a SQLite file written the way SQLAlchemy writes it), working sequences afterwards,
//! and every refusal and failure leaving the target exactly as it was.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// Python writing rows as SQLAlchemy does on SQLite: datetimes as `YYYY-MM-DD HH:MM:SS.ffffff`,
/// booleans 0/1, JSON via json.dumps, bytes as BLOB; plus the odd forms real files hold.
const SQLALCHEMY_STYLE: &str = r#"
import sqlite3, json, sys, datetime
c = sqlite3.connect(sys.argv[1])
def ts(*a): return datetime.datetime(*a).strftime('%Y-%m-%d %H:%M:%S.%f')
c.execute("INSERT INTO users (id, email, hashed_password, full_name, is_active, is_superuser, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
          (1, 'zoë@example.com', 'h$1', 'Zoë 🧘‍♀️ "quoted" \\back\\slash \'single\'', True, False, ts(2025, 12, 6, 10, 11, 12, 123456), None))
c.execute("INSERT INTO users VALUES (2, 'rtl@example.com', 'h', 'مرحبا بالعالم', 'true', 'false', '2025-12-06T10:11:12Z', '2025-12-06T10:11:12+02:00')")
c.execute("INSERT INTO users VALUES (2147483000, 'max@example.com', 'h', NULL, 0, 1, '2025-12-06 10:11:12', NULL)")
c.execute("INSERT INTO users VALUES (3, 'text-id@example.com', 'h', '', 1, 0, '2024-02-29 23:59:59.000001', '')")
c.execute("INSERT INTO poses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
          (1, 'Tree', 'Vrikshasana', 'line1\nline2\ttab', 'beginner', 'balance', json.dumps(['focus', 'ünïcode']),
           json.dumps({'b': 1, 'a': [1.5, None, True], 'nested': {'z': 'x'}}), bytes(range(256)) * 4096, 2147483647, ts(2025, 1, 1)))
c.execute("INSERT INTO poses VALUES (2, 'Crow', NULL, NULL, 'advanced', NULL, NULL, '{}', NULL, NULL, '2025-01-01 00:00:00')")
c.execute("INSERT INTO poses VALUES (3, 'Empty blob', NULL, NULL, 'intermediate', NULL, 'null', '[]', X'', '-2147483648', '2025-01-01 00:00:00')")
c.execute("INSERT INTO sequences VALUES (1, 'Morning', NULL, 'beginner', 20, 1, 1, ?, NULL)", (ts(2025, 6, 1, 6, 0, 0),))
c.execute("INSERT INTO sequences VALUES (2, 'Built-in', 'no owner', NULL, NULL, 0, NULL, '2025-06-01 06:00:00', NULL)")
c.execute("INSERT INTO sequence_poses VALUES (1, 1, 1, 1, 30), (2, 1, 2, 2, NULL), (3, 2, 3, 1, 0)")
c.execute("INSERT INTO practice_sessions VALUES (1, 1, 1, '2025-12-06 07:00:00.5', '2025-12-06 07:30:00', 1800, 1, 4.75, 'great')")
c.execute("INSERT INTO practice_sessions VALUES (2, 2, NULL, '2025-12-06T08:00:00Z', NULL, NULL, 0, NULL, NULL)")
c.execute("INSERT INTO practice_sessions VALUES (3, 2, 2, '2025-12-07 08:00:00', NULL, '42', 'false', 1, '')")
c.execute("INSERT INTO practice_history VALUES (1, 1, 1, 1, '2025-12-06 07:05:00.999999', 1.7976931348623157e308, 'max float')")
c.execute("INSERT INTO practice_history VALUES (2, 1, 1, NULL, '2025-12-06 07:06:00', 5e-324, NULL)")
c.execute("INSERT INTO practice_history VALUES (3, 2, NULL, 2, '2025-12-06 07:07:00', -0.1, 'neg')")
c.execute("INSERT INTO practice_history VALUES (4, 2, NULL, NULL, '2025-12-06 07:08:00', 9e999, 'infinity')")
c.commit()
"#;

fn python(script: &str, args: &[&str]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A migrated SQLite file filled by Python.
fn sqlalchemy_source() -> TempSqlite {
    let s = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &s.url())]).assert_code(0);
    python(SQLALCHEMY_STYLE, &[s.path().to_str().unwrap()]);
    s
}

fn export_tables(url: &str) -> serde_json::Value {
    let r = run(&["export", "--out", "-"], &[("DATABASE_URL", url)]);
    r.assert_code(0);
    let mut doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("export is JSON");
    assert_eq!(doc["format"], "yogaflow-export");
    assert_eq!(doc["schema_version"], 5);
    doc["tables"].take()
}

/// Asserts two exports' tables are equal, naming the first differing row (not dumping MBs).
fn assert_same(have: &serde_json::Value, want: &serde_json::Value, what: &str) {
    for (table, rows) in want.as_object().unwrap() {
        let theirs = have[table].as_array().cloned().unwrap_or_default();
        let ours = rows.as_array().unwrap();
        assert_eq!(theirs.len(), ours.len(), "{what}: {table} row count");
        for (a, b) in theirs.iter().zip(ours) {
            for (col, v) in b.as_object().unwrap() {
                let short =
                    |v: &serde_json::Value| v.to_string().chars().take(120).collect::<String>();
                assert!(
                    a[col] == *v,
                    "{what}: {table} id {} column {col}: {} != {}",
                    b["id"],
                    short(&a[col]),
                    short(v)
                );
            }
        }
    }
    assert_eq!(
        have.as_object().unwrap().len(),
        want.as_object().unwrap().len(),
        "{what}: tables"
    );
}

fn pg_db() -> (String, String) {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    (db, url)
}

/// A stable text image of a PostgreSQL database's rows, for "exactly as before".
fn pg_image(db: &str) -> String {
    let tables = [
        "users",
        "poses",
        "sequences",
        "sequence_poses",
        "practice_sessions",
        "practice_history",
    ];
    tables
        .iter()
        .map(|t| {
            let exists = cluster().psql(db, &format!("SELECT count(*) FROM pg_tables WHERE tablename = '{t}'"));
            if exists == "0" {
                return format!("{t}: absent");
            }
            cluster().psql(db, &format!("SELECT '{t}: ' || count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM {t} x"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sqlite_to_json_to_postgres_to_json_to_sqlite_loses_nothing() {
    let source = sqlalchemy_source();
    let original = export_tables(&source.url());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data_export.json");
    let f = file.to_str().unwrap();

    run(&["export", "--out", f], &[("DATABASE_URL", &source.url())]).assert_code(0);
    let (db, pg) = pg_db();
    let r = run(&["import", f], &[("DATABASE_URL", &pg)]);
    r.assert_ok(&["users: 4 rows"]);
    assert_same(
        &export_tables(&pg),
        &original,
        "PostgreSQL holds what SQLite held",
    );

    let file2 = dir.path().join("from_pg.json");
    run(
        &["export", "--out", file2.to_str().unwrap()],
        &[("DATABASE_URL", &pg)],
    )
    .assert_code(0);
    let back = TempSqlite::new();
    run(
        &["import", file2.to_str().unwrap()],
        &[("DATABASE_URL", &back.url())],
    )
    .assert_code(0);
    assert_same(
        &export_tables(&back.url()),
        &original,
        "SQLite holds it again",
    );

    every_table_takes_a_row_without_id(&db);
}

#[test]
fn copy_sqlite_to_postgres_and_back_loses_nothing() {
    let source = sqlalchemy_source();
    let original = export_tables(&source.url());
    let (db, pg) = pg_db();
    let r = run(&["copy", "--from", &source.url()], &[("DATABASE_URL", &pg)]);
    r.assert_ok(&["checksums match"]);
    assert_same(&export_tables(&pg), &original, "copied into PostgreSQL");

    let back = TempSqlite::new();
    run(&["copy", "--from", &pg, "--to", &back.url()], &[]).assert_code(0);
    assert_same(
        &export_tables(&back.url()),
        &original,
        "copied back into SQLite",
    );
    every_table_takes_a_row_without_id(&db);
}

#[test]
fn import_reads_standard_input() {
    let source = sqlalchemy_source();
    let export = run(
        &["export", "--out", "-"],
        &[("DATABASE_URL", &source.url())],
    );
    export.assert_code(0);
    let (_db, pg) = pg_db();
    let mut child = bin()
        .args(["import", "-"])
        .env("DATABASE_URL", &pg)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.stdout.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        &export_tables(&pg),
        &export_tables(&source.url()),
        "imported from stdin",
    );
}

fn every_table_takes_a_row_without_id(db: &str) {
    cluster().psql(
        db,
        "INSERT INTO users (email, hashed_password) VALUES ('new@example.com', 'h');
         INSERT INTO poses (name, difficulty) VALUES ('New pose', 'beginner');
         INSERT INTO sequences (name) VALUES ('New sequence');
         INSERT INTO sequence_poses (sequence_id, pose_id, position) VALUES (1, 1, 99);
         INSERT INTO practice_sessions (user_id, started_at) VALUES (1, now());
         INSERT INTO practice_history (user_id, practiced_at) VALUES (1, now());",
    );
}

/// A target with a row of its own, so "exactly as before" means something.
fn occupied_target() -> (String, String, String) {
    let (db, url) = pg_db();
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    cluster().psql(
        &db,
        "INSERT INTO users (email, hashed_password) VALUES ('keep@example.com', 'h')",
    );
    let image = pg_image(&db);
    (db, url, image)
}

#[test]
fn bad_values_are_named_and_nothing_is_written() {
    let cases: &[(&str, &str)] = &[
        ("UPDATE poses SET metadata = '{not json' WHERE id = 2", "table poses, row id 2, column metadata: invalid JSON"),
        ("UPDATE users SET full_name = 'a' || char(0) || 'b' WHERE id = 1", "table users, row id 1, column full_name: text holding a NUL character"),
        ("UPDATE practice_sessions SET duration_seconds = 'abc' WHERE id = 2", "table practice_sessions, row id 2, column duration_seconds: not an integer: value \"abc\""),
        ("UPDATE practice_sessions SET duration_seconds = 1099511627776 WHERE id = 1", "table practice_sessions, row id 1, column duration_seconds: out of range for a 4-byte integer: value 1099511627776"),
        ("UPDATE practice_history SET practiced_at = 'yesterday' WHERE id = 3", "table practice_history, row id 3, column practiced_at: not a timestamp"),
        ("UPDATE users SET is_active = 'maybe' WHERE id = 2", "table users, row id 2, column is_active: not a boolean"),
        // SQLite does not enforce foreign keys unless asked: real files hold orphans.
        ("PRAGMA foreign_keys = OFF; UPDATE practice_history SET user_id = 999 WHERE id = 3", "violates foreign key constraint \"practice_history_user_id_fkey\" (Key (user_id)=(999) is not present in table \"users\".)"),
        ("DROP INDEX ix_users_email; UPDATE users SET email = 'zoë@example.com' WHERE id = 2", "could not create unique index \"ix_users_email\""),
    ];
    for (sql, want) in cases {
        let source = sqlalchemy_source();
        source.sqlite(sql);
        let (db, url, before) = occupied_target();
        let r = run(
            &["copy", "--from", &source.url(), "--replace"],
            &[("DATABASE_URL", &url)],
        );
        r.assert_code(10);
        assert!(r.stderr.contains(want), "{sql}:\n{}", r.stderr);
        assert_eq!(pg_image(&db), before, "{sql}: target changed");

        // The same file through export fails the same way, and leaves no half-written file
        // (where the value is bad in SQLite too: 2^40, orphans and duplicates are not).
        let valid_in_sqlite = ["1099511627776", "999", "email"];
        if !valid_in_sqlite.iter().any(|v| sql.contains(v)) {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("x.json");
            let r = run(
                &["export", "--out", out.to_str().unwrap()],
                &[("DATABASE_URL", &source.url())],
            );
            assert_eq!(r.code, 10, "{sql}: export must fail:\n{}", r.stderr);
            assert!(r.stderr.contains(want), "{sql}:\n{}", r.stderr);
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "{sql}: export left a file"
            );
        }
    }
}

#[test]
fn truncated_or_malformed_json_changes_nothing() {
    let source = sqlalchemy_source();
    let good = run(
        &["export", "--out", "-"],
        &[("DATABASE_URL", &source.url())],
    )
    .stdout;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "truncated",
            good[..good.len() * 2 / 3].to_string(),
            "malformed or truncated",
        ),
        (
            "malformed",
            good.replacen("\"email\":", "\"email\" ", 1),
            "malformed or truncated",
        ),
        (
            "unknown column",
            good.replacen("\"email\":", "\"e_mail\":", 1),
            "column e_mail in the JSON file does not exist",
        ),
        (
            "bad value",
            good.replacen("\"is_active\":true", "\"is_active\":\"perhaps\"", 1),
            "column is_active: not a boolean",
        ),
        (
            "not an export",
            "{\"hello\": 1}".to_string(),
            "no schema_version",
        ),
        // With --replace, a missing table would be emptied: an export always holds them all.
        (
            "a table missing",
            without_table(&good, "practice_history"),
            "lacks table(s) practice_history",
        ),
        (
            "no tables",
            {
                let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
                v["tables"] = serde_json::json!({});
                v.to_string()
            },
            "lacks table(s)",
        ),
    ];
    for (name, text, want) in cases {
        let file = dir.path().join(format!("{}.json", name.replace(' ', "_")));
        std::fs::write(&file, text).unwrap();
        let (db, url, before) = occupied_target();
        let r = run(
            &["import", file.to_str().unwrap(), "--replace"],
            &[("DATABASE_URL", &url)],
        );
        r.assert_code(10);
        assert!(r.stderr.contains(want), "{name}:\n{}", r.stderr);
        assert_eq!(pg_image(&db), before, "{name}: target changed");
    }
}

fn without_table(export: &str, table: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(export).unwrap();
    v["tables"].as_object_mut().unwrap().remove(table);
    v.to_string()
}

/// NUL in JSON is refused on every target, SQLite too: it could never move on to PostgreSQL.
#[test]
fn json_holding_nul_is_refused_by_sqlite_too() {
    let source = sqlalchemy_source();
    let good = run(
        &["export", "--out", "-"],
        &[("DATABASE_URL", &source.url())],
    )
    .stdout;
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["tables"]["poses"][0]["metadata"] = serde_json::json!({"note": "a\u{0}b"});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nul.json");
    std::fs::write(&file, v.to_string()).unwrap();
    let target = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &target.url())]).assert_code(0);
    let r = run(
        &["import", file.to_str().unwrap()],
        &[("DATABASE_URL", &target.url())],
    );
    r.assert_error(10, &["column metadata: JSON holding a NUL character"]);
    assert_eq!(target.sqlite("SELECT count(*) FROM poses"), "0");
}

#[test]
fn an_occupied_target_is_refused_without_replace() {
    let source = sqlalchemy_source();
    let (db, url, before) = occupied_target();
    let r = run(
        &["copy", "--from", &source.url()],
        &[("DATABASE_URL", &url)],
    );
    r.assert_error(10, &["the target already holds rows (users: 1)"]);
    assert_eq!(pg_image(&db), before);
    run(
        &["copy", "--from", &source.url(), "--replace"],
        &[("DATABASE_URL", &url)],
    )
    .assert_code(0);
    assert_eq!(cluster().psql(&db, "SELECT count(*) FROM users"), "4");
}

#[test]
fn a_kill_in_the_middle_leaves_the_target_as_it_was() {
    let source = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &source.url())]).assert_code(0);
    source.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000)
         INSERT INTO practice_history (id, user_id, practiced_at, notes) SELECT i, 1, '2025-12-06 10:11:12.123456', 'row ' || i FROM n",
    );
    let (db, url, before) = occupied_target();
    let child = spawn(
        &["copy", "--from", &source.url(), "--replace"],
        &[("DATABASE_URL", &url)],
    );
    // Kill once the big table is being loaded: its COPY is running on the target.
    let loading = wait_until(Duration::from_secs(60), || {
        cluster().psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' \
                 AND query LIKE 'COPY \"practice_history\"%'"
            ),
        ) == "1"
    });
    child.signal("KILL");
    let r = child.finish(Duration::from_secs(30));
    assert!(
        loading,
        "the load never reached practice_history:\n{}",
        r.stderr
    );
    assert_eq!(r.code, -9, "{}", r.stderr);
    // The server notices the dropped connection and rolls back.
    assert!(
        wait_until(Duration::from_secs(10), || pg_image(&db) == before),
        "target changed"
    );
}

/// A developer's SQLite file as the backend made it: no history (Alembic's table instead).
/// `copy --from` and `export` read it as it is, at the newest version whose tables and columns it has,
/// and never write to it (its bytes are the same afterwards).
#[test]
fn a_source_without_history_is_read_as_it_is() {
    let source = sqlalchemy_source();
    let want = export_tables(&source.url());
    source.sqlite(
        "DROP TABLE refinery_schema_history;
         CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6');",
    );
    let before = std::fs::read(source.path()).unwrap();
    let (db, url) = pg_db();
    let r = run(
        &["copy", "--from", &source.url()],
        &[("DATABASE_URL", &url)],
    );
    r.assert_ok(&["its tables and columns are those of version 5"]);
    assert_same(
        &export_tables(&url),
        &want,
        "copy from a source without history",
    );
    let exported = run(
        &["export", "--out", "-"],
        &[("DATABASE_URL", &source.url())],
    );
    exported.assert_code(0);
    assert_eq!(
        std::fs::read(source.path()).unwrap(),
        before,
        "the source was written to"
    );
    every_table_takes_a_row_without_id(&db);
}

/// A source whose history says less than its tables (a baseline at too old a version) is
/// refused: a copy would leave the later tables' rows behind and still say "done".
#[test]
fn a_source_with_tables_beyond_its_history_is_refused() {
    let source = sqlalchemy_source();
    source.sqlite("DELETE FROM refinery_schema_history WHERE version > 1");
    let (db, url) = pg_db();
    let r = run(
        &["copy", "--from", &source.url()],
        &[("DATABASE_URL", &url)],
    );
    r.assert_error(10, &["beyond its recorded schema version"]);
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"
        ),
        "1"
    );
    assert_eq!(cluster().psql(&db, "SELECT count(*) FROM users"), "0");
    // Errors say which side they are about.
    let r = run(
        &["copy", "--from", "sqlite:////no/such/dev.db"],
        &[("DATABASE_URL", &url)],
    );
    r.assert_error(2, &["source sqlite:/no/such/dev.db"]);
}

/// One JSON null rule on every route: in a nullable JSON column a JSON `null` (SQLAlchemy
/// writes `'null'` for `None`) and SQL NULL are both SQL NULL; in a NOT NULL JSON column both
/// are the JSON value `null`. copy, export and import agree.
#[test]
fn json_null_follows_one_rule_on_every_route() {
    let source = sqlalchemy_source();
    source.sqlite("UPDATE poses SET benefits = 'null', metadata = 'null' WHERE id = 1");
    let check_pg = |db: &str, route: &str| {
        assert_eq!(
            cluster().psql(
                db,
                "SELECT benefits IS NULL, metadata = 'null'::jsonb FROM poses WHERE id = 1"
            ),
            "t|t",
            "{route}"
        );
    };
    let (copied, url) = pg_db();
    run(
        &["copy", "--from", &source.url()],
        &[("DATABASE_URL", &url)],
    )
    .assert_code(0);
    check_pg(&copied, "copy");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.json");
    let file = file.to_str().unwrap();
    run(
        &["export", "--out", file],
        &[("DATABASE_URL", &source.url())],
    )
    .assert_code(0);
    let (imported, url) = pg_db();
    run(&["import", file], &[("DATABASE_URL", &url)]).assert_code(0);
    check_pg(&imported, "export from SQLite, import into PostgreSQL");
    let back = TempSqlite::new();
    run(&["import", file], &[("DATABASE_URL", &back.url())]).assert_code(0);
    assert_eq!(
        back.sqlite("SELECT benefits IS NULL, metadata FROM poses WHERE id = 1"),
        "1|null"
    );
}

/// Behind PgBouncer in transaction mode (one server connection per database, so every client
/// shares it) a named prepared statement left on a server connection breaks the next client
/// that prepares one of the same name. Copies, exports and imports run at once through it,
/// with MIGRATE_LOCK=transaction as docs/operations.md says for a pooler on a port it does not recognise.
#[test]
fn transfers_work_behind_pgbouncer_in_transaction_mode() {
    let source = sqlalchemy_source();
    let original = export_tables(&source.url());
    let c = cluster();
    let bouncer = PgBouncer::start(c, 1);
    let dbs: Vec<String> = (0..3).map(|_| c.create_db()).collect();
    let pooled: Vec<String> = dbs.iter().map(|db| bouncer.url(db)).collect();
    // Three copies into one database's pool at once: one wins, the others find it occupied.
    let runs: Vec<support::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (from, to) = (source.url(), pooled[0].clone());
                s.spawn(move || {
                    run(
                        &["copy", "--from", &from],
                        &[("DATABASE_URL", &to), ("MIGRATE_LOCK", "transaction")],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{runs:#?}");
    assert!(codes.iter().all(|&c| c == 0 || c == 10), "{runs:#?}");
    assert_same(
        &export_tables(&pooled[0]),
        &original,
        "copied through PgBouncer",
    );
    // Exports and imports at once, all through the pooler.
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_string();
    run(&["export", "--out", &path], &[("DATABASE_URL", &pooled[0])]).assert_code(0);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for to in &pooled[1..] {
            let path = path.clone();
            handles.push(s.spawn(move || {
                run(
                    &["import", &path],
                    &[("DATABASE_URL", to), ("MIGRATE_LOCK", "transaction")],
                )
            }));
        }
        for _ in 0..2 {
            handles
                .push(s.spawn(|| run(&["export", "--out", "-"], &[("DATABASE_URL", &pooled[0])])));
        }
        for h in handles {
            h.join().unwrap().assert_code(0);
        }
    });
    for to in &pooled[1..] {
        assert_same(&export_tables(to), &original, "imported through PgBouncer");
    }
}
