//! The main job against real servers: `up` on fresh PostgreSQL databases and SQLite files,
//! concurrency, failures and their exit codes, every URL form, the TLS matrix, history
//! safety, signals, and that the password never shows.

mod support;

use std::time::{Duration, Instant};
use support::*;

const KEY: i64 = 8_750_326_269_032_034_167;

fn encoded(secret: &str) -> String {
    percent(secret)
}

fn url(db: &str) -> String {
    format!(
        "postgresql://postgres:{}@127.0.0.1:{}/{db}",
        encoded(PASSWORD),
        password_cluster().port()
    )
}

fn up(url: &str, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![("DATABASE_URL", url)];
    env.extend_from_slice(extra);
    let r = run(&["up"], &env);
    assert_no_secret(&r, PASSWORD);
    r
}

fn history(db: &str) -> String {
    password_cluster().psql(db, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM refinery_schema_history")
}

fn schema_dump(db: &str) -> String {
    password_cluster().psql(
        db,
        "SELECT string_agg(table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, ''), E'\\n' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public'",
    ) + &password_cluster().psql(db, "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'")
}

/// What `auto` logs when the connection is not one server session (a pooler).
const NOT_ONE_SESSION: &str = "does not keep one server session (a connection pooler?)";

const ALL: &str = "1:users,2:poses,3:sequences,4:practice,5:query_indexes";

#[test]
fn fresh_postgres_gets_all_five_then_nothing() {
    let db = password_cluster().create_db();
    let r = up(&url(&db), &[]);
    r.assert_ok(&[
        "applied V1__users in",
        "schema version 0 -> 5",
        // The target is logged redacted.
        ":***@127.0.0.1",
    ]);
    assert_eq!(history(&db), ALL);
    let before = schema_dump(&db);
    let r = up(&url(&db), &[]);
    r.assert_ok(&["nothing to apply"]);
    assert_eq!(schema_dump(&db), before);
    assert_eq!(history(&db), ALL);
}

#[test]
fn bare_command_and_sqlite_default_in_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &[], &[]);
    r.assert_ok(&["DATABASE_URL is not set"]);
    assert!(dir.path().join("yogaflow.db").exists());
    let r = run_in(dir.path(), &[], &[]);
    r.assert_ok(&["nothing to apply"]);
}

#[test]
fn fresh_sqlite_gets_all_five_then_nothing() {
    let s = TempSqlite::new();
    let r = run(&["up"], &[("DATABASE_URL", &s.url())]);
    r.assert_code(0);
    let rows = s.sqlite("SELECT group_concat(version || ':' || name, ',') FROM (SELECT * FROM refinery_schema_history ORDER BY version)");
    assert_eq!(rows, ALL);
    let schema = s.sqlite("SELECT group_concat(sql, ';') FROM sqlite_master");
    run(&["up"], &[("DATABASE_URL", &s.url())]).assert_code(0);
    assert_eq!(
        s.sqlite("SELECT group_concat(sql, ';') FROM sqlite_master"),
        schema
    );
}

#[test]
fn eight_replicas_at_once_on_postgres() {
    let db = password_cluster().create_db();
    for r in race(8, &["up"], &[("DATABASE_URL", &url(&db))]) {
        r.assert_code(0);
        assert_no_secret(&r, PASSWORD);
        // A direct connection is one server session: auto keeps the session lock.
        assert!(!r.stderr.contains(NOT_ONE_SESSION), "{}", r.stderr);
    }
    assert_eq!(history(&db), ALL);
    assert_eq!(
        password_cluster().psql(&db, "SELECT count(*) FROM refinery_schema_history"),
        "5"
    );
}

#[test]
fn eight_processes_at_once_on_one_sqlite_file() {
    let s = TempSqlite::new();
    for r in race(8, &["up"], &[("DATABASE_URL", &s.url())]) {
        r.assert_code(0);
    }
    assert_eq!(
        s.sqlite("SELECT count(*), count(DISTINCT version) FROM refinery_schema_history"),
        "5|5"
    );
}

