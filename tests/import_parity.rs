//! One answer per file on both dialects: every case below is imported into a fresh PostgreSQL
//! database and a fresh SQLite file, and both must end with the same exit code and the same
//! words (and, when refused, with nothing written). Then what `export` writes from
//! PostgreSQL, at the deepest JSON it reads, is imported back on both.

mod support;

use serde_json::{json, Value};
use support::*;
use yogaflow_migrate::migrate::APP_TABLES as TABLES;

fn user() -> Value {
    json!({"id": 1, "created_at": "2026-12-06T19:11:08Z", "email": "a@b", "full_name": null,
           "hashed_password": "h", "is_active": true, "is_superuser": false, "updated_at": null})
}

fn pose(benefits: Value) -> Value {
    json!({"id": 1, "name": "p", "sanskrit_name": null, "description": null,
           "difficulty": "beginner", "category": null, "benefits": benefits, "metadata": {},
           "image": null, "duration_seconds": null, "created_at": "2026-12-06T19:11:08Z"})
}

fn sequence(user_id: i64) -> Value {
    json!({"id": 1, "user_id": user_id, "name": "s", "description": null, "difficulty": null,
           "duration_minutes": null, "is_public": false, "created_at": "2026-12-06T19:11:08Z",
           "updated_at": null})
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |v, _| json!([v]))
}

/// An export at `version` holding `tables` (in this order) and every other table empty.
fn export(version: i64, tables: &[(&str, Vec<Value>)]) -> String {
    let mut body: Vec<String> = tables
        .iter()
        .map(|(t, rows)| format!("\"{t}\":{}", Value::Array(rows.clone())))
        .collect();
    for t in TABLES
        .iter()
        .filter(|t| !tables.iter().any(|(n, _)| n == *t))
    {
        body.push(format!("\"{t}\":[]"));
    }
    format!(
        "{{\"format\":\"yogaflow-export\",\"format_version\":1,\"schema_version\":{version},\
         \"source_dialect\":\"sqlite\",\"exported_at\":\"2026-12-06T19:11:08Z\",\"tables\":{{{}}}}}",
        body.join(",")
    )
}

/// `export` with the first `"email":` of the text given a second value in the same object.
fn with_duplicate_email() -> String {
    export(5, &[("users", vec![user()])]).replacen(
        "\"email\":",
        "\"email\":\"dup@b\",\"email\":",
        1,
    )
}

/// What a case is: its name, its file's text (`None`: a directory), the exit code and words
/// both dialects must answer with.
fn cases() -> Vec<(&'static str, Option<String>, i32, &'static str)> {
    let mut user_without_id = user();
    user_without_id.as_object_mut().unwrap().remove("id");
    let json_dup = export(5, &[("poses", vec![pose(json!(null))])]).replacen(
        "\"benefits\":null",
        "\"benefits\":{\"a\":1,\"a\":2}",
        1,
    );
    vec![
        (
            "good",
            Some(export(5, &[("users", vec![user()])])),
            0,
            "loaded 1 rows",
        ),
        (
            "id null",
            Some(export(
                5,
                &[("users", vec![json!(user()).tap_set("id", json!(null))])],
            )),
            10,
            "table users, row 1: its id is missing, null or empty",
        ),
        (
            "id empty",
            Some(export(
                5,
                &[("users", vec![user().tap_set("id", json!(""))])],
            )),
            10,
            "table users, row 1: its id is missing, null or empty",
        ),
        (
            "id missing",
            Some(export(5, &[("users", vec![user_without_id])])),
            10,
            "table users, row 1: its id is missing, null or empty",
        ),
        (
            "email of 1,000 characters",
            Some(export(
                5,
                &[(
                    "users",
                    vec![user().tap_set("email", json!("x".repeat(1000)))],
                )],
            )),
            10,
            "table users, row id 1, column email: 1000 characters, longer than the 255",
        ),
        (
            "a column twice in a row",
            Some(with_duplicate_email()),
            10,
            "table users, row 1: column email appears twice",
        ),
        (
            "a key twice in a JSON value",
            Some(json_dup),
            10,
            "table poses, row 1, column benefits: key a appears twice in one JSON object",
        ),
        (
            "children before parents",
            Some(export(
                5,
                &[("sequences", vec![sequence(1)]), ("users", vec![user()])],
            )),
            0,
            "loaded 2 rows",
        ),
        (
            "a row without its parent",
            Some(export(
                5,
                &[("sequences", vec![sequence(99)]), ("users", vec![user()])],
            )),
            10,
            "the loaded rows break a constraint",
        ),
        (
            "JSON 124 levels deep",
            Some(export(5, &[("poses", vec![pose(nested(124))])])),
            0,
            "loaded 1 rows",
        ),
        (
            "JSON 129 levels deep",
            Some(export(5, &[("poses", vec![pose(nested(129))])])),
            10,
            "JSON nested deeper than 128 levels",
        ),
        (
            "schema_version 6",
            Some(export(6, &[("users", vec![user()])])),
            10,
            "its header says schema_version 6, which this binary does not know",
        ),
        ("a directory", None, 2, "is a directory"),
    ]
}

