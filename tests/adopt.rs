//! Adopting what the Python backend made, with the real client: SQLAlchemy 2 models and an
//! Alembic environment (tests/python/, installed by .ci/run into a virtualenv) create and seed
//! databases through asyncpg and aiosqlite, and the binary adopts them as they are.

mod support;

use std::process::Command;
use support::*;

/// A SQLite file the backend made (`alembic` or `create-all`) and seeded, and its URL as the
/// backend spells it (sqlite+aiosqlite://).
fn seeded_sqlite(how: &str) -> (TempSqlite, String) {
    let file = TempSqlite::new();
    let url = format!("sqlite+aiosqlite:///{}", file.path().display());
    backend(how, &url);
    backend("seed", &url);
    (file, url)
}

/// The database's constraint and index names, sorted: what `up` makes and an adopted
/// database must have too.
fn names(db: &str) -> String {
    cluster().psql(
        db,
        "SELECT string_agg(n, ',' ORDER BY n) FROM ( \
           SELECT conname::text AS n FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
           UNION SELECT indexname FROM pg_indexes WHERE schemaname = 'public') x \
         WHERE n NOT LIKE 'refinery%' AND n NOT LIKE 'alembic%'",
    )
}

/// (database, URL as the backend spells it: postgresql+asyncpg://).
fn pg() -> (String, String) {
    let db = cluster().create_db();
    let url = cluster()
        .url(&db)
        .replacen("postgresql://", "postgresql+asyncpg://", 1);
    (db, url)
}

fn fresh_names() -> String {
    let (db, url) = pg();
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    names(&db)
}

#[test]
fn an_alembic_made_postgresql_is_adopted_as_up_would_have_made_it() {
    let (db, url) = pg();
    backend("alembic", &url);
    backend("seed", &url);
    let env = [("DATABASE_URL", url.as_str())];

    let r = run(&["baseline", "--dry-run"], &env);
    r.assert_ok(&[
        "poses: constraint poses_name_key renamed uq_poses_name",
        "users.id: SERIAL to an identity column",
        "dry run: baseline would record migrations 1 to 5",
    ]);
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'refinery_schema_history'"
        ),
        "0",
        "a dry run changes nothing"
    );

    run(&["baseline"], &env).assert_code(0);
    let r = run(&["verify"], &env);
    r.assert_code(0);
    assert!(
        r.stdout.contains("not managed: table alembic_version"),
        "{}",
        r.stdout
    );
    assert_eq!(names(&db), fresh_names(), "constraint and index names");
    // The ORM inserts without ids into every table; the ids go on past the seeded ones.
    let ids: serde_json::Value = serde_json::from_str(&backend("insert", &url)).unwrap();
    assert_eq!(ids["users"], 3, "{ids}");
    assert_eq!(ids["practice_history"], 3, "{ids}");
    run(&["up"], &env).assert_code(0);
}

#[test]
fn a_create_all_sqlite_file_is_adopted_by_one_baseline() {
    let (_file, url) = seeded_sqlite("create-all");
    let env = [("DATABASE_URL", url.as_str())];
    run(&["baseline"], &env).assert_code(0);
    run(&["verify"], &env).assert_code(0);
    let ids: serde_json::Value = serde_json::from_str(&backend("insert", &url)).unwrap();
    assert_eq!(ids["poses"], 3, "{ids}");
    run(&["status", "--exit-code"], &env).assert_code(0);
}

#[test]
fn copy_reads_an_alembic_sqlite_file_untouched_and_every_orm_object_arrives() {
    let (file, source) = seeded_sqlite("alembic");
    let before = std::fs::read(file.path()).unwrap();
    let (_, target) = pg();
    let r = run(&["copy", "--from", &source], &[("DATABASE_URL", &target)]);
    r.assert_ok(&["its tables and columns are those of version 5"]);
    assert!(
        std::fs::read(file.path()).unwrap() == before,
        "the source file changed"
    );
    assert_eq!(backend("dump", &target), backend("dump", &source));
    let ids: serde_json::Value = serde_json::from_str(&backend("insert", &target)).unwrap();
    assert_eq!(ids["sequences"], 3, "{ids}");
}

#[test]
fn eight_replicas_adopt_on_deploy_once() {
    let (db, url) = pg();
    backend("create-all", &url);
    backend("seed", &url);
    for r in race(
        8,
        &["up"],
        &[("DATABASE_URL", &url), ("MIGRATE_BASELINE", "true")],
    ) {
        r.assert_code(0);
    }
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4,5"
    );
    run(&["verify"], &[("DATABASE_URL", &url)]).assert_code(0);
    assert_eq!(names(&db), fresh_names());
    backend("insert", &url);
}