#[test]
fn a_table_in_the_way_of_migration_3_stops_there() {
    let db = password_cluster().create_db();
    run(&["up", "--target", "2"], &[("DATABASE_URL", &url(&db))]).assert_code(0);
    password_cluster().psql(&db, "CREATE TABLE sequences (id int)");
    let r = up(&url(&db), &[]);
    r.assert_error(
        6,
        &["migration V3__sequences failed and was rolled back: relation \"sequences\" already exists (SQLSTATE 42P07)"],
    );
    assert_eq!(history(&db), "1:users,2:poses");
    // Nothing of migration 3 stayed behind (sequence_poses is created after the failing statement
    // in the same file, and the transaction took everything back).
    assert_eq!(
        password_cluster().psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'sequence_poses'"
        ),
        "0"
    );

    let s = TempSqlite::new();
    run(&["up", "--target", "2"], &[("DATABASE_URL", &s.url())]).assert_code(0);
    s.sqlite("CREATE TABLE sequences (id int)");
    let r = run(&["up"], &[("DATABASE_URL", &s.url())]);
    r.assert_error(
        6,
        &["migration V3__sequences failed and was rolled back: table sequences already exists"],
    );
    assert_eq!(
        s.sqlite("SELECT group_concat(version, ',') FROM refinery_schema_history"),
        "1,2"
    );
    assert_eq!(
        s.sqlite("SELECT count(*) FROM sqlite_master WHERE name = 'sequence_poses'"),
        "0"
    );
}