/// A JSON object with one field set.
trait TapSet {
    fn tap_set(self, key: &str, v: Value) -> Value;
}

impl TapSet for Value {
    fn tap_set(mut self, key: &str, v: Value) -> Value {
        self.as_object_mut().unwrap().insert(key.into(), v);
        self
    }
}

/// Imports `file` into a fresh database of each dialect, migrated: (PostgreSQL's run and its
/// row count, SQLite's run and its row count).
fn import_both(file: &str) -> [(Run, String); 2] {
    let c = cluster();
    let db = c.create_db();
    run(&["up"], &[("DATABASE_URL", &c.url(&db))]).assert_code(0);
    let pg = run(&["import", file], &[("DATABASE_URL", &c.url(&db))]);
    let pg_rows = c.psql(
        &db,
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM poses) \
         + (SELECT count(*) FROM sequences)",
    );
    let lite = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &lite.url())]).assert_code(0);
    let sq = run(&["import", file], &[("DATABASE_URL", &lite.url())]);
    let sq_rows = lite.sqlite(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM poses) \
         + (SELECT count(*) FROM sequences)",
    );
    [(pg, pg_rows), (sq, sq_rows)]
}

#[test]
fn every_case_gets_the_same_answer_on_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = Vec::new();
    for (name, text, code, words) in cases() {
        let path = dir.path().join(name.replace(' ', "_"));
        match &text {
            Some(t) => std::fs::write(&path, t).unwrap(),
            None => std::fs::create_dir(&path).unwrap(),
        }
        let [(pg, pg_rows), (sq, sq_rows)] = import_both(path.to_str().unwrap());
        table.push(format!("{name}: postgres {}, sqlite {}", pg.code, sq.code));
        for (dialect, r, rows) in [("postgres", &pg, &pg_rows), ("sqlite", &sq, &sq_rows)] {
            assert_eq!(r.code, code, "{name} on {dialect}:\n{}", r.stderr);
            assert!(
                r.stderr.contains(words),
                "{name} on {dialect}:\n{}",
                r.stderr
            );
            if code != 0 && text.is_some() {
                assert_eq!(rows, "0", "{name} on {dialect}: something was written");
            }
        }
    }
    println!("{}", table.join("\n"));
}

#[test]
fn what_export_writes_import_reads_back_at_any_depth() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.json");
    std::fs::write(&deep, export(5, &[("poses", vec![pose(nested(124))])])).unwrap();
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    run(
        &["import", deep.to_str().unwrap()],
        &[("DATABASE_URL", &url)],
    )
    .assert_code(0);
    let again = dir.path().join("again.json");
    run(
        &["export", "--out", again.to_str().unwrap()],
        &[("DATABASE_URL", &url)],
    )
    .assert_code(0);
    let [(pg, _), (sq, _)] = import_both(again.to_str().unwrap());
    pg.assert_code(0);
    sq.assert_code(0);
    // serde_json's own limit is 128 levels, the document's included: read it without one.
    let text = std::fs::read_to_string(&again).unwrap();
    let mut de = serde_json::Deserializer::from_str(&text);
    de.disable_recursion_limit();
    let written: Value = serde::Deserialize::deserialize(&mut de).unwrap();
    assert_eq!(written["tables"]["poses"][0]["benefits"], nested(124));
}