#[test]
fn a_partial_baseline_is_refused_so_no_partial_copy_can_follow() {
    let (file, url) = seeded_sqlite("create-all");
    let before = std::fs::read(file.path()).unwrap();
    let r = run(&["baseline", "--version", "1"], &[("DATABASE_URL", &url)]);
    r.assert_error(9, &["table poses: belongs to a later version"]);
    assert!(
        std::fs::read(file.path()).unwrap() == before,
        "refused, yet changed"
    );
}

/// A backend that used plain JSON on PostgreSQL and lost an index, a check, a NOT NULL and a
/// default along the way (and widened a varchar): `baseline` lists the differences and
/// rehearses the repair; `--repair` refuses while a row breaks the check, naming it, and
/// then brings the database to the contract with every ORM object unchanged.
#[test]
fn a_plain_json_backend_is_refused_with_the_plan_and_repaired_with_repair() {
    let (db, url) = pg();
    let plain = [("YOGAFLOW_PLAIN_JSON", "1")];
    backend_with("create-all", &url, &plain);
    backend_with("seed", &url, &plain);
    let c = cluster();
    c.psql(
        &db,
        "DROP INDEX ix_poses_difficulty; \
         ALTER TABLE poses ALTER COLUMN created_at DROP NOT NULL; \
         ALTER TABLE users ALTER COLUMN is_active DROP DEFAULT; \
         ALTER TABLE practice_sessions DROP CONSTRAINT practice_sessions_rating_check; \
         ALTER TABLE users ALTER COLUMN email TYPE varchar(300)",
    );
    let before = backend("dump", &url);
    let env = [("DATABASE_URL", url.as_str())];
    let untouched = || {
        assert_eq!(
            c.psql(
                &db,
                "SELECT count(*) FROM pg_tables WHERE tablename = 'refinery_schema_history'"
            ),
            "0"
        );
        assert_eq!(
            c.psql(&db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'poses'::regclass AND attname = 'benefits'"),
            "json"
        );
    };

    let r = run(&["baseline"], &env);
    r.assert_error(
        9,
        &[
            "the schema differs in 8 place(s)",
            "column poses.benefits: type changed from jsonb to json",
            "index ix_poses_difficulty on poses: missing",
            "check on practice_sessions (rating <= 5 and rating >= 1): missing",
            "column users.is_active: default changed from true to none",
            "repair: ALTER TABLE \"poses\" ALTER COLUMN \"benefits\" TYPE jsonb USING \"benefits\"::jsonb",
            "repair: CREATE INDEX ix_poses_difficulty ON poses USING btree (difficulty)",
            "`baseline --repair` brings it to the contract",
        ],
    );
    untouched();

    let id = c.psql(
        &db,
        "INSERT INTO practice_sessions (user_id, started_at, rating) VALUES (1, now(), 7) RETURNING id",
    );
    let r = run(&["baseline", "--repair"], &env);
    r.assert_error(
        9,
        &[&format!(
            "repair refused: practice_sessions row id={id} (rating = '7') breaks the contract's check ck_practice_sessions_rating"
        )],
    );
    untouched();

    c.psql(
        &db,
        &format!("DELETE FROM practice_sessions WHERE id = {id}"),
    );
    run(&["baseline", "--repair"], &env).assert_code(0);
    run(&["verify"], &env).assert_code(0);
    assert_eq!(backend("dump", &url), before, "a repair changed a row");
    assert_eq!(names(&db), fresh_names());
    backend("insert", &url);
}

/// Runs a Python script that opens the SQLite file at `sys.argv[1]` (more arguments after);
/// its standard output.
fn python_sqlite(path: std::path::PathBuf, script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3, sys, re\nc = sqlite3.connect(sys.argv[1])\n{script}"
        ))
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The SQL of every table and index of a SQLite file, as `up` would compare it.
fn sqlite_sql(path: std::path::PathBuf) -> String {
    python_sqlite(
        path,
        "for n, s in c.execute(\"SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'refinery%' AND name NOT LIKE 'alembic%' ORDER BY name\"):\n\
         \x20   s = re.sub(r'^CREATE TABLE \"?(\\w+)\"?', r'CREATE TABLE \\1', s)\n\
         \x20   print(n, ' '.join(s.split()))",
        &[],
    )
}