#[test]
fn wrong_password_fails_at_once() {
    let db = password_cluster().create_db();
    let bad = format!(
        "postgresql://postgres:Wr0ng-Secret-77@127.0.0.1:{}/{db}",
        password_cluster().port()
    );
    let start = Instant::now();
    let r = run(
        &["up"],
        &[("DATABASE_URL", &bad), ("MIGRATE_WAIT_TIMEOUT", "30")],
    );
    r.assert_error(
        4,
        &[
            "authentication failed for postgresql://postgres:***@",
            "28P01",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "must not wait for a wrong password"
    );
    assert_no_secret(&r, "Wr0ng-Secret-77");
}

#[test]
fn missing_database_fails_at_once() {
    let r = up(&url("no_such_db"), &[("MIGRATE_WAIT_TIMEOUT", "30")]);
    r.assert_error(4, &["database does not exist", "3D000"]);
}

#[test]
fn nothing_listening_gives_up_after_the_wait_timeout() {
    let port = free_port();
    let u = format!(
        "postgresql://postgres:{}@127.0.0.1:{port}/x",
        encoded(PASSWORD)
    );
    let start = Instant::now();
    let r = up(&u, &[("MIGRATE_WAIT_TIMEOUT", "2")]);
    let took = start.elapsed();
    r.assert_error(3, &["unreachable", "waiting for database (attempt 1"]);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[test]
fn a_server_that_starts_later_is_waited_for() {
    let late = PgCluster::init_only(PgOptions {
        password: Some(PASSWORD.into()),
        ..PgOptions::default()
    });
    let u = format!(
        "postgresql://postgres:{}@127.0.0.1:{}/postgres",
        encoded(PASSWORD),
        late.port()
    );
    let child = spawn(
        &["up"],
        &[("DATABASE_URL", &u), ("MIGRATE_WAIT_TIMEOUT", "60")],
    );
    // Start the server only once the migrator has found it missing and is waiting.
    child.wait_for("waiting for database (attempt 2", Duration::from_secs(30));
    late.start_server();
    let r = child.finish(Duration::from_secs(60));
    assert_no_secret(&r, PASSWORD);
    r.assert_ok(&["database ready after"]);
    assert_eq!(
        late.psql("postgres", "SELECT count(*) FROM refinery_schema_history"),
        "5"
    );
}

#[test]
fn every_url_form_reaches_the_same_database() {
    let db = password_cluster().create_db();
    up(&url(&db), &[]).assert_code(0);
    let port = password_cluster().port();
    let pw = encoded(PASSWORD);
    let socket = password_cluster().socket_dir().display().to_string();
    let forms = [
        format!("postgres://postgres:{pw}@127.0.0.1:{port}/{db}"),
        format!("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}"),
        format!("postgresql+asyncpg://postgres:{pw}@127.0.0.1:{port}/{db}"),
        format!("postgresql+psycopg2://postgres:{pw}@127.0.0.1:{port}/{db}"),
        format!("postgresql+psycopg://postgres:{pw}@127.0.0.1:{port}/{db}?sslmode=prefer"),
        format!(
            "postgresql://postgres:{pw}@localhost:{port}/{db}?connect_timeout=5&application_name=t"
        ),
        format!(
            "postgresql://postgres:{pw}@127.0.0.1:{},127.0.0.1:{port}/{db}",
            free_port()
        ),
        format!("postgresql://postgres:{pw}@/{db}?host={socket}&port={port}"),
        format!("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?ssl=disable"),
        format!("postgresql://postgres:{pw}@[::1]:{port}/{db}"),
        format!("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?unknown_knob=1"),
    ];
    for form in &forms {
        let r = up(form, &[]);
        r.assert_code(0);
        assert!(
            r.stderr.contains("schema is current at version 5"),
            "{form}: {}",
            r.stderr
        );
    }
    let r = up(&forms[10], &[]);
    assert!(
        r.stderr.contains("parameter 'unknown_knob' is not used"),
        "{}",
        r.stderr
    );
    // libpq's environment fallbacks.
    let r = run(
        &["up"],
        &[
            (
                "DATABASE_URL",
                &format!("postgresql://127.0.0.1:{port}/{db}"),
            ),
            ("PGUSER", "postgres"),
            ("PGPASSWORD", PASSWORD),
            ("PGSSLMODE", "disable"),
            ("PGAPPNAME", "fallback"),
            ("PGCONNECT_TIMEOUT", "5"),
        ],
    );
    r.assert_code(0);
    assert_no_secret(&r, PASSWORD);
}

#[test]
fn sqlite_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for (form, file) in [
        ("sqlite:///rel.db", "rel.db"),
        ("sqlite+aiosqlite:///./yogaflow.db", "yogaflow.db"),
        ("sqlite+pysqlite:///data/py.db", "data/py.db"),
    ] {
        run_in(dir.path(), &["up"], &[("DATABASE_URL", form)]).assert_code(0);
        assert!(dir.path().join(file).exists(), "{form}");
    }
    let abs = format!("sqlite:///{}", dir.path().join("abs.db").display());
    run(&["up"], &[("DATABASE_URL", &abs)]).assert_code(0);
    assert!(dir.path().join("abs.db").exists());
}

#[test]
fn configuration_errors_exit_2_and_name_the_part() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DATABASE_URL", "sqlite://")], "in-memory"),
        (&[("DATABASE_URL", "sqlite:///:memory:")], "in-memory"),
        (
            &[("DATABASE_URL", "postgresql://u:Pw-Zebra#42@h:notaport/d")],
            "port 'notaport'",
        ),
        (&[("DATABASE_URL", "mysql://h/d")], "scheme 'mysql'"),
        (
            &[("DATABASE_URL", "postgresql://h/d?sslmode=sometimes")],
            "sslmode='sometimes'",
        ),
        (
            &[("RAILWAY_ENVIRONMENT", "production")],
            "DATABASE_URL is not set",
        ),
        (&[("RAILWAY_PROJECT_ID", "abc")], "DATABASE_URL is not set"),
        (
            &[
                ("DATABASE_URL", "sqlite:///x.db"),
                ("MIGRATE_WAIT_TIMEOUT", "soon"),
            ],
            "MIGRATE_WAIT_TIMEOUT='soon'",
        ),
        (
            &[("DATABASE_URL", "sqlite:////no/such/dir/x.db")],
            "directory /no/such/dir does not exist",
        ),
        (
            &[(
                "DATABASE_URL",
                "postgresql://h/d?sslmode=verify-full&sslrootcert=/no/such.pem",
            )],
            "sslrootcert /no/such.pem",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (env, want) in cases {
        let r = run_in(dir.path(), &["up"], env);
        r.assert_code(2);
        assert!(r.stderr.contains(want), "{env:?}: {}", r.stderr);
        assert_no_secret(&r, "Pw-Zebra#42");
    }
    let r = run(&["up", "--bogus"], &[]);
    r.assert_code(2);
    for (name, value, want) in [
        (
            "MIGRATE_WAIT_TIMEOUT",
            "1e20",
            "MIGRATE_WAIT_TIMEOUT='1e20' is more than a year",
        ),
        (
            "MIGRATE_LOCK_TIMEOUT",
            "inf",
            "MIGRATE_LOCK_TIMEOUT='inf' is not a number",
        ),
        (
            "PGCONNECT_TIMEOUT",
            "1e20",
            "PGCONNECT_TIMEOUT='1e20' is more than a year",
        ),
    ] {
        let r = run_in(
            dir.path(),
            &["up"],
            &[("DATABASE_URL", "postgresql://h/d"), (name, value)],
        );
        r.assert_code(2);
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
    }
    let r = run_in(
        dir.path(),
        &["up"],
        &[("DATABASE_URL", "postgresql://h/d?connect_timeout=1e20")],
    );
    r.assert_error(2, &["more than a year"]);
}

/// A variable that is not UTF-8: ignored unless the tool reads it, and then a usage error that
/// names it without showing its value (it may hold the password).
#[test]
fn non_utf8_variables_never_panic() {
    use std::os::unix::ffi::OsStrExt;
    let secret = std::ffi::OsStr::from_bytes(b"postgresql://u:Pw-Zebra\xff42@h/d");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "DATABASE_URL",
        "PGPASSWORD",
        "MIGRATE_LOCK_TIMEOUT",
        "RUST_LOG",
    ] {
        let out = bin()
            .current_dir(dir.path())
            .arg("up")
            .env(name, secret)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name} is not valid UTF-8")),
            "{stderr}"
        );
        assert!(!stderr.contains("Pw-Zebra"), "{stderr}");
    }
    // One the tool does not read is not its business.
    let out = bin()
        .current_dir(dir.path())
        .arg("status")
        .env("SOMETHING_ELSE", secret)
        .env("DATABASE_URL", "sqlite:///x.db")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("x.db does not exist"));
}

