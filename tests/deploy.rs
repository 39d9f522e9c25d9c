//! A deploy without downtime, through a real rename (`users.full_name` to `display_name`)
//! written by `new --from --rename` and built into a copy of the binary: the previous app
//! version's writers and readers run on the old column while `up` applies the expand step
//! (killed with SIGKILL in the middle of its backfill, then run again: nothing lost); the new
//! version's run on the new column alongside them, each seeing the other's writes; then
//! `complete` applies the contract step under the new version's load. Zero errors throughout,
//! `verify` clean at each stage. Through PgBouncer in transaction mode on a port the tool
//! cannot recognise, the same pair (backfill included) applies too.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use support::*;

/// The copy of the binary that carries the rename pair (V6 expand, V7 its backfill, V8
/// contract), built once for the tests of this file.
fn binary() -> &'static std::path::PathBuf {
    static B: OnceLock<std::path::PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let copy = Checkout::new("deploy");
        let c = cluster();
        let models = c.create_db();
        run(&["up"], &[("DATABASE_URL", &c.url(&models))]).assert_code(0);
        c.psql(
            &models,
            "ALTER TABLE users RENAME COLUMN full_name TO display_name",
        );
        let sql = copy.sql().display().to_string();
        let from = c.url(&models);
        let args = [
            "new",
            "rename_full_name",
            "--from",
            &from,
            "--rename",
            "users.full_name=display_name",
            "--dir",
            &sql,
        ];
        run(&args, &[]).assert_ok(&["V8__rename_full_name_contract: contract step(s)"]);
        run_in(&copy.root, &["lint"], &[]).assert_code(0);
        copy.build()
    })
}

fn with_binary(args: &[&str], url: &str) -> Run {
    let mut c = program(binary());
    c.args(args).env("DATABASE_URL", url);
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-9),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Which app version a load runs as: the column it writes and reads.
#[derive(Clone, Copy)]
enum Version {
    Old,
    New,
}

impl Version {
    fn column(self) -> &'static str {
        match self {
            Version::Old => "full_name",
            Version::New => "display_name",
        }
    }
}

/// An app version's load: one writer (inserts, then updates its last row) and one reader
/// (reads back what it wrote, and a row the other version wrote), each on its own
/// connection, until stopped. Every error is kept.
struct Load {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, version: Version, tag: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (url, s, w, e) = (
            url.to_string(),
            stop.clone(),
            writes.clone(),
            errors.clone(),
        );
        let thread = std::thread::spawn(move || {
            runtime().block_on(write_and_read(&url, version, tag, &s, &w, &e));
        });
        Load {
            stop,
            writes,
            errors,
            threads: vec![thread],
        }
    }

    /// Stops the load; its write count and errors.
    fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap().clone();
        (self.writes.load(Ordering::SeqCst), errors)
    }
}

