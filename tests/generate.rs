//! `new --from` through the real path: the test backend's models changed every way
//! (tests/python/models.py, variants `next` and `next2`), `create_all` on scratch databases of
//! both dialects, `new --from` (the same files from either), `lint`, a build of the copy; then
//! on seeded databases of both dialects `up` keeps every row and the renamed column's values,
//! `verify` is clean, the changed models' ORM writes and reads, both dialects agree at every
//! version, and every undo restores the previous schema exactly.

mod support;

use std::path::Path;
use support::*;
use yogaflow_migrate::db::{Database, OpenOptions};
use yogaflow_migrate::migrations::{Dialect, Migration};
use yogaflow_migrate::schema::logical::logical;
use yogaflow_migrate::schema::Schema;

/// A database of `dialect` as the backend's URL spells it, and the SQLite file behind it.
fn database(dialect: Dialect) -> (String, Option<TempSqlite>) {
    match dialect {
        Dialect::Postgres => {
            let db = cluster().create_db();
            let url = cluster()
                .url(&db)
                .replacen("postgresql://", "postgresql+asyncpg://", 1);
            (url, None)
        }
        Dialect::Sqlite => {
            let file = TempSqlite::new();
            let url = format!("sqlite+aiosqlite:///{}", file.path().display());
            (url, Some(file))
        }
    }
}

/// A scratch database the models of `variant` made with `create_all`.
fn models(dialect: Dialect, variant: &str) -> (String, Option<TempSqlite>) {
    let (url, file) = database(dialect);
    backend_with("create-all", &url, &[("YOGAFLOW_VARIANT", variant)]);
    (url, file)
}

fn generate(sql: &Path, name: &str, url: &str, renames: &[&str]) -> Run {
    let dir = sql.display().to_string();
    let mut args = vec!["new", name, "--from", url, "--dir", &dir];
    for r in renames {
        args.extend(["--rename", r]);
    }
    run(&args, &[])
}

/// Every file of `dir`'s two dialect folders: (path, text), sorted.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in ["postgres", "sqlite"] {
        for e in std::fs::read_dir(dir.join(d)).unwrap() {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            out.push((format!("{d}/{}", e.file_name().to_string_lossy()), text));
        }
    }
    out.sort();
    out
}

/// One SQL query's rows as text, on either dialect.
fn query(url: &str, file: &Option<TempSqlite>, sql: &str) -> String {
    match file {
        Some(f) => f.sqlite(sql),
        None => cluster().psql(url.rsplit('/').next().unwrap(), sql),
    }
}

/// A query of every user's id and `column`, in one line.
fn id_and(file: &Option<TempSqlite>, column: &str) -> String {
    let agg = if file.is_some() {
        "group_concat"
    } else {
        "string_agg"
    };
    format!("SELECT {agg}(id || '=' || coalesce({column}, ''), ',' ORDER BY id) FROM users")
}

