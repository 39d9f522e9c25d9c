//! No silent stall: a middlebox that accepts every byte and never answers ([`WedgeProxy`],
//! wedging a connection from a chosen client message on) ends every phase with exit 3 within
//! the bound, naming what was waiting; the server session is ended, so nothing is left
//! half-done (no open transaction, no lock), and a rerun without the proxy succeeds. A
//! statement that is only slow (longer than the bound) still completes.
//! Each test has a cluster of its own, so that "no session left" is about that test alone.

mod support;

use std::time::Duration;
use support::*;
use yogaflow_migrate::db::{Database, OpenOptions, Outcome, Step};
use yogaflow_migrate::error::Kind;
use yogaflow_migrate::migrate::Migration;

/// `MIGRATE_NET_TIMEOUT` for these tests (the smallest allowed).
const NET: &str = "2";
/// What a run may take in all: a lost link is declared within twice the bound; the rest is
/// margin for a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A cluster, a database on it, and a wedging proxy in front of it.
fn setup(trigger: Trigger) -> (PgCluster, String, WedgeProxy) {
    let c = PgCluster::start(PgOptions::default());
    let db = c.create_db();
    let proxy = WedgeProxy::start(c.port(), trigger);
    (c, db, proxy)
}

fn via(proxy: &WedgeProxy, db: &str) -> String {
    format!(
        "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
        proxy.port()
    )
}

fn env(url: &str) -> Vec<(&str, &str)> {
    vec![("DATABASE_URL", url), ("MIGRATE_NET_TIMEOUT", NET)]
}

/// Nothing of ours is left on the server: no session in a transaction, no advisory lock. (The
/// proxy still holds its upstream connections open: a session it kept would show.)
fn assert_nothing_left(c: &PgCluster, db: &str) {
    let open = c.psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
             AND (xact_start IS NOT NULL OR state = 'active') AND pid <> pg_backend_pid()"
        ),
    );
    assert_eq!(open, "0", "a session was left open:\n{}", c.log());
    let locks = c.psql(
        "postgres",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
    );
    assert_eq!(locks, "0");
}

#[test]
fn the_first_query_after_login() {
    let (c, db, proxy) = setup(Trigger::Text("refinery_schema_history", 1));
    let url = via(&proxy, &db);
    for command in ["status", "up"] {
        let r = run_bounded(&[command], &env(&url), LIMIT);
        r.assert_error(
            3,
            &[
                "the connection to the database was lost: reading the migration history got \
                 no answer within 2 s (MIGRATE_NET_TIMEOUT)",
            ],
        );
    }
    assert!(proxy.wedged() >= 2);
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
}

#[test]
fn waiting_for_the_migration_lock() {
    let (c, db, proxy) = setup(Trigger::Text("pg_try_advisory_lock", 3));
    let mut holder = c.psql_background(
        &db,
        "SELECT pg_advisory_lock(8750326269032034167); SELECT pg_sleep(60);",
    );
    let held = wait_until(Duration::from_secs(10), || {
        c.psql(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        ) == "1"
    });
    assert!(held);
    let url = via(&proxy, &db);
    let mut e = env(&url);
    e.push(("MIGRATE_LOCK_TIMEOUT", "300"));
    let r = run_bounded(&["up"], &e, LIMIT);
    r.assert_error(3, &["taking the migration lock got no answer within 2 s"]);
    // Nothing of ours is busy (the holder sleeps on with its lock until it is ended; the
    // proxy keeps the side connections' upstream open, idle).
    let ours = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'yogaflow-migrate' \
                AND state <> 'idle'";
    assert!(wait_until(Duration::from_secs(10), || c
        .psql("postgres", ours)
        == "0"));
    holder.kill().ok();
    holder.wait().ok();
    c.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'",
    );
    assert!(wait_until(Duration::from_secs(10), || {
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        ) == "0"
    }));
    assert_nothing_left(&c, &db);
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
}

#[test]
fn waiting_for_the_transaction_lock_behind_a_pooler() {
    let (c, db, proxy) = setup(Trigger::Text("pg_advisory_xact_lock", 1));
    let url = via(&proxy, &db);
    let mut e = env(&url);
    e.push(("MIGRATE_LOCK", "transaction"));
    let r = run_bounded(&["up"], &e, LIMIT);
    r.assert_error(
        3,
        &[
            "creating the history table under the migration lock (MIGRATE_LOCK=transaction) \
             waited",
            "the server was not working on it",
            "our server session was ended",
        ],
    );
    assert_nothing_left(&c, &db);
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
}

#[test]
fn inside_a_migration() {
    let (c, db, proxy) = setup(Trigger::Text("CREATE TABLE poses", 1));
    let r = run_bounded(&["up"], &env(&via(&proxy, &db)), LIMIT);
    r.assert_error(
        3,
        &[
            "migration V2__poses waited",
            "(MIGRATE_NET_TIMEOUT) the server was not working on it",
            "our server session was ended, so what it had not committed was rolled back",
        ],
    );
    assert_nothing_left(&c, &db);
    assert_eq!(
        c.psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "1"
    );
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
}