/// `status | head -1`: the reader goes away; the run ends quietly with 0, as ripgrep's does.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::process::Stdio;
    let f = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &f.url())]).assert_code(0);
    let mut child = bin()
        .arg("status")
        .env("DATABASE_URL", f.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panic"), "{stderr}");
}

#[test]
fn changed_checksum_is_refused_and_future_versions_warn() {
    let db = password_cluster().create_db();
    up(&url(&db), &[]).assert_code(0);
    password_cluster().psql(
        &db,
        "UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2",
    );
    let r = up(&url(&db), &[]);
    r.assert_error(7, &["migration V2__poses was changed after it was applied"]);

    let db = password_cluster().create_db();
    up(&url(&db), &[]).assert_code(0);
    password_cluster().psql(&db, "INSERT INTO refinery_schema_history VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '7')");
    let r = up(&url(&db), &[]);
    r.assert_ok(&["WARN", "V99__from_the_future"]);
    let r = up(&url(&db), &[("MIGRATE_STRICT", "true")]);
    r.assert_error(7, &["newer than this binary knows", "MIGRATE_STRICT"]);

    let s = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &s.url())]).assert_code(0);
    s.sqlite("UPDATE refinery_schema_history SET checksum = '1' WHERE version = 4");
    let r = run(&["up"], &[("DATABASE_URL", &s.url())]);
    r.assert_error(7, &["V4__practice was changed"]);
}