async fn write_and_read(
    url: &str,
    v: Version,
    tag: &str,
    stop: &AtomicBool,
    writes: &AtomicU64,
    errors: &Mutex<Vec<String>>,
) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let col = v.column();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let name = format!("{tag} {i}");
        let step = async {
            let insert = format!(
                "INSERT INTO users (email, hashed_password, {col}) VALUES ($1, 'h', $2) \
                 RETURNING id"
            );
            let email = format!("{tag}-{i}@example.com");
            let id: i32 = client.query_one(&insert, &[&email, &name]).await?.get(0);
            let renamed = format!("{name} renamed");
            let update = format!("UPDATE users SET {col} = $1 WHERE id = $2");
            client.execute(&update, &[&renamed, &id]).await?;
            let read = format!("SELECT {col} FROM users WHERE id = $1");
            let got: Option<String> = client.query_one(&read, &[&id]).await?.get(0);
            Ok::<_, tokio_postgres::Error>((got, renamed))
        };
        match step.await {
            Ok((got, want)) if got.as_deref() == Some(want.as_str()) => {
                writes.fetch_add(1, Ordering::SeqCst);
            }
            Ok((got, want)) => errors
                .lock()
                .unwrap()
                .push(format!("read {got:?}, wrote {want}")),
            Err(e) => errors.lock().unwrap().push(format!("{tag}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `n` users with a name, as the previous version wrote them.
fn seed(c: &PgCluster, db: &str, n: u32) {
    c.psql(
        db,
        &format!(
            "INSERT INTO users (email, hashed_password, full_name) \
             SELECT 'seed-' || i || '@example.com', 'h', 'seed ' || i FROM generate_series(1, {n}) i"
        ),
    );
}

#[test]
fn a_rename_deploys_under_both_versions_load_with_no_error_and_nothing_lost() {
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    seed(c, &db, 300_000);
    let old = Load::start(&url, Version::Old, "old");

    // The expand step, killed in the middle of its backfill, then run again.
    let mut up = program(binary());
    up.env("DATABASE_URL", &url);
    let killed = spawn_command(up, &["up"], &[]);
    killed.wait_for("row(s) of users, 1000 at a time", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    killed.signal("KILL");
    killed.finish(Duration::from_secs(10));
    let left = c.psql(&db, "SELECT count(*) FROM users WHERE display_name IS NULL");
    assert_ne!(left, "0", "the backfill was not interrupted");
    let history =
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history";
    assert_eq!(c.psql(&db, history), "1,2,3,4,5,6");
    let r = with_binary(&["up"], &url);
    r.assert_ok(&["V8__rename_full_name_contract deferred: a contract step"]);
    assert_eq!(c.psql(&db, history), "1,2,3,4,5,6,7");
    with_binary(&["verify"], &url).assert_code(0);
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
        ),
        "0",
        "every row has both columns equal"
    );
    let status = with_binary(&["status", "--json"], &url);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["deferred"], 1);
    assert_eq!(v["migrations"][7]["state"], "deferred");

    // The new version alongside the old one.
    let new = Load::start(&url, Version::New, "new");
    std::thread::sleep(Duration::from_secs(2));
    // Each sees the other's writes: the columns agree on every row either wrote.
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
        ),
        "0"
    );
    // The old version stops (its deploy is over); complete under the new version's load.
    let (old_writes, old_errors) = old.stop();
    assert!(old_errors.is_empty(), "old version: {old_errors:?}");
    assert!(old_writes > 0);
    with_binary(&["complete"], &url).assert_ok(&["applied V8__rename_full_name_contract"]);
    std::thread::sleep(Duration::from_millis(500));
    let (new_writes, new_errors) = new.stop();
    assert!(new_errors.is_empty(), "new version: {new_errors:?}");
    assert!(new_writes > 0);
    with_binary(&["verify"], &url).assert_code(0);
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name LIKE 'seed %'"
        ),
        "300000",
        "every seeded name kept"
    );
    eprintln!("old version wrote {old_writes}, new version {new_writes}, with no error");
}

/// While the previous version may still serve (sessions older than the expand step),
/// `complete` refuses, naming them, and changes nothing; `--wait` waits for them to go.
#[test]
fn complete_waits_for_the_previous_version_to_go() {
    binary();
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    let old = c.psql_background(&db, "SELECT pg_sleep(4)");
    std::thread::sleep(Duration::from_millis(500));
    // On Railway: the deployment that applied each step is recorded with it.
    let mut up = program(binary());
    up.args(["up"])
        .env("DATABASE_URL", &url)
        .env("RAILWAY_DEPLOYMENT_ID", "dep-6f1c")
        .env("RAILWAY_GIT_COMMIT_SHA", "a1b2c3d");
    assert!(up.status().unwrap().success());
    let status = with_binary(&["status", "--json"], &url);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let m = &v["migrations"];
    assert_eq!(
        (&m[5]["deployment_id"], &m[5]["git_commit_sha"]),
        (&"dep-6f1c".into(), &"a1b2c3d".into())
    );
    assert_eq!(
        (&m[5]["phase"], &m[7]["phase"], &m[7]["state"]),
        (&"expand".into(), &"contract".into(), &"deferred".into())
    );
    assert!(
        m[4]["deployment_id"].is_null(),
        "V5 was applied outside Railway"
    );
    let text = with_binary(&["status"], &url).stdout;
    for needle in [
        "by deployment dep-6f1c (commit a1b2c3d)",
        "deferred",
        "1 deferred",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let r = with_binary(&["complete"], &url);
    r.assert_error(
        5,
        &[
            "1 session(s) connected before the expand steps were applied",
            "nothing was applied",
        ],
    );
    with_binary(&["complete", "--wait", "30"], &url)
        .assert_ok(&["applied V8__rename_full_name_contract"]);
    drop(old);
}

/// Behind PgBouncer in transaction mode on a free port, with no MIGRATE_LOCK: the expand
/// step and its backfill (each batch a transaction of its own under the transaction lock),
/// racing replicas included, then the contract step.
#[test]
fn the_rename_pair_applies_through_an_unrecognised_pooler() {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    seed(c, &db, 5_000);
    let bouncer = PgBouncer::start(c, 4);
    let url = bouncer.url(&db);
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || with_binary(&["up"], &url))
        })
        .collect();
    for r in racers {
        r.join().unwrap().assert_code(0);
    }
    assert_eq!(
        c.psql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4,5,6,7"
    );
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
        ),
        "0"
    );
    with_binary(&["verify"], &url).assert_code(0);
    // The pooler's own server connections are older than the expand step: named, and
    // passed over knowingly.
    with_binary(&["complete", "--force"], &url)
        .assert_ok(&["applied V8__rename_full_name_contract"]);
    with_binary(&["verify"], &url).assert_code(0);
}