#[test]
fn at_the_final_commit() {
    // The COMMIT statement itself, not the READ COMMITTED a step's transaction starts with.
    let (c, db, proxy) = setup(Trigger::Text("COMMIT\0", 1));
    let r = run_bounded(&["up"], &env(&via(&proxy, &db)), LIMIT);
    r.assert_error(
        3,
        &[
            "COMMIT of migration V1__users waited",
            "whether the COMMIT took effect is unknown: `yogaflow-migrate status` shows what \
             is recorded",
        ],
    );
    assert_nothing_left(&c, &db);
    let direct = c.url(&db);
    run(&["status"], &[("DATABASE_URL", &direct)]).assert_ok(&[]);
    run(&["up"], &[("DATABASE_URL", &direct)]).assert_code(0);
}

#[test]
fn verify_building_the_expected_schema() {
    let (c, db, proxy) = setup(Trigger::Text("CREATE SCHEMA yogaflow_expected", 1));
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    let r = run_bounded(&["verify"], &env(&via(&proxy, &db)), LIMIT);
    r.assert_error(
        3,
        &[
            "building the expected schema waited",
            "the server was not working on it",
        ],
    );
    assert_nothing_left(&c, &db);
    run(&["verify"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
}

/// A SQLite source with enough rows that its COPY spans many CopyData messages.
fn big_source() -> TempSqlite {
    let source = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &source.url())]).assert_code(0);
    source.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
         INSERT INTO practice_history (id, user_id, practiced_at, notes)
         SELECT i, 1, '2025-12-06 10:11:12.123456', 'row ' || i FROM n",
    );
    source
}

#[test]
fn mid_copy_in_copy_and_import() {
    let source = big_source();
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_string();
    run(
        &["export", "--out", &path],
        &[("DATABASE_URL", &source.url())],
    )
    .assert_code(0);
    for (i, args) in [
        vec!["copy", "--from", source.url().as_str()],
        vec!["import", path.as_str()],
    ]
    .iter()
    .enumerate()
    {
        let (c, db, proxy) = setup(Trigger::CopyData(40));
        let direct = c.url(&db);
        run(&["up"], &[("DATABASE_URL", &direct)]).assert_code(0);
        let r = run_bounded(args, &env(&via(&proxy, &db)), LIMIT);
        r.assert_error(
            3,
            &["COPY into practice_history waited", "(MIGRATE_NET_TIMEOUT)"],
        );
        assert_eq!(proxy.wedged(), 1, "case {i}");
        assert_nothing_left(&c, &db);
        assert_eq!(c.psql(&db, "SELECT count(*) FROM practice_history"), "0");
        run(args, &[("DATABASE_URL", &direct)]).assert_code(0);
        assert_eq!(
            c.psql(&db, "SELECT count(*) FROM practice_history"),
            "200000"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `m` through the seam on `url`, with a bound of 2 s.
fn apply(url: &str, m: &Migration) -> yogaflow_migrate::error::Result<Outcome> {
    runtime().block_on(async {
        let url = yogaflow_migrate::config::parse_url(url).unwrap();
        let options = OpenOptions {
            create: true,
            lock_wait: Some(Duration::from_secs(30)),
            net_timeout: Duration::from_secs(2),
            ..OpenOptions::reading(Duration::from_secs(10))
        };
        let mut db = Database::open(&url, options).await?;
        db.with_lock(Duration::from_secs(10), async |db: &mut Database| {
            db.run_step(Step::Apply(m)).await
        })
        .await
    })
}

#[test]
fn a_no_transaction_step() {
    let (c, db, proxy) = setup(Trigger::Text("CONCURRENTLY", 1));
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    let m = Migration {
        version: 6,
        name: "concurrent_index".into(),
        up: "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ix_history_notes \
             ON practice_history (notes);\n",
        down: "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS ix_history_notes;\n",
        checksum: 6,
    };
    let e = apply(&via(&proxy, &db), &m).unwrap_err();
    assert_eq!(e.kind(), Kind::Unreachable, "{}", e.report());
    assert!(
        e.report()
            .contains("migration V6__concurrent_index, statement 1 of 1 waited"),
        "{}",
        e.report()
    );
    assert_nothing_left(&c, &db);
    assert!(matches!(apply(&c.url(&db), &m), Ok(Outcome::Done(_))));
}

#[test]
fn a_statement_slower_than_the_bound_completes() {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    let m = Migration {
        version: 6,
        name: "slow".into(),
        up: "SELECT pg_sleep(5);\nCREATE TABLE slow_done (id int);\n",
        down: "DROP TABLE slow_done;\n",
        checksum: 6,
    };
    let outcome = apply(&c.url(&db), &m);
    assert!(matches!(outcome, Ok(Outcome::Done(_))), "{outcome:?}");
    assert_eq!(c.psql(&db, "SELECT count(*) FROM slow_done"), "0");
}