#[test]
fn untracked_yogaflow_tables_point_to_baseline() {
    let db = password_cluster().create_db();
    password_cluster().psql(&db, "CREATE TABLE users (id int primary key); CREATE TABLE alembic_version (version_num varchar(32))");
    let r = up(&url(&db), &[]);
    r.assert_error(7, &["yogaflow-migrate baseline", "(users)"]);
}

#[test]
fn a_held_lock_times_out_naming_the_holder() {
    let db = password_cluster().create_db();
    let mut holder = password_cluster().psql_background(
        &db,
        &format!("SELECT pg_advisory_lock({KEY}); SELECT pg_sleep(30);"),
    );
    // Give the holder time to connect and take the lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    while password_cluster().psql(
        &db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "holder never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = up(&url(&db), &[("MIGRATE_LOCK_TIMEOUT", "1")]);
    holder.kill().ok();
    holder.wait().ok();
    r.assert_error(
        5,
        &[
            "migration lock not obtained within 1 s",
            "held by backend pid",
        ],
    );
    assert_eq!(
        password_cluster().psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"
        ),
        "0"
    );
}

#[test]
fn sigterm_while_waiting_is_not_success() {
    let port = free_port();
    let child = spawn(
        &["up"],
        &[
            (
                "DATABASE_URL",
                &format!("postgresql://postgres@127.0.0.1:{port}/x"),
            ),
            ("MIGRATE_WAIT_TIMEOUT", "60"),
        ],
    );
    child.wait_for("waiting for database", Duration::from_secs(30));
    child.signal("TERM");
    let r = child.finish(Duration::from_secs(30));
    r.assert_error(143, &["terminated by SIGTERM"]);
}

/// SQLite works on a thread of its own, so a signal ends a run that waits for SQLite's write
/// lock at once, with 143 and nothing written, instead of after `MIGRATE_LOCK_TIMEOUT`.
#[test]
fn sigterm_during_a_sqlite_lock_wait_ends_the_run() {
    let f = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &f.url())]).assert_code(0);
    run(&["down", "--all"], &[("DATABASE_URL", &f.url())]).assert_code(0);
    // Another writer holds the write lock for the whole test.
    let other = rusqlite::Connection::open(f.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let child = spawn(
        &["up"],
        &[("DATABASE_URL", &f.url()), ("MIGRATE_LOCK_TIMEOUT", "120")],
    );
    child.wait_for("database: sqlite:", Duration::from_secs(30));
    child.signal("TERM");
    // Killed (-9) at the limit if the signal waited for the lock instead.
    let r = child.finish(Duration::from_secs(60));
    r.assert_error(143, &["terminated by SIGTERM"]);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        f.sqlite("SELECT count(*) FROM refinery_schema_history"),
        "0"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let db = password_cluster().create_db();
    let r = up(&url(&db), &[("MIGRATE_LOG_FORMAT", "json")]);
    r.assert_code(0);
    for line in r.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["message"].is_string() && v["level"].is_string(), "{line}");
    }
    let r = up(&url("no_such_db"), &[("MIGRATE_LOG_FORMAT", "json")]);
    r.assert_code(4);
    let last: serde_json::Value = serde_json::from_str(r.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 4);
}

#[test]
fn help_lists_exit_codes_on_every_command() {
    for cmd in [
        "up", "status", "verify", "down", "baseline", "export", "import", "copy",
    ] {
        let r = run(&[cmd, "--help"], &[]);
        r.assert_code(0);
        assert!(r.stdout.contains("Usage: yogaflow-migrate"), "{cmd}");
        assert!(r.stdout.contains("Exit codes:"), "{cmd}");
    }
    let r = run(&["--help"], &[]);
    r.assert_code(0);
    assert!(r.stdout.contains("Exit codes:") && r.stdout.contains("MIGRATE_WAIT_TIMEOUT"));
}

