//! Faults a deploy meets, injected for real: a silent network (packets dropped, no RST, as when
//! a Railway node or proxy goes away) at connect, while waiting for the migration lock, in the
//! middle of a migration and in the middle of a copy. Each ends within its documented bound,
//! with its own message, and the server lets go of the session and its locks.
//! Each test has a cluster of its own: a black hole covers the whole port.

mod support;

use std::time::Duration;
use support::*;

/// `MIGRATE_NET_TIMEOUT` for these tests: a dead peer is noticed within about this long.
const NET: &str = "3";

fn migrator_sessions(c: &PgCluster) -> String {
    c.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'yogaflow-migrate'",
    )
}

/// The server ends the vanished client's session (and so its locks) within the bound too.
fn assert_server_lets_go(c: &PgCluster) {
    let gone = wait_until(Duration::from_secs(60), || migrator_sessions(c) == "0");
    assert!(gone, "the server kept the migrator's session:\n{}", c.log());
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ),
        "0"
    );
}

/// Silences the cluster's port under `run` and expects it to notice within the bound: exit 3,
/// "the connection ... was lost". The silence lasts as long as the returned hole.
fn silence_and_expect_loss(c: &PgCluster, run: Spawned) -> (BlackHole, Run) {
    let hole = BlackHole::port(c.port());
    let r = run.finish(Duration::from_secs(60));
    r.assert_error(3, &["the connection to the database was lost"]);
    (hole, r)
}

#[test]
fn a_silent_first_host_gives_way_to_the_next() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let silent = free_port();
    let _hole = BlackHole::port(silent);
    let url = format!(
        "postgresql://postgres@127.0.0.1:{silent},127.0.0.1:{}/{db}?connect_timeout=2",
        c.port()
    );
    let r = run_bounded(&["up"], &[("DATABASE_URL", &url)], Duration::from_secs(60));
    r.assert_ok(&[
        "host 1 of 2 failed",
        "did not finish connecting within 2.0 s",
    ]);
}

#[test]
fn a_silent_single_host_is_unreachable_within_the_wait() {
    let silent = free_port();
    let _hole = BlackHole::port(silent);
    let url = format!("postgresql://postgres@127.0.0.1:{silent}/x?connect_timeout=2");
    let r = run_bounded(
        &["status"],
        &[("DATABASE_URL", &url), ("MIGRATE_WAIT_TIMEOUT", "5")],
        Duration::from_secs(60),
    );
    r.assert_error(3, &["(MIGRATE_WAIT_TIMEOUT=5)"]);
}

#[test]
fn silence_while_waiting_for_the_lock() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let mut holder = c.psql_background(
        &db,
        "SELECT pg_advisory_lock(8750326269032034167); SELECT pg_sleep(120);",
    );
    let held = wait_until(Duration::from_secs(10), || {
        c.psql(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        ) == "1"
    });
    assert!(held);
    let migrator = spawn(
        &["up"],
        &[
            ("DATABASE_URL", &c.url(&db)),
            ("MIGRATE_NET_TIMEOUT", NET),
            ("MIGRATE_LOCK_TIMEOUT", "300"),
        ],
    );
    migrator.wait_for("waiting for the migration lock", Duration::from_secs(30));
    let (hole, _) = silence_and_expect_loss(&c, migrator);
    holder.kill().ok();
    holder.wait().ok();
    // The holder's own session sleeps on with its lock; the migrator's must be gone.
    let gone = wait_until(Duration::from_secs(60), || migrator_sessions(&c) == "0");
    drop(hole);
    assert!(gone, "the server kept the migrator's session");
}

#[test]
fn silence_in_the_middle_of_a_migration() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up", "--target", "4"], &[("DATABASE_URL", &url)]).assert_code(0);
    c.psql(
        &db,
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b.c', 'h')",
    );
    // An app transaction V5's index waits for: the migration is under way, retrying.
    let mut app = c.psql_background(
        &db,
        "BEGIN; INSERT INTO practice_history (user_id, practiced_at) VALUES (1, now()); \
         SELECT pg_sleep(120); COMMIT;",
    );
    let migrator = spawn(
        &["up"],
        &[
            ("DATABASE_URL", &url),
            ("MIGRATE_NET_TIMEOUT", NET),
            ("MIGRATE_DDL_LOCK_TIMEOUT", "1"),
            ("MIGRATE_LOCK_TIMEOUT", "300"),
        ],
    );
    migrator.wait_for("gave way to the app's traffic", Duration::from_secs(30));
    let (hole, _) = silence_and_expect_loss(&c, migrator);
    app.kill().ok();
    app.wait().ok();
    assert_server_lets_go(&c);
    drop(hole);
    assert_eq!(
        c.psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "4"
    );
}

