//! Migrations marked `-- no-transaction` (for `CREATE INDEX CONCURRENTLY`): run statement by
//! statement outside a transaction, through the seam, against a real server with writers
//! inserting all the while; an index an interrupted build left INVALID is rebuilt; an undo not
//! marked the same way is refused; so is such a script behind a pooler in `auto`.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use yogaflow_migrate::db::{Database, OpenOptions, Outcome, Step};
use yogaflow_migrate::error::Kind;
use yogaflow_migrate::migrate::Migration;

fn migration(up: &'static str, down: &'static str) -> Migration {
    Migration {
        version: 6,
        name: "concurrent_index".into(),
        up,
        down,
        checksum: 6,
    }
}

fn writing() -> OpenOptions {
    OpenOptions {
        create: true,
        lock_wait: Some(Duration::from_secs(30)),
        ..OpenOptions::reading(Duration::from_secs(10))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_concurrent_index_is_built_while_writers_write() {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    c.psql(
        &db,
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         INSERT INTO practice_history (user_id, practiced_at, notes)
         SELECT 1, now(), 'note ' || i FROM generate_series(1, 200000) i",
    );
    let m = migration(
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ix_history_notes ON practice_history (notes);\n",
        "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS ix_history_notes;\n",
    );
    let url = c.url(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let writes = Arc::new(Mutex::new(0u64));
    // Four writers inserting without pause, each on its own thread and connection.
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, slowest, writes) =
                (url.clone(), stop.clone(), slowest.clone(), writes.clone());
            std::thread::spawn(move || {
                runtime().block_on(async {
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    while !stop.load(Ordering::SeqCst) {
                        let t = Instant::now();
                        client
                            .batch_execute(
                                "INSERT INTO practice_history (user_id, practiced_at, notes) \
                                 VALUES (1, now(), 'live')",
                            )
                            .await
                            .unwrap();
                        let took = t.elapsed();
                        let mut s = slowest.lock().unwrap();
                        *s = (*s).max(took);
                        *writes.lock().unwrap() += 1;
                    }
                })
            })
        })
        .collect();
    let outcome = runtime().block_on(async {
        let url = yogaflow_migrate::config::parse_url(&url).unwrap();
        let mut db = Database::open(&url, writing()).await.unwrap();
        db.run_step(Step::Apply(&m)).await
    });
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    assert!(matches!(outcome, Ok(Outcome::Done(_))), "{outcome:?}");
    assert_eq!(
        c.psql(
            &db,
            "SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE i.relname = 'ix_history_notes'"
        ),
        "t"
    );
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM refinery_schema_history WHERE version = 6"
        ),
        "1"
    );
    let slowest = *slowest.lock().unwrap();
    assert!(
        *writes.lock().unwrap() > 0,
        "no write happened during the build"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a writer waited {slowest:?} during the concurrent build"
    );
}

#[test]
fn an_invalid_index_left_by_an_interrupted_build_is_rebuilt() {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    c.psql(
        &db,
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h');
         INSERT INTO practice_history (user_id, practiced_at) SELECT 1, now() FROM generate_series(1, 10) i",
    );
    // A failed concurrent build leaves its index behind, INVALID (here: duplicates).
    let failed = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &c.url(&db), "-c"])
        .arg("CREATE UNIQUE INDEX CONCURRENTLY ix_history_user ON practice_history (user_id)")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let valid = || {
        c.psql(
            &db,
            "SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE i.relname = 'ix_history_user'",
        )
    };
    assert_eq!(valid(), "f");
    let m = migration(
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ix_history_user ON practice_history (user_id);\n",
        "DROP INDEX ix_history_user;\n",
    );
    let url = yogaflow_migrate::config::parse_url(&c.url(&db)).unwrap();
    let (applied, undo) = runtime().block_on(async {
        let mut db = Database::open(&url, writing()).await.unwrap();
        let applied = db.run_step(Step::Apply(&m)).await;
        // Its undo is not marked: refused, nothing changed.
        let undo = db
            .run_step(Step::Undo {
                migration: &m,
                allow_loss: false,
            })
            .await;
        (applied, undo)
    });
    assert!(matches!(applied, Ok(Outcome::Done(_))), "{applied:?}");
    assert_eq!(valid(), "t");
    let e = undo.unwrap_err();
    assert_eq!(e.kind(), Kind::Migration);
    assert!(e.to_string().contains("must be marked the same way"), "{e}");
    assert_eq!(valid(), "t");
}

/// Behind a transaction pooler the tool does not recognise, `MIGRATE_LOCK=auto` finds by
/// behaviour that there is no one server session to hold the session lock, so a script that
/// runs outside a transaction (which nothing else keeps apart from other migrators) is refused
/// under the lock, with nothing changed; the direct connection above runs it.
#[test]
fn behind_an_unrecognised_pooler_auto_refuses_a_no_transaction_script() {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    let bouncer = PgBouncer::start(c, 2);
    let m = migration(
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ix_history_notes ON practice_history (notes);\n",
        "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS ix_history_notes;\n",
    );
    let url = yogaflow_migrate::config::parse_url(&bouncer.url(&db)).unwrap();
    let outcome = runtime().block_on(async {
        let mut db = Database::open(&url, writing()).await.unwrap();
        db.with_lock(Duration::from_secs(10), async |db: &mut Database| {
            db.run_step(Step::Apply(&m)).await
        })
        .await
    });
    let e = outcome.unwrap_err();
    assert_eq!(e.kind(), Kind::Migration);
    assert!(
        e.to_string().contains(
            "V6__concurrent_index runs outside a transaction, which needs the migration lock \
             held by one server session, and this connection does not keep one"
        ),
        "{e}"
    );
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM pg_class WHERE relname = 'ix_history_notes'"
        ),
        "0"
    );
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ),
        "0"
    );
}

