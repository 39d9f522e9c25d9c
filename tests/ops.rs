//! The on-call commands against real servers: status, verify, down round trips for every
//! version on both dialects, baseline of an Alembic-made database, and refusals that change
//! nothing.

mod support;

use support::*;

/// A fresh database of each dialect, as URLs (the SQLite file lives as long as the guard).
fn both() -> Vec<(String, Option<TempSqlite>)> {
    let s = TempSqlite::new();
    vec![
        (cluster().url(&cluster().create_db()), None),
        (s.url(), Some(s)),
    ]
}

fn cmd(url: &str, args: &[&str]) -> Run {
    run(args, &[("DATABASE_URL", url)])
}

#[test]
fn round_trip_for_every_version_on_both_dialects() {
    for (url, _guard) in both() {
        for k in 1..=5 {
            let k_s = k.to_string();
            cmd(&url, &["up", "--target", &k_s]).assert_code(0);
            let r = cmd(&url, &["verify"]);
            r.assert_code(0);
            assert!(
                r.stdout.contains(&format!("schema matches version {k}")),
                "{url}: {}",
                r.stdout
            );
            let at_k = cmd(&url, &["verify", "--json"]);
            let r = cmd(&url, &["down", "--steps", "1"]);
            r.assert_ok(&[&format!("schema version {k} -> {}", k - 1)]);
            // verify compares with the schema migrations 1..k-1 produce, by the same code.
            let r = cmd(&url, &["verify"]);
            r.assert_code(0);
            assert!(
                r.stdout
                    .contains(&format!("schema matches version {}", k - 1)),
                "{url} k={k}: {}",
                r.stdout
            );
            cmd(&url, &["up", "--target", &k_s]).assert_code(0);
            assert_eq!(
                cmd(&url, &["verify", "--json"]).stdout,
                at_k.stdout,
                "{url} k={k}"
            );
        }
        let r = cmd(&url, &["down", "--all"]);
        r.assert_code(0);
        let r = cmd(&url, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["current_version"], 0);
        assert_eq!(v["pending"], 5);
    }
}

#[test]
fn verify_names_each_kind_of_drift_on_postgres() {
    let cases = [
        (
            "DROP INDEX ix_poses_difficulty",
            "index ix_poses_difficulty on poses: missing",
        ),
        // The app's own column that its inserts would have to name (a nullable one or one
        // with a default is the app's own, tolerated: see verify_names_drift_on_sqlite).
        (
            "ALTER TABLE users ADD COLUMN nickname text NOT NULL",
            "column users.nickname: extra, NOT NULL without a default",
        ),
        (
            "ALTER TABLE poses ALTER COLUMN metadata SET DEFAULT '[]'",
            "column poses.metadata: default changed from '{}'::jsonb to '[]'::jsonb",
        ),
        (
            "ALTER TABLE sequences DROP CONSTRAINT sequences_user_id_fkey",
            "foreign key sequences(user_id) -> users(id) ON DELETE CASCADE: missing",
        ),
    ];
    for (sql, want) in cases {
        let db = cluster().create_db();
        let url = cluster().url(&db);
        cmd(&url, &["up"]).assert_code(0);
        cmd(&url, &["verify"]).assert_code(0);
        cluster().psql(&db, sql);
        let r = cmd(&url, &["verify"]);
        r.assert_code(9);
        assert!(
            r.stdout.contains(&format!("difference: {want}")),
            "{sql}: {}",
            r.stdout
        );
        assert!(r.stderr.contains(want), "{sql}: {}", r.stderr);
        // up applies nothing but reports nothing wrong either: drift is verify's job,
        // and up warns about it only after applying.
        cmd(&url, &["up"]).assert_code(0);
    }
}