#[test]
fn silence_in_the_middle_of_a_copy() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let url = c.url(&db);
    let source = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &source.url())]).assert_code(0);
    source.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
         INSERT INTO practice_history (id, user_id, practiced_at, notes) SELECT i, 1, '2025-12-06 10:11:12.123456', 'row ' || i FROM n",
    );
    let copy = spawn(
        &["copy", "--from", &source.url()],
        &[("DATABASE_URL", &url), ("MIGRATE_NET_TIMEOUT", NET)],
    );
    let loading = wait_until(Duration::from_secs(60), || {
        c.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' \
                 AND query LIKE 'COPY \"practice_history\"%'"
            ),
        ) == "1"
    });
    if !loading {
        let r = copy.finish(Duration::from_secs(60));
        panic!("the copy never reached practice_history:\n{}", r.stderr);
    }
    let (hole, _) = silence_and_expect_loss(&c, copy);
    assert_server_lets_go(&c);
    drop(hole);
    assert_eq!(c.psql(&db, "SELECT count(*) FROM practice_history"), "0");
}

/// The connection cut just before COMMIT of `copy --replace`: the old rows stay, and so do
/// their sequences (they are restarted inside the transaction, which a rollback undoes).
#[test]
fn a_cut_before_commit_leaves_rows_and_sequences_as_they_were() {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    c.psql(
        &db,
        "INSERT INTO users (email, hashed_password) \
         SELECT 'u' || i || '@example.com', 'h' FROM generate_series(1, 100) AS i",
    );
    let source = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &source.url())]).assert_code(0);
    source.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h'), (2, 'c@d', 'h')",
    );
    let proxy = CutProxy::start(c.port(), b"COMMIT\0");
    let through = format!("postgresql://postgres@127.0.0.1:{}/{db}", proxy.port());
    let r = run_bounded(
        &["copy", "--from", &source.url(), "--replace"],
        &[("DATABASE_URL", &through), ("MIGRATE_NET_TIMEOUT", NET)],
        Duration::from_secs(60),
    );
    r.assert_error(3, &["the connection to the database was lost"]);
    assert_eq!(c.psql(&db, "SELECT count(*) FROM users"), "100");
    // The app's next insert takes id 101, as before the copy.
    assert_eq!(
        c.psql(
            &db,
            "INSERT INTO users (email, hashed_password) VALUES ('new@example.com', 'h') RETURNING id"
        ),
        "101"
    );
}

/// SIGTERM while rows go into SQLite: exit 143 and nothing committed (SQLite works on a thread
/// of its own, which the signal interrupts).
#[test]
fn sigterm_during_an_import_into_sqlite_commits_nothing() {
    let source = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &source.url())]).assert_code(0);
    source.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
         INSERT INTO practice_history (id, user_id, practiced_at, notes) SELECT i, 1, '2025-12-06 10:11:12.123456', 'row ' || i FROM n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    run(
        &["export", "--out", file.to_str().unwrap()],
        &[("DATABASE_URL", &source.url())],
    )
    .assert_code(0);
    let target = TempSqlite::new();
    let import = spawn(
        &["import", file.to_str().unwrap()],
        &[("DATABASE_URL", &target.url())],
    );
    // users is loaded first; practice_history's million rows follow.
    import.wait_for("users: 1 rows", Duration::from_secs(60));
    import.signal("TERM");
    let r = import.finish(Duration::from_secs(60));
    r.assert_error(143, &["terminated by SIGTERM"]);
    assert_eq!(target.sqlite("SELECT count(*) FROM users"), "0");
    assert_eq!(target.sqlite("SELECT count(*) FROM practice_history"), "0");
}