/// What a developer does for a new migration: `new NAME` in a checkout (this crate's sources,
/// copied by [`Checkout`]), the SQL written into the four files under their headers
/// (`-- no-transaction` first where given), `lint`, and a build. Returns the new binary.
fn build_with_v6(files: [(&str, &str); 4]) -> std::path::PathBuf {
    let copy = Checkout::new("v6");
    let src = &copy.root;
    let r = run_in(src, &["new", "ix_poses_category"], &[]);
    r.assert_code(0);
    for (path, sql) in files {
        assert!(r.stdout.contains(path), "{path} not written: {}", r.stdout);
        let path = src.join(path);
        let header = std::fs::read_to_string(&path).unwrap();
        let text = match sql.strip_prefix("-- no-transaction\n") {
            Some(rest) => format!("-- no-transaction\n{header}{rest}"),
            None => format!("{header}{sql}"),
        };
        std::fs::write(&path, text).unwrap();
    }
    let lint = run_in(src, &["lint"], &[]);
    lint.assert_code(0);
    copy.build()
}

#[test]
fn new_build_up_applies_v6_and_an_interrupted_concurrent_build_is_retried() {
    let v6 = build_with_v6([
        (
            "sql/postgres/V6__ix_poses_category.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY ix_poses_category ON poses (category);\n",
        ),
        (
            "sql/postgres/V6__ix_poses_category.down.sql",
            "-- no-transaction\nDROP INDEX CONCURRENTLY ix_poses_category;\n",
        ),
        (
            "sql/sqlite/V6__ix_poses_category.sql",
            "CREATE INDEX ix_poses_category ON poses (category);\n",
        ),
        (
            "sql/sqlite/V6__ix_poses_category.down.sql",
            "DROP INDEX ix_poses_category;\n",
        ),
    ]);
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("MIGRATE_DDL_LOCK_TIMEOUT", "0.5"),
    ];
    run(&["up"], &env).assert_code(0);
    c.psql(
        &db,
        "INSERT INTO poses (name, difficulty, category) \
         SELECT 'pose ' || i, 'beginner', 'c' || (i % 7) FROM generate_series(1, 1000) i",
    );
    let valid = || {
        c.psql(
            &db,
            "SELECT coalesce((SELECT x.indisvalid::text FROM pg_index x JOIN pg_class i \
             ON i.oid = x.indexrelid WHERE i.relname = 'ix_poses_category'), 'none')",
        )
    };
    // The app holds a write on poses in an open transaction: the concurrent build waits for
    // it, gives way after MIGRATE_DDL_LOCK_TIMEOUT, and is retried; a SIGTERM ends the run.
    let mut app = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = app.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "BEGIN; UPDATE poses SET description = 'x' WHERE id = 1;"
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    let holding = wait_until(Duration::from_secs(10), || {
        c.psql(
            &db,
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' \
             AND query LIKE 'UPDATE poses%'",
        ) == "1"
    });
    assert!(holding, "the app's transaction did not start");
    let up = spawn_command(program(&v6), &["up"], &env);
    up.wait_for("gave way to the app's traffic", Duration::from_secs(30));
    assert_eq!(
        valid(),
        "false",
        "the interrupted build leaves its index INVALID"
    );
    up.signal("TERM");
    let r = up.finish(Duration::from_secs(10));
    r.assert_code(143);
    assert_eq!(valid(), "false");
    assert_eq!(
        c.psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "5"
    );
    {
        use std::io::Write;
        let mut stdin = app.stdin.take().unwrap();
        writeln!(stdin, "ROLLBACK;").unwrap();
    }
    app.wait().unwrap();

    // The retry drops the INVALID index, builds it again, and records V6.
    let r = spawn_command(program(&v6), &["up"], &env).finish(Duration::from_secs(30));
    r.assert_ok(&[
        "index ix_poses_category is INVALID",
        "applied V6__ix_poses_category",
    ]);
    // The drift check builds V6 on a scratch schema, in a transaction, without CONCURRENTLY.
    assert!(
        !r.stderr.contains("could not check the schema"),
        "{}",
        r.stderr
    );
    assert_eq!(valid(), "true");
    assert_eq!(
        c.psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "6"
    );
    // Its undo, marked the same way, runs; the binary without V6 then sees version 5.
    let r = spawn_command(program(&v6), &["down", "--steps", "1"], &env)
        .finish(Duration::from_secs(30));
    r.assert_code(0);
    assert_eq!(valid(), "none");
    run(&["verify"], &env).assert_code(0);
}