#[test]
fn verify_names_drift_on_sqlite() {
    let cases = [(
        "DROP INDEX ix_poses_difficulty",
        "index ix_poses_difficulty on poses: missing",
    )];
    for (sql, want) in cases {
        let s = TempSqlite::new();
        cmd(&s.url(), &["up"]).assert_code(0);
        s.sqlite(sql);
        let r = cmd(&s.url(), &["verify"]);
        r.assert_code(9);
        assert!(r.stdout.contains(want), "{sql}: {}", r.stdout);
    }
    // The app's own column, nullable, and index: named as not managed, never a difference.
    let s = TempSqlite::new();
    cmd(&s.url(), &["up"]).assert_code(0);
    s.sqlite(
        "ALTER TABLE users ADD COLUMN nickname TEXT; CREATE INDEX ix_nick ON users (nickname)",
    );
    let r = cmd(&s.url(), &["verify"]);
    r.assert_code(0);
    for want in [
        "not managed: column users.nickname: extra (the app's own; left alone)",
        "not managed: index ix_nick on users: extra (the app's own; left alone)",
    ] {
        assert!(r.stdout.contains(want), "{}", r.stdout);
    }
}

#[test]
fn verify_prints_row_counts() {
    let s = TempSqlite::new();
    cmd(&s.url(), &["up"]).assert_code(0);
    s.sqlite("INSERT INTO users (email, hashed_password) VALUES ('a@b', 'x'), ('c@d', 'y')");
    let r = cmd(&s.url(), &["verify"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("users") && l.contains("2 rows")),
        "{}",
        r.stdout
    );
}

#[test]
fn down_refuses_to_drop_rows_without_yes() {
    for (url, guard) in both() {
        cmd(&url, &["up"]).assert_code(0);
        let insert = "INSERT INTO users (email, hashed_password) VALUES ('a@b.c', 'h')";
        match &guard {
            Some(s) => {
                s.sqlite(insert);
            }
            None => {
                let db = url.rsplit('/').next().unwrap();
                cluster().psql(db, insert);
            }
        }
        let before = cmd(&url, &["status", "--json"]).stdout;
        let r = cmd(&url, &["down", "--all"]);
        r.assert_error(
            11,
            &["V1__users drops users with 1 row(s)", "nothing was changed"],
        );
        assert_eq!(cmd(&url, &["status", "--json"]).stdout, before);
        cmd(&url, &["verify"]).assert_code(0);
        // Steps that drop no rows are fine without --yes.
        cmd(&url, &["down", "--to", "1"]).assert_code(0);
        let r = run(
            &["down", "--all"],
            &[("DATABASE_URL", &url), ("MIGRATE_ALLOW_DATA_LOSS", "true")],
        );
        r.assert_code(0);
        let r = cmd(&url, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["current_version"], 0, "{url}");
    }
}

/// `--yes` goes with every way of saying how far: the refusal tells the user to pass it.
#[test]
fn down_yes_works_with_to_steps_and_all() {
    for how in [&["--to", "2"][..], &["--steps", "3"][..], &["--all"][..]] {
        for (url, guard) in both() {
            cmd(&url, &["up"]).assert_code(0);
            let insert = "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b.c', 'h'); \
                          INSERT INTO practice_sessions (user_id, started_at, duration_seconds) VALUES (1, '2025-12-06 10:00:00', 60)";
            match &guard {
                Some(s) => {
                    s.sqlite(insert);
                }
                None => {
                    cluster().psql(url.rsplit('/').next().unwrap(), insert);
                }
            }
            let mut args = vec!["down"];
            args.extend_from_slice(how);
            cmd(&url, &args).assert_code(11);
            args.push("--yes");
            cmd(&url, &args).assert_code(0);
        }
    }
}

#[test]
fn status_json_and_exit_code() {
    for (url, _guard) in both() {
        cmd(&url, &["up", "--target", "3"]).assert_code(0);
        let r = cmd(&url, &["status", "--json"]);
        r.assert_code(0);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["current_version"], 3);
        assert_eq!(v["latest_version"], 5);
        assert_eq!(v["pending"], 2);
        assert_eq!(v["migrations"][0]["state"], "applied");
        assert_eq!(v["migrations"][4]["state"], "pending");
        let r = cmd(&url, &["status", "--exit-code"]);
        r.assert_code(8);
        assert!(r.stdout.contains("V4__practice") && r.stdout.contains("pending"));
        cmd(&url, &["up"]).assert_code(0);
        cmd(&url, &["status", "--exit-code"]).assert_code(0);
    }
}