/// Runs `sql` on a SQLite file with its checks off (to plant rows a check would refuse).
fn sqlite_exec(path: std::path::PathBuf, sql: &str) {
    python_sqlite(
        path,
        "c.execute('PRAGMA ignore_check_constraints = ON'); c.executescript(sys.argv[2]); c.commit()",
        &[sql],
    );
}

/// On SQLite the tables are rebuilt as the migrations make them (SQLite's 12-step
/// procedure): the same SQL as a fresh `up` file, every ORM object unchanged, a missing index
/// made again with `--repair`; a row the rebuilt table would reject stops it, named, the file
/// unchanged.
#[test]
fn sqlite_tables_are_rebuilt_as_up_makes_them_and_repaired() {
    let (file, url) = seeded_sqlite("create-all");
    sqlite_exec(
        file.path(),
        "DROP INDEX ix_poses_difficulty; \
         INSERT INTO practice_sessions (user_id, started_at, rating, completed) VALUES (1, '2025-01-01 00:00:00', 7, 0);",
    );
    let env = [("DATABASE_URL", url.as_str())];
    let r = run(&["baseline"], &env);
    r.assert_error(
        9,
        &[
            "index ix_poses_difficulty on poses: missing",
            "`baseline --repair` cannot: repair refused: practice_sessions row id=2 (rating = 7.0) breaks the contract's check (rating BETWEEN 1 AND 5)",
        ],
    );
    let before = std::fs::read(file.path()).unwrap();
    let r = run(&["baseline", "--repair"], &env);
    r.assert_error(
        9,
        &["repair refused: practice_sessions row id=2 (rating = 7.0) breaks the contract's check"],
    );
    assert!(
        std::fs::read(file.path()).unwrap() == before,
        "refused, yet changed"
    );

    sqlite_exec(file.path(), "DELETE FROM practice_sessions WHERE id = 2");
    let objects = backend("dump", &url);
    let r = run(&["baseline", "--repair"], &env);
    // The rebuild makes the table's indexes as the migrations do, the missing one too.
    r.assert_ok(&["poses: rebuilt as the migrations make it"]);
    run(&["verify"], &env).assert_code(0);
    assert_eq!(backend("dump", &url), objects, "a rebuild changed a row");
    let fresh = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &fresh.url())]).assert_code(0);
    assert_eq!(sqlite_sql(file.path()), sqlite_sql(fresh.path()));
    backend("insert", &url);
}

/// What a rebuild must never lose: a column of the app's own that its inserts need not name
/// is carried over, values and all (a column they would have to name is refused: see
/// tests/variants.rs); triggers and views survive a rebuild; orphans that were there before
/// (SQLAlchemy leaves SQLite's foreign keys off) do not stop it and stay.
#[test]
fn a_sqlite_rebuild_keeps_what_the_contract_lacks_or_refuses() {
    let (file, url) = seeded_sqlite("create-all");
    sqlite_exec(
        file.path(),
        "ALTER TABLE poses ADD COLUMN legacy TEXT; \
         UPDATE poses SET legacy = 'keep me'; \
         CREATE TABLE audit (what TEXT); \
         CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN INSERT INTO audit VALUES (NEW.email); END; \
         CREATE VIEW pose_names AS SELECT name FROM poses; \
         INSERT INTO practice_history (user_id, practiced_at) VALUES (999, '2025-01-01 00:00:00');",
    );
    let env = [("DATABASE_URL", url.as_str())];
    let r = run(&["baseline"], &env);
    r.assert_ok(&[
        "not managed, the app's own (left as they are): column poses.legacy: extra",
        "poses: rebuilt",
        "users: rebuilt",
    ]);
    run(&["verify"], &env).assert_ok(&[]);
    assert_eq!(
        python_sqlite(
            file.path(),
            "print(c.execute('SELECT DISTINCT legacy FROM poses').fetchone()[0])",
            &[]
        )
        .trim(),
        "keep me"
    );
    let counts = python_sqlite(
        file.path(),
        "c.execute(\"INSERT INTO users (email, hashed_password) VALUES ('t@x', 'h')\")\n\
         print(c.execute('SELECT count(*) FROM audit').fetchone()[0], \
               c.execute('SELECT count(*) FROM pose_names').fetchone()[0], \
               c.execute('SELECT count(*) FROM practice_history WHERE user_id = 999').fetchone()[0])",
        &[],
    );
    // The trigger fired, the view reads, the old orphan is still there.
    assert_eq!(counts.trim(), "1 2 1");
}