fn counts(url: &str, file: &Option<TempSqlite>) -> Vec<String> {
    yogaflow_migrate::migrations::APP_TABLES
        .iter()
        .map(|t| query(url, file, &format!("SELECT count(*) FROM {t}")))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The live schema of `url`, and the one `migrations` make on a scratch copy beside it.
fn schemas(url: &str, migrations: &[Migration]) -> (Dialect, Schema, Schema) {
    runtime().block_on(async {
        let url = yogaflow_migrate::config::parse_url(url).unwrap();
        let db = Database::open(
            &url,
            OpenOptions::reading(std::time::Duration::from_secs(10)),
        )
        .await
        .unwrap();
        let live = db.live_schema().await.unwrap();
        let made = db.schema_of(migrations).await.unwrap();
        (db.dialect(), live, made)
    })
}

/// The migrations of a checkout's folder for `d`, up to `version`.
fn on_disk(sql: &Path, d: Dialect, version: i32) -> Vec<Migration> {
    let all = yogaflow_migrate::commands::new::from_dir(sql, d).unwrap();
    all.into_iter().filter(|m| m.version <= version).collect()
}

#[test]
fn models_changed_every_way_become_migrations_both_dialects_apply_keeping_every_row() {
    let copy = Checkout::new("generate");
    let rename = "users.full_name=display_name";

    // From PostgreSQL's models and from SQLite's, the same files.
    let (pg_next, _) = models(Dialect::Postgres, "next");
    let (lite_next, _lite_next_file) = models(Dialect::Sqlite, "next");
    // Without --rename, the pair is refused, naming the flag; nothing is written.
    let shipped = files(&copy.sql());
    generate(&copy.sql(), "change_models", &pg_next, &[]).assert_error(
        2,
        &[
            "table users: column full_name is gone and columns display_name, timezone are new",
            "--rename users.full_name=display_name",
        ],
    );
    assert_eq!(files(&copy.sql()), shipped);
    let r = generate(&copy.sql(), "change_models", &pg_next, &[rename]);
    r.assert_ok(&[
        "column users.full_name: renamed display_name (expand: display_name added, kept in sync",
        "V8__change_models_contract, V9__change_models_contract_online: contract step(s)",
    ]);
    for written in [
        "postgres/V6__change_models.sql",
        "postgres/V7__change_models_online.down.sql",
        "postgres/V8__change_models_contract.sql",
        "postgres/V9__change_models_contract_online.sql",
        "sqlite/V6__change_models.down.sql",
        "sqlite/V9__change_models_contract_online.sql",
    ] {
        assert!(r.stdout.contains(written), "{written}: {}", r.stdout);
    }
    let other = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"),
        other.path(),
    );
    generate(other.path(), "change_models", &lite_next, &[rename]).assert_code(0);
    assert_eq!(
        files(other.path()),
        files(&copy.sql()),
        "SQLite's models wrote other files"
    );

    // Once the files exist, nothing more to write.
    let before = files(&copy.sql());
    generate(&copy.sql(), "again", &pg_next, &[]).assert_ok(&["nothing to generate"]);
    assert_eq!(files(&copy.sql()), before);

    // A week later the new table goes again.
    let (pg_next2, _) = models(Dialect::Postgres, "next2");
    generate(&copy.sql(), "drop_pose_tags", &pg_next2, &[]).assert_ok(&[
        "table pose_tags: dropped",
        "V10__drop_pose_tags_contract: contract step(s)",
    ]);
    // And a change written by hand, an expand step after those contract steps.
    run_in(&copy.root, &["new", "pose_notes"], &[]).assert_code(0);
    for (d, column_type) in [("postgres", "text"), ("sqlite", "TEXT")] {
        let add = format!("ALTER TABLE poses ADD COLUMN note {column_type};\n");
        for (file, sql) in [
            ("sql", add.as_str()),
            ("down.sql", "ALTER TABLE poses DROP COLUMN note;\n"),
        ] {
            let path = copy.sql().join(d).join(format!("V11__pose_notes.{file}"));
            let header = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{header}{sql}")).unwrap();
        }
    }
    let binary = copy.build();
    let copy_run = |args: &[&str], url: &str| {
        let mut c = program(&binary);
        c.args(args).env("DATABASE_URL", url);
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Seeded databases at V5, of both dialects, through every new version.
    let dbs: Vec<(String, Option<TempSqlite>)> = [Dialect::Postgres, Dialect::Sqlite]
        .into_iter()
        .map(database)
        .collect();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for (url, file) in &dbs {
        run(&["up"], &[("DATABASE_URL", url)]).assert_code(0);
        backend("seed", url);
        names.push(query(url, file, &id_and(file, "full_name")));
        rows.push(counts(url, file));
    }
    // Expand (V6, V7), and the models of both versions write; then the contract steps (V8,
    // V9, and V10 which drops the table again), and the new ones do. PostgreSQL's `up`
    // defers contract steps to `complete`; SQLite's is taken to the same versions.
    // V11, an expand step after the deferred V8-V10, waits for them: PostgreSQL's `up` stops
    // (exit 8, nothing applied) until `complete` has run.
    let stages: [(&[&str], &str, i32, &[&str]); 2] = [
        (&["up", "--target", "7"], "7", 7, &["", "next"]),
        (&["complete"], "11", 11, &["next2"]),
    ];
    for (pg_command, lite_target, version, variants) in stages {
        let mut seen = Vec::new();
        for (i, (url, file)) in dbs.iter().enumerate() {
            let args: Vec<&str> = match file {
                Some(_) => vec!["up", "--target", lite_target],
                None => pg_command.to_vec(),
            };
            if file.is_none() && version == 11 {
                let history = "SELECT max(version) FROM refinery_schema_history";
                let (code, stderr) = copy_run(&["up"], url);
                assert_eq!(code, Some(8), "{stderr}");
                assert!(
                    stderr.contains(
                        "V11__pose_notes cannot be applied: it comes after \
                         V8__change_models_contract, a contract step still deferred"
                    ),
                    "{stderr}"
                );
                assert_eq!(query(url, file, history), "7", "nothing applied");
            }
            let (code, stderr) = copy_run(&args, url);
            assert_eq!(code, Some(0), "{args:?} to V{version} on {url}: {stderr}");
            let (code, stderr) = copy_run(&["verify"], url);
            assert_eq!(code, Some(0), "verify at V{version} on {url}: {stderr}");
            let renamed = id_and(file, "display_name");
            assert_eq!(
                query(url, file, &renamed),
                names[i],
                "{url}: the renamed column's values"
            );
            assert_eq!(counts(url, file), rows[i], "{url}: rows at V{version}");
            let (d, live, _) = schemas(url, &[]);
            seen.push(logical(d, &live));
        }
        let differences = yogaflow_migrate::schema::diff(&seen[0], &seen[1], false);
        assert!(
            differences.is_empty(),
            "V{version}: postgres -> sqlite: {differences:?}"
        );
        // The ORM of each app version that may serve then writes and reads.
        for (i, (url, file)) in dbs.iter().enumerate() {
            for variant in variants {
                let env = [("YOGAFLOW_VARIANT", *variant)];
                backend_with("insert", url, &env);
                backend_with("dump", url, &env);
            }
            names[i] = query(url, file, &id_and(file, "display_name"));
            rows[i] = counts(url, file);
        }
    }

    // Every undo restores the schema the version before made, exactly.
    for (url, _) in &dbs {
        for version in (6..=11).rev() {
            let (code, stderr) = copy_run(&["down", "--steps", "1"], url);
            assert_eq!(code, Some(0), "down from V{version} on {url}: {stderr}");
            let d = if url.starts_with("sqlite") {
                Dialect::Sqlite
            } else {
                Dialect::Postgres
            };
            let (_, live, made) = schemas(url, &on_disk(&copy.sql(), d, version - 1));
            assert_eq!(live, made, "{url}: after undoing V{version}");
        }
    }

    // The generated files are in the forms lint accepts.
    run_in(&copy.root, &["lint"], &[]).assert_code(0);
}

/// A SQLite migration that drops a table runs with foreign keys off (a rebuilt parent must
/// not cascade into its children) and is checked against them before its commit: one that
/// leaves a row without its parent is refused, naming the row, and changes nothing.
#[test]
fn a_sqlite_rebuild_never_cascades_and_never_leaves_an_orphan() {
    let f = TempSqlite::new();
    let url = f.url();
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    f.sqlite(
        "INSERT INTO users (id, email, hashed_password) VALUES (1, 'a@b', 'h'), (2, 'c@d', 'h');
         INSERT INTO sequences (id, name, user_id) VALUES (1, 'mine', 1), (2, 'theirs', 2)",
    );
    let rebuild = |keep: &str| {
        format!(
            "CREATE TABLE _yogaflow_new_users (id INTEGER NOT NULL PRIMARY KEY, email VARCHAR(255) NOT NULL, \
             hashed_password VARCHAR(255) NOT NULL, full_name VARCHAR(300), is_active BOOLEAN NOT NULL DEFAULT 1, \
             is_superuser BOOLEAN NOT NULL DEFAULT 0, created_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP), \
             updated_at DATETIME);
             INSERT INTO _yogaflow_new_users SELECT * FROM users WHERE {keep};
             DROP TABLE users;
             ALTER TABLE _yogaflow_new_users RENAME TO users;
             CREATE UNIQUE INDEX ix_users_email ON users (email);"
        )
    };
    let apply = |up: String| {
        runtime().block_on(async {
            let url = yogaflow_migrate::config::parse_url(&url).unwrap();
            let options = OpenOptions {
                create: true,
                lock_wait: Some(std::time::Duration::from_secs(10)),
                ..OpenOptions::reading(std::time::Duration::from_secs(10))
            };
            let mut db = Database::open(&url, options).await.unwrap();
            let m = Migration {
                version: 6,
                name: "longer_full_name".into(),
                up: Box::leak(up.into_boxed_str()),
                down: "",
                checksum: 6,
            };
            db.run_step(yogaflow_migrate::db::Step::Apply(&m)).await
        })
    };
    let before = f.sqlite("SELECT group_concat(id || ':' || user_id) FROM sequences");
    let e = apply(rebuild("id = 1")).unwrap_err().to_string();
    assert!(
        e.contains("V6__longer_full_name")
            && e.contains("sequences row rowid=2 refers to a row users does not have"),
        "{e}"
    );
    assert_eq!(f.sqlite("SELECT count(*) FROM users"), "2");
    apply(rebuild("1")).unwrap();
    assert_eq!(
        f.sqlite("SELECT group_concat(id || ':' || user_id) FROM sequences"),
        before
    );
}

/// `--from` takes a URL with a password like DATABASE_URL does: it never appears in what the
/// command prints, whether it compares or fails.
#[test]
fn the_models_database_password_never_shows() {
    let c = password_cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
    let sql = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"),
        sql.path(),
    );
    let r = generate(sql.path(), "nothing", &url, &[]);
    r.assert_ok(&["nothing to generate"]);
    assert_no_secret(&r, PASSWORD);
    let wrong = url.replace(&percent(PASSWORD), &percent("wrong-Pw#1"));
    let r = run(
        &[
            "new",
            "x",
            "--from",
            &wrong,
            "--dir",
            &sql.path().display().to_string(),
        ],
        &[("MIGRATE_WAIT_TIMEOUT", "1")],
    );
    assert_ne!(r.code, 0);
    assert_no_secret(&r, "wrong-Pw#1");
}