#[test]
fn status_shows_changed_and_ahead_without_failing() {
    let s = TempSqlite::new();
    cmd(&s.url(), &["up"]).assert_code(0);
    s.sqlite("UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2; INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (99, 'future', '2030-01-01T00:00:00Z', '5')");
    let r = cmd(&s.url(), &["status"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("V2__poses") && r.stdout.contains("changed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("V99__future") && r.stdout.contains("ahead"),
        "{}",
        r.stdout
    );
}

#[test]
fn status_does_not_create_a_missing_sqlite_file() {
    let s = TempSqlite::new();
    let r = cmd(&s.url(), &["status"]);
    r.assert_error(2, &["does not exist"]);
    assert!(!s.path().exists());
}

#[test]
fn dry_run_prints_sql_and_changes_nothing() {
    for (url, guard) in both() {
        let r = cmd(&url, &["up", "--dry-run"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("-- V1__users (would apply)"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("CREATE TABLE users"), "{}", r.stdout);
        assert!(r.stdout.contains("-- V5__query_indexes (would apply)"));
        let v: serde_json::Value =
            serde_json::from_str(&cmd(&url, &["status", "--json"]).stdout).unwrap();
        assert_eq!(v["current_version"], 0);
        assert_eq!(v["pending"], 5);
        let tables = match &guard {
            Some(s) => s.sqlite("SELECT count(*) FROM sqlite_master WHERE name = 'users'"),
            None => cluster().psql(
                url.rsplit('/').next().unwrap(),
                "SELECT count(*) FROM pg_tables WHERE tablename = 'users'",
            ),
        };
        assert_eq!(tables, "0");
    }
}

/// The contract's schema as the Python backend (SQLAlchemy + Alembic) made it, by hand: no
/// refinery history, an `alembic_version` table beside it.
const ALEMBIC_PG: &str = "
CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6');
CREATE TABLE users (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email varchar(255) NOT NULL,
  hashed_password varchar(255) NOT NULL, full_name varchar(255), is_active boolean NOT NULL DEFAULT true,
  is_superuser boolean NOT NULL DEFAULT false, created_at timestamp with time zone NOT NULL DEFAULT now(),
  updated_at timestamp with time zone);
CREATE UNIQUE INDEX ix_users_email ON users (email);
CREATE TABLE poses (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name varchar(255) NOT NULL UNIQUE,
  sanskrit_name varchar(255), description text, difficulty varchar(20) NOT NULL
  CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')), category varchar(50), benefits jsonb,
  metadata jsonb NOT NULL DEFAULT '{}', image bytea, duration_seconds integer,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sequences (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name varchar(255) NOT NULL,
  description text, difficulty varchar(20) CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
  duration_minutes integer, is_public boolean NOT NULL DEFAULT false,
  user_id integer REFERENCES users ON DELETE CASCADE, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz);
CREATE TABLE sequence_poses (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  sequence_id integer NOT NULL REFERENCES sequences ON DELETE CASCADE,
  pose_id integer NOT NULL REFERENCES poses ON DELETE RESTRICT, position integer NOT NULL,
  duration_seconds integer, UNIQUE (sequence_id, position));
CREATE TABLE practice_sessions (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users ON DELETE CASCADE,
  sequence_id integer REFERENCES sequences ON DELETE SET NULL, started_at timestamptz NOT NULL,
  completed_at timestamptz, duration_seconds integer, completed boolean NOT NULL DEFAULT false,
  rating double precision CHECK (rating BETWEEN 1 AND 5), notes text);
CREATE TABLE practice_history (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users ON DELETE CASCADE,
  session_id integer REFERENCES practice_sessions ON DELETE CASCADE,
  pose_id integer REFERENCES poses ON DELETE SET NULL, practiced_at timestamptz NOT NULL,
  duration_seconds double precision, notes text);
CREATE INDEX ix_poses_difficulty ON poses (difficulty);
CREATE INDEX ix_practice_sessions_user_id ON practice_sessions (user_id);
CREATE INDEX ix_practice_history_user_id_practiced_at ON practice_history (user_id, practiced_at);
INSERT INTO users (email, hashed_password) VALUES ('yogi@example.com', 'x');
";

/// Nothing was recorded: the database still has no history table.
fn assert_no_history(db: &str) {
    assert_eq!(
        cluster().psql(
            db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'refinery_schema_history'"
        ),
        "0"
    );
}

#[test]
fn baseline_adopts_an_alembic_database() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    cluster().psql(&db, ALEMBIC_PG);
    let r = cmd(&url, &["up"]);
    r.assert_error(7, &["baseline"]);
    let r = cmd(&url, &["baseline"]);
    r.assert_ok(&["alembic_version"]);
    let r = cmd(&url, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["current_version"], 5);
    assert_eq!(v["pending"], 0);
    let r = cmd(&url, &["up"]);
    r.assert_ok(&["nothing to apply"]);
    assert_eq!(cluster().psql(&db, "SELECT count(*) FROM users"), "1");
    // A second baseline is refused: the history exists now.
    cmd(&url, &["baseline"]).assert_code(7);
}

#[test]
fn baseline_refuses_a_database_missing_a_column() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    cluster().psql(&db, ALEMBIC_PG);
    cluster().psql(&db, "ALTER TABLE poses DROP COLUMN category");
    let r = cmd(&url, &["baseline"]);
    r.assert_error(9, &["column poses.category: missing"]);
    assert_no_history(&db);
}

#[test]
fn baseline_on_sqlite_at_a_given_version() {
    let made = TempSqlite::new();
    cmd(&made.url(), &["up", "--target", "2"]).assert_code(0);
    made.sqlite("DROP TABLE refinery_schema_history");
    cmd(&made.url(), &["baseline", "--version", "3"]).assert_code(9);
    let r = cmd(&made.url(), &["baseline", "--version", "2"]);
    r.assert_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&cmd(&made.url(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(v["current_version"], 2);
    cmd(&made.url(), &["up"]).assert_code(0);
    cmd(&made.url(), &["verify"]).assert_code(0);
}

/// Rows the app writes after `down` counted are still never dropped unconfirmed: each step
/// counts again inside its transaction, with the table locked.
#[test]
fn down_counts_again_inside_each_step() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    cmd(&url, &["up"]).assert_code(0);
    cluster().psql(
        &db,
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b.c', 'h')",
    );
    // Not committed yet when `down` counts; committed while its steps wait for their locks.
    let mut app = cluster().psql_background(
        &db,
        "BEGIN; INSERT INTO practice_history (user_id, practiced_at) VALUES (1, now()); \
         SELECT pg_sleep(3); COMMIT;",
    );
    let pending = wait_until(std::time::Duration::from_secs(10), || {
        cluster().psql(
            &db,
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'practice_history' AND l.granted AND l.pid <> pg_backend_pid()",
        ) != "0"
    });
    assert!(pending);
    let r = run(
        &["down", "--to", "3"],
        &[("DATABASE_URL", &url), ("MIGRATE_DDL_LOCK_TIMEOUT", "0.5")],
    );
    app.wait().unwrap();
    r.assert_error(
        11,
        &["undoing V4__practice would drop practice_history, which now holds 1 row(s)"],
    );
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM practice_history"),
        "1"
    );
    assert_eq!(
        cluster().psql(&db, "SELECT max(version) FROM refinery_schema_history"),
        "4"
    );
}

/// What SQLAlchemy and Alembic really write: `SERIAL` ids (`Integer, primary_key=True`),
/// `CheckConstraint("rating >= 1 AND rating <= 5")`, `func.now()` spelled CURRENT_TIMESTAMP,
/// and the `alembic_version` table. The same meaning as the contract, spelled differently.
#[test]
fn baseline_and_verify_compare_by_meaning_on_postgres() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    let sqlalchemy = ALEMBIC_PG
        .replace(
            "id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "id SERIAL PRIMARY KEY",
        )
        .replace("rating BETWEEN 1 AND 5", "rating >= 1 AND rating <= 5")
        .replace("DEFAULT now()", "DEFAULT CURRENT_TIMESTAMP");
    cluster().psql(&db, &sqlalchemy);
    // The app wrote and deleted a few rows: the next id must not go back to them.
    cluster().psql(
        &db,
        "INSERT INTO poses (name, difficulty) VALUES ('a', 'beginner'), ('b', 'beginner'); \
         DELETE FROM poses",
    );
    cmd(&url, &["baseline"]).assert_code(0);
    // Left as `up` makes it: identity columns, no SERIAL sequences, ids continuing.
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT string_agg(DISTINCT a.attidentity::text, ',') FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'id' AND c.relkind = 'r' \
             AND c.relname <> 'alembic_version' AND c.relnamespace = 'public'::regnamespace"
        ),
        "d"
    );
    assert_eq!(
        cluster().psql(
            &db,
            "INSERT INTO poses (name, difficulty) VALUES ('c', 'beginner') RETURNING id"
        ),
        "3"
    );
    let r = cmd(&url, &["verify"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("not managed: table alembic_version"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("schema matches version 5"),
        "{}",
        r.stdout
    );
    // The app's inserts without ids go on working.
    cluster().psql(
        &db,
        "INSERT INTO users (email, hashed_password) VALUES ('second@example.com', 'x')",
    );
    assert_eq!(cluster().psql(&db, "SELECT max(id) FROM users"), "2");
    // Real differences stay differences.
    cluster().psql(&db, "ALTER TABLE poses ALTER COLUMN benefits TYPE json");
    let r = cmd(&url, &["verify"]);
    r.assert_code(9);
    assert!(
        r.stdout
            .contains("column poses.benefits: type changed from jsonb to json"),
        "{}",
        r.stdout
    );
}

#[test]
fn baseline_and_verify_compare_by_meaning_on_sqlite() {
    let f = TempSqlite::new();
    cmd(&f.url(), &["up", "--target", "3"]).assert_code(0);
    f.sqlite(
        "DROP TABLE refinery_schema_history;
         CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
         CREATE TABLE practice_sessions (
             id INTEGER NOT NULL PRIMARY KEY,
             user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
             sequence_id INTEGER REFERENCES sequences (id) ON DELETE SET NULL,
             started_at DATETIME NOT NULL,
             completed_at DATETIME,
             duration_seconds INTEGER,
             completed BOOLEAN NOT NULL DEFAULT 0,
             rating FLOAT,
             notes TEXT,
             CONSTRAINT ck_rating CHECK ((rating >= 1) AND (rating <= 5))
         );
         CREATE TABLE practice_history (
             id INTEGER NOT NULL PRIMARY KEY,
             user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
             session_id INTEGER REFERENCES practice_sessions (id) ON DELETE CASCADE,
             pose_id INTEGER REFERENCES poses (id) ON DELETE SET NULL,
             practiced_at DATETIME NOT NULL,
             duration_seconds FLOAT,
             notes TEXT
         );
         CREATE INDEX ix_poses_difficulty ON poses (difficulty);
         CREATE INDEX ix_practice_sessions_user_id ON practice_sessions (user_id);
         CREATE INDEX ix_practice_history_user_id_practiced_at ON practice_history (user_id, practiced_at);",
    );
    cmd(&f.url(), &["baseline"]).assert_code(0);
    let r = cmd(&f.url(), &["verify"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("not managed: table alembic_version"),
        "{}",
        r.stdout
    );
}

/// MIGRATE_BASELINE=true: the first deploy over the Alembic-made database adopts it at the
/// version its schema has (4 here: no V5 indexes) and applies the rest; eight replicas at once
/// record each version exactly once. Without the variable the refusal names it.
#[test]
fn deploys_adopt_an_alembic_database_when_asked() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    let at_v4: String = ALEMBIC_PG
        .lines()
        .filter(|l| !l.starts_with("CREATE INDEX"))
        .collect::<Vec<_>>()
        .join("\n");
    cluster().psql(&db, &at_v4);
    let r = cmd(&url, &["up"]);
    r.assert_error(7, &["MIGRATE_BASELINE=true"]);
    let env = [("DATABASE_URL", url.as_str()), ("MIGRATE_BASELINE", "true")];
    for r in race(8, &["up"], &env) {
        r.assert_code(0);
    }
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4,5"
    );
    cmd(&url, &["verify"]).assert_code(0);
    assert_eq!(cluster().psql(&db, "SELECT count(*) FROM users"), "1");
}

#[test]
fn deploy_adoption_refuses_a_schema_that_is_no_version() {
    let db = cluster().create_db();
    let url = cluster().url(&db);
    cluster().psql(&db, ALEMBIC_PG);
    cluster().psql(&db, "ALTER TABLE poses DROP COLUMN category");
    let r = run(
        &["up"],
        &[("DATABASE_URL", &url), ("MIGRATE_BASELINE", "true")],
    );
    r.assert_error(
        9,
        &[
            "the nearest version by structure is 5, for which it lacks 1 thing(s): column \
             poses.category: missing",
        ],
    );
    assert_no_history(&db);
}

/// `new NAME` writes the four files of the next version (the highest in either dialect + 1),
/// each opening with what belongs in it; a clash or a bad name is refused with nothing written.
#[test]
fn new_writes_the_next_migration() {
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("sql");
    for d in ["postgres", "sqlite"] {
        std::fs::create_dir_all(sql.join(d)).unwrap();
        for entry in std::fs::read_dir(std::path::Path::new("sql").join(d)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), sql.join(d).join(entry.file_name())).unwrap();
        }
    }
    let r = run_in(dir.path(), &["new", "add_pose_tags"], &[]);
    r.assert_code(0);
    for path in [
        "sql/postgres/V6__add_pose_tags.sql",
        "sql/postgres/V6__add_pose_tags.down.sql",
        "sql/sqlite/V6__add_pose_tags.sql",
        "sql/sqlite/V6__add_pose_tags.down.sql",
    ] {
        assert!(r.stdout.contains(path), "{path} not printed:\n{}", r.stdout);
        let text = std::fs::read_to_string(dir.path().join(path)).unwrap();
        assert!(text.starts_with("-- "), "{path}: {text}");
        assert!(
            text.contains("Never edit this file once it has been deployed"),
            "{path}"
        );
    }
    assert!(
        std::fs::read_to_string(dir.path().join("sql/postgres/V6__add_pose_tags.down.sql"))
            .unwrap()
            .contains("exactly as V5 made it")
    );
    let count = || std::fs::read_dir(sql.join("postgres")).unwrap().count();
    let before = count();
    let r = run_in(dir.path(), &["new", "add_pose_tags"], &[]);
    r.assert_error(2, &["exists already: V6__add_pose_tags"]);
    let r = run_in(dir.path(), &["new", "add pose-tags"], &[]);
    r.assert_error(2, &["use letters, digits and '_'"]);
    assert_eq!(count(), before);
    // The next one takes version 7, in a folder given explicitly.
    let r = run(&["new", "rename_x", "--dir", sql.to_str().unwrap()], &[]);
    r.assert_code(0);
    assert!(r.stdout.contains("V7__rename_x.sql"), "{}", r.stdout);
    let r = run_in(dir.path(), &["new", "x", "--dir", "nowhere"], &[]);
    r.assert_error(2, &["not a migrations folder"]);
}