/// A row the app holds longer than the table-lock bound in the middle of a backfill: the
/// batch gives way and is tried again, the batches before stay done, and the backfill
/// finishes once the row is free (only one that makes no progress for MIGRATE_LOCK_TIMEOUT
/// fails).
#[test]
fn a_backfill_gives_way_to_a_row_the_app_holds_and_goes_on() {
    binary();
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    seed(c, &db, 20_000);
    with_binary(&["up", "--target", "6"], &url).assert_code(0);
    let holder = c.psql_background(
        &db,
        "BEGIN; SELECT 1 FROM users WHERE email = 'seed-1@example.com' FOR UPDATE; \
         SELECT pg_sleep(2); COMMIT;",
    );
    std::thread::sleep(Duration::from_millis(400));
    let mut up = program(binary());
    up.args(["up"])
        .env("DATABASE_URL", &url)
        .env("MIGRATE_DDL_LOCK_TIMEOUT", "0.2")
        .env("MIGRATE_LOCK_TIMEOUT", "30");
    let out = up.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a batch waited for rows the app holds and gave way"),
        "{stderr}"
    );
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
        ),
        "0"
    );
    drop(holder);
}

/// A backfill that can make no progress for MIGRATE_LOCK_TIMEOUT (the app holds a row it
/// needs) stops with exit 5, naming the table; its step is not recorded, and the next run,
/// once the row is free, finishes it.
#[test]
fn a_backfill_held_up_past_the_lock_timeout_stops_and_is_taken_up_again() {
    binary();
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    seed(c, &db, 5_000);
    with_binary(&["up", "--target", "6"], &url).assert_code(0);
    let holder = c.psql_background(
        &db,
        "BEGIN; SELECT 1 FROM users WHERE email = 'seed-1@example.com' FOR UPDATE; \
         SELECT pg_sleep(4); COMMIT;",
    );
    std::thread::sleep(Duration::from_millis(400));
    let mut up = program(binary());
    up.args(["up"])
        .env("DATABASE_URL", &url)
        .env("MIGRATE_DDL_LOCK_TIMEOUT", "0.2")
        .env("MIGRATE_LOCK_TIMEOUT", "1");
    let out = up.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("the backfill of users made no progress for 1 s (MIGRATE_LOCK_TIMEOUT)"),
        "{stderr}"
    );
    let history = "SELECT max(version) FROM refinery_schema_history";
    assert_eq!(
        c.psql(&db, history),
        "6",
        "the backfill's step is not recorded"
    );
    let mut holder = holder;
    holder.wait().unwrap();
    with_binary(&["up"], &url).assert_code(0);
    assert_eq!(c.psql(&db, history), "7");
    assert_eq!(
        c.psql(
            &db,
            "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM full_name"
        ),
        "0"
    );
}