/// A database at version 4 (V5's indexes pending) holding user 1.
fn at_v4_with_a_user() -> String {
    let db = password_cluster().create_db();
    run(&["up", "--target", "4"], &[("DATABASE_URL", &url(&db))]).assert_code(0);
    password_cluster().psql(
        &db,
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b.c', 'h')",
    );
    db
}

/// Holds an app transaction that wrote to practice_history (a RowExclusiveLock, which V5's
/// CREATE INDEX waits for) for `seconds`; returns once the lock is held.
fn hold_practice_history(db: &str, seconds: u32) -> std::process::Child {
    let holder = password_cluster().psql_background(
        db,
        &format!(
            "BEGIN; INSERT INTO practice_history (user_id, practiced_at) VALUES (1, now()); \
             SELECT pg_sleep({seconds}); COMMIT;"
        ),
    );
    let held = wait_until(Duration::from_secs(10), || {
        password_cluster().psql(
            db,
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'practice_history' AND l.mode = 'RowExclusiveLock' AND l.granted \
             AND l.pid <> pg_backend_pid()",
        ) == "1"
    });
    assert!(held, "the app transaction never took its lock");
    holder
}

/// A migration waiting for a table lock never queues the app's writes behind it for longer
/// than MIGRATE_DDL_LOCK_TIMEOUT: it gives way, names the open transaction, retries, and
/// applies once the app's transaction ends.
#[test]
fn ddl_gives_way_to_the_app_and_retries() {
    let db = at_v4_with_a_user();
    let mut holder = hold_practice_history(&db, 8);
    let migrator = spawn(
        &["up"],
        &[
            ("DATABASE_URL", &url(&db)),
            ("MIGRATE_DDL_LOCK_TIMEOUT", "0.5"),
            ("MIGRATE_LOCK_TIMEOUT", "60"),
        ],
    );
    migrator.wait_for("gave way to the app's traffic", Duration::from_secs(30));
    // The app keeps writing while the migration waits: no write waits for the migration
    // longer than its lock_timeout (plus psql's own start, well under a second).
    let mut slowest = Duration::ZERO;
    while holder.try_wait().unwrap().is_none() {
        let t = Instant::now();
        password_cluster().psql(
            &db,
            "INSERT INTO practice_history (user_id, practiced_at) VALUES (1, now())",
        );
        slowest = slowest.max(t.elapsed());
    }
    holder.wait().unwrap();
    let r = migrator.finish(Duration::from_secs(60));
    r.assert_ok(&[
        "open transactions that may hold it: pid ",
        "applied V5__query_indexes",
    ]);
    assert_no_secret(&r, PASSWORD);
    assert!(
        slowest < Duration::from_millis(2500),
        "an app write waited {slowest:?} behind the migration"
    );
}

/// An app transaction that outlasts MIGRATE_LOCK_TIMEOUT: exit 5 naming it, nothing applied.
#[test]
fn ddl_that_never_gets_its_lock_exits_5_naming_the_holder() {
    let db = at_v4_with_a_user();
    let mut holder = hold_practice_history(&db, 30);
    let r = up(
        &url(&db),
        &[
            ("MIGRATE_DDL_LOCK_TIMEOUT", "0.3"),
            ("MIGRATE_LOCK_TIMEOUT", "2"),
        ],
    );
    holder.kill().ok();
    holder.wait().ok();
    r.assert_error(
        5,
        &[
            "migration V5__query_indexes could not lock its tables",
            "nothing of it was applied",
            "pg_sleep(30)",
        ],
    );
    assert_eq!(
        password_cluster().psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "4"
    );
}