/// A history table made before the deployment columns (by an older image, or refinery) gets
/// them with the first step recorded after the upgrade; that step records its Railway
/// deployment and commit, which `status` shows; the rows before say nothing.
#[test]
fn an_older_history_table_gets_the_deployment_columns_with_the_next_step() {
    let c = cluster();
    let db = c.create_db();
    let pg = c.url(&db);
    let lite = TempSqlite::new();
    let old = "ALTER TABLE refinery_schema_history DROP COLUMN deployment_id; \
               ALTER TABLE refinery_schema_history DROP COLUMN git_commit_sha";
    for url in [pg.as_str(), lite.url().as_str()] {
        run(&["up", "--target", "4"], &[("DATABASE_URL", url)]).assert_code(0);
        if url.starts_with("sqlite") {
            lite.sqlite(old);
        } else {
            c.psql(&db, old);
        }
        let r = run(&["status", "--json"], &[("DATABASE_URL", url)]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["migrations"][3]["deployment_id"].is_null(), "{url}");
        run(
            &["up"],
            &[
                ("DATABASE_URL", url),
                ("RAILWAY_DEPLOYMENT_ID", "dep-9"),
                ("RAILWAY_GIT_COMMIT_SHA", "0123abc"),
            ],
        )
        .assert_code(0);
        let r = run(&["status", "--json"], &[("DATABASE_URL", url)]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let m = &v["migrations"];
        assert_eq!(m[4]["deployment_id"], "dep-9", "{url}");
        assert_eq!(m[4]["git_commit_sha"], "0123abc", "{url}");
        assert!(m[3]["deployment_id"].is_null(), "{url}");
        run(&["verify"], &[("DATABASE_URL", url)]).assert_code(0);
    }
}