/// The models as the loose variant writes them (Python-side defaults, no CHECKs, unbounded
/// strings, foreign keys without ON DELETE): from either dialect the same lint-clean files,
/// which seeded databases of both dialects take through expand, contract and every undo with
/// `verify` clean at each version.
#[test]
fn the_loose_models_migrations_apply_and_undo_on_seeded_databases() {
    let copy = Checkout::new("generate-loose");
    let (pg_loose, _) = models(Dialect::Postgres, "loose");
    let (lite_loose, _lite_file) = models(Dialect::Sqlite, "loose");
    generate(&copy.sql(), "loose_models", &pg_loose, &[]).assert_ok(&["contract step(s)"]);
    let other = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"),
        other.path(),
    );
    generate(other.path(), "loose_models", &lite_loose, &[]).assert_code(0);
    assert_eq!(
        files(other.path()),
        files(&copy.sql()),
        "SQLite's models wrote other files"
    );
    run_in(&copy.root, &["lint"], &[]).assert_code(0);
    let binary = copy.build();
    for (url, file) in [Dialect::Postgres, Dialect::Sqlite].map(database) {
        run(&["up"], &[("DATABASE_URL", &url)]).assert_code(0);
        backend("seed", &url);
        let rows = counts(&url, &file);
        let steps: &[&[&str]] = match file {
            Some(_) => &[&["up"], &["verify"], &["down", "--steps", "3"], &["verify"]],
            None => &[
                &["up"],
                &["verify"],
                &["complete"],
                &["verify"],
                &["down", "--steps", "3"],
                &["verify"],
            ],
        };
        for args in steps {
            let mut c = program(&binary);
            c.args(*args).env("DATABASE_URL", &url);
            let out = c.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{args:?} on {url}: {stderr}");
        }
        assert_eq!(counts(&url, &file), rows, "{url}: every row kept");
    }
}