/// The password in every spelling a URL can hold it (as given, decoded, re-encoded), and
/// fragments of one that cannot be told apart from the host, never reach the output.
#[test]
fn no_spelling_of_the_password_is_ever_printed() {
    let closed = free_port();
    let cases: &[(&str, i32)] = &[
        (
            "postgresql://postgres:Xq9-s3cr3t%40P4ss@127.0.0.1:{closed}/x",
            3,
        ),
        (
            "postgresql+asyncpg://postgres:Xq9-s3cr3t%40P4ss@127.0.0.1:notaport/x",
            2,
        ),
        (
            "postgresql://postgres:Xq9-s3cr3t?P4ss@127.0.0.1:{closed}/x",
            3,
        ),
        (
            "postgresql://postgres:Xq9/s3cr3t@P4ss@127.0.0.1:{closed}/x",
            2,
        ),
        ("sqlite://user:Xq9-s3cr3t%40P4ss@host/x.db", 2),
        (
            "postgresql://127.0.0.1:{closed}/x?password=Xq9-s3cr3t%40P4ss",
            3,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (url, code) in cases {
        let url = url.replace("{closed}", &closed.to_string());
        for command in ["up", "status"] {
            let r = run_in(
                dir.path(),
                &[command],
                &[("DATABASE_URL", &url), ("MIGRATE_WAIT_TIMEOUT", "1")],
            );
            assert_eq!(r.code, *code, "{url} {command}: {}", r.stderr);
            let all = r.all();
            for spelling in ["s3cr3t", "P4ss", "%40P4ss", "Xq9%2Ds3cr3t"] {
                assert!(
                    !all.contains(spelling),
                    "{url} {command} shows {spelling}:\n{all}"
                );
            }
        }
    }
}

/// Behind PgBouncer in transaction mode (8 replicas, 2 server connections) a session lock
/// would be taken on one server connection and released on another; with
/// MIGRATE_LOCK=transaction each step's transaction takes the lock and reads the history again:
/// every replica succeeds and every version is applied once.
#[test]
fn replicas_race_through_pgbouncer_in_transaction_mode() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let bouncer = PgBouncer::start(&c, 2);
    let url = bouncer.url(&db);
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("MIGRATE_LOCK", "transaction"),
    ];
    for r in race(8, &["up"], &env) {
        r.assert_code(0);
    }
    assert_eq!(
        c.psql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4,5"
    );
    for command in ["status", "verify"] {
        run(
            &[command],
            &[("DATABASE_URL", &url), ("MIGRATE_LOCK", "transaction")],
        )
        .assert_code(0);
    }
    let r = run(
        &["up"],
        &[("DATABASE_URL", &url), ("MIGRATE_LOCK", "sometimes")],
    );
    r.assert_error(2, &["MIGRATE_LOCK='sometimes'"]);
}

/// The case: 8 replicas through PgBouncer in transaction mode on a port and host the
/// tool cannot recognise as a pooler's, with no MIGRATE_LOCK. `auto` must not trust the
/// session lock there (it would be taken on one server connection and leak in the pool), and
/// every step takes the lock in its own transaction and reads its history row again under it:
/// all exit 0, each version is recorded once, and the schema is complete.
#[test]
fn replicas_race_through_an_unrecognised_pooler_with_no_lock_mode() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let bouncer = PgBouncer::start(&c, 2);
    let url = bouncer.url(&db);
    assert!(!url.contains(":6432/") && !url.contains(":6543/") && !url.contains("pooler"));
    let env = [("DATABASE_URL", url.as_str())];
    let runs = race(8, &["up"], &env);
    for r in &runs {
        r.assert_code(0);
    }
    // Told by behaviour: the pid PgBouncer announced is not the backend's.
    assert!(runs.iter().any(|r| r.stderr.contains(NOT_ONE_SESSION)));
    assert_eq!(
        c.psql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4,5"
    );
    run(&["verify"], &env).assert_code(0);
    // The session lock was never left behind on a pooled server connection.
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ),
        "0"
    );
}
