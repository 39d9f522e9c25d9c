//! `lint` through the real binary: the shipped migrations are clean (what they do accepted in
//! `lint-accepted.txt`, the files untouched), every rule fires with file, line, statement, why
//! and the safe form, the safe forms pass, a type change is judged by the type the folder's
//! earlier migrations gave the column, and markers and the accept file work as documented.
//! What PostgreSQL really does with each form is `lint_replay.rs`'s.

mod support;

use support::{run, run_in};

/// A migrations folder with one PostgreSQL file, `name`, holding `sql`.
fn folder(name: &str, sql: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("postgres")).unwrap();
    std::fs::write(dir.path().join("postgres").join(name), sql).unwrap();
    dir
}

fn lint_dir(dir: &tempfile::TempDir) -> support::Run {
    run(&["lint", "--dir", dir.path().to_str().unwrap()], &[])
}

#[test]
fn the_shipped_migrations_lint_clean_without_being_edited() {
    let r = run_in(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &["lint"],
        &[],
    );
    r.assert_code(0);
    assert!(
        r.stdout.contains("lint: 10 file(s), 0 problem(s)")
            && r.stdout.contains("3 accepted in lint-accepted.txt"),
        "{}",
        r.stdout
    );
}

#[test]
fn every_rule_fires_naming_file_line_statement_why_and_the_safe_form() {
    let sql = "\
CREATE INDEX ix_poses_name ON poses (name);
ALTER TABLE poses ADD COLUMN tag text NOT NULL;
ALTER TABLE poses ALTER COLUMN name TYPE text;
ALTER TABLE practice_sessions ADD CONSTRAINT fk_s_user FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE poses ALTER COLUMN description SET NOT NULL;
ALTER TABLE users RENAME COLUMN email TO mail;
ALTER TABLE poses ADD CONSTRAINT ck CHECK (difficulty > 0);
ALTER TABLE poses ADD CONSTRAINT uq UNIQUE (sanskrit_name);
ALTER TABLE poses DROP COLUMN image;
CREATE INDEX CONCURRENTLY ix_c ON poses (name);
DROP INDEX ix_poses_difficulty;
REINDEX TABLE poses;
TRUNCATE practice_history;
VACUUM FULL poses;
ALTER TABLE poses ADD CONSTRAINT ck_nv CHECK (difficulty <> '') NOT VALID;
ALTER TABLE poses VALIDATE CONSTRAINT ck_nv;
COMMIT;
ALTER TABLE poses ADD COLUMN n integer DEFAULT next_pose_number();
";
    let dir = folder("V6__busy.sql", sql);
    let r = lint_dir(&dir);
    r.assert_code(12);
    let file = dir.path().join("postgres/V6__busy.sql");
    let file = file.display();
    for (line, rule, statement) in [
        (
            1,
            "index-blocks-writes",
            "CREATE INDEX ix_poses_name ON poses (name);",
        ),
        (
            2,
            "not-null-column-without-default",
            "ALTER TABLE poses ADD COLUMN tag text NOT NULL;",
        ),
        (
            3,
            "column-type-rewrites",
            "ALTER TABLE poses ALTER COLUMN name TYPE text;",
        ),
        (
            4,
            "foreign-key-validates",
            "ALTER TABLE practice_sessions ADD CONSTRAINT fk_s_user",
        ),
        (
            5,
            "set-not-null-scans",
            "ALTER TABLE poses ALTER COLUMN description SET NOT NULL;",
        ),
        (
            6,
            "rename-breaks-app",
            "ALTER TABLE users RENAME COLUMN email TO mail;",
        ),
        (
            7,
            "check-validates",
            "ALTER TABLE poses ADD CONSTRAINT ck CHECK (difficulty > 0);",
        ),
        (
            8,
            "unique-builds-index",
            "ALTER TABLE poses ADD CONSTRAINT uq UNIQUE (sanskrit_name);",
        ),
        (9, "drop-breaks-app", "ALTER TABLE poses DROP COLUMN image;"),
        (
            10,
            "concurrently-in-transaction",
            "CREATE INDEX CONCURRENTLY ix_c ON poses (name);",
        ),
        (11, "drop-index-blocks", "DROP INDEX ix_poses_difficulty;"),
        (12, "reindex-blocks", "REINDEX TABLE poses;"),
        (13, "truncate", "TRUNCATE practice_history;"),
        (14, "table-rewrite", "VACUUM FULL poses;"),
        (
            16,
            "validate-in-same-transaction",
            "ALTER TABLE poses VALIDATE CONSTRAINT ck_nv;",
        ),
        (17, "transaction-control", "COMMIT;"),
        (
            18,
            "add-column-rewrites",
            "ALTER TABLE poses ADD COLUMN n integer DEFAULT next_pose_number();",
        ),
        // An expand step (no `-- phase: contract`): what the previous app version's writes
        // would break.
        (
            5,
            "expand-breaks-app",
            "ALTER TABLE poses ALTER COLUMN description SET NOT NULL;",
        ),
        (
            7,
            "expand-breaks-app",
            "ALTER TABLE poses ADD CONSTRAINT ck CHECK (difficulty > 0);",
        ),
    ] {
        let head = format!("{file}:{line}: {rule}: {statement}");
        assert!(
            r.stdout.contains(&head),
            "missing `{head}` in:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout
            .contains("    why:  builds the index under a SHARE lock on poses")
            && r.stdout.contains("    safe: CREATE INDEX CONCURRENTLY")
            && r.stdout.contains("VALIDATE CONSTRAINT"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("lint: 1 file(s), 22 problem(s)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: lint found 22 problem(s) in {file}: use the safe form, or, where the \
             statement is safe here, say why with `-- lint: allow RULE REASON` right above it \
             (in a migration already shipped, never edit the file: add `FILE RULE REASON` to \
             lint-accepted.txt beside it)"
        )
    );
}

#[test]
fn the_safe_forms_and_new_tables_pass() {
    let dir = folder(
        "V6__safe.sql",
        "-- no-transaction\n\
         CREATE INDEX CONCURRENTLY ix_poses_name ON poses (name);\n",
    );
    std::fs::write(
        dir.path().join("postgres/V7__safe.sql"),
        "-- phase: contract (new rules the previous app version's writes may break)\n\
         CREATE TABLE tags (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);\n\
         CREATE INDEX ix_tags_name ON tags (name);\n\
         ALTER TABLE tags ADD COLUMN n integer NOT NULL;\n\
         ALTER TABLE poses ADD COLUMN tag text NOT NULL DEFAULT '';\n\
         ALTER TABLE practice_sessions ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
         ALTER TABLE poses ADD CONSTRAINT ck CHECK (difficulty > 0) NOT VALID;\n",
    )
    .unwrap();
    // Validated in the next migration, once the ADD's lock is gone.
    std::fs::write(
        dir.path().join("postgres/V8__validate.sql"),
        "ALTER TABLE practice_sessions VALIDATE CONSTRAINT fk;\n\
         ALTER TABLE poses VALIDATE CONSTRAINT ck;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("postgres/V7__safe.down.sql"),
        "ALTER TABLE poses DROP COLUMN tag;\nDROP TABLE tags;\n",
    )
    .unwrap();
    let r = lint_dir(&dir);
    r.assert_code(0);
    assert!(
        r.stdout.contains("lint: 4 file(s), 0 problem(s)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_type_change_is_judged_by_the_type_the_earlier_migrations_gave_the_column() {
    let dir = folder(
        "V6__tags.sql",
        "CREATE TABLE tags (id integer PRIMARY KEY, name varchar(20), note text);\n",
    );
    let widen = "ALTER TABLE tags ALTER COLUMN name TYPE varchar(50);\n\
                 ALTER TABLE tags ALTER COLUMN note TYPE varchar;\n";
    std::fs::write(dir.path().join("postgres/V7__widen.sql"), widen).unwrap();
    let r = lint_dir(&dir);
    r.assert_code(0);
    // Named alone, the file is still read with its folder's earlier versions.
    let v7 = dir.path().join("postgres/V7__widen.sql");
    run(&["lint", v7.to_str().unwrap()], &[]).assert_code(0);
    // Shorter again: PostgreSQL checks (and rewrites) every row.
    std::fs::write(
        dir.path().join("postgres/V8__shorten.sql"),
        "ALTER TABLE tags ALTER COLUMN name TYPE varchar(30);\n",
    )
    .unwrap();
    let r = lint_dir(&dir);
    r.assert_code(12);
    assert!(
        r.stdout
            .contains("V8__shorten.sql:1: column-type-rewrites:")
            && r.stdout.contains("V8__shorten.sql:1: expand-breaks-app:")
            && r.stdout.contains("lint: 3 file(s), 2 problem(s)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_marker_with_a_reason_silences_one_statement_and_the_accept_file_a_shipped_one() {
    let dir = folder(
        "V6__tags.sql",
        "-- lint: allow index-blocks-writes poses holds 300 rows: the build takes milliseconds\n\
         CREATE INDEX ix_poses_name ON poses (name);\n\
         -- lint: allow index-blocks-writes\n\
         CREATE INDEX ix_poses_tag ON poses (tag);\n",
    );
    let r = lint_dir(&dir);
    r.assert_code(12);
    let file = dir.path().join("postgres/V6__tags.sql");
    assert!(
        r.stdout
            .contains(&format!("{}:4: lint-marker:", file.display()))
            && r.stdout.contains("say why the statement is safe here")
            && r.stdout
                .contains(&format!("{}:4: index-blocks-writes:", file.display()))
            && !r.stdout.contains(":2: index-blocks-writes"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("1 allowed by a `lint: allow` marker"),
        "{}",
        r.stdout
    );

    // What a shipped file does is accepted beside it, not by editing it.
    let before = std::fs::read(&file).unwrap();
    std::fs::write(
        dir.path().join("postgres/lint-accepted.txt"),
        "# shipped\nV6__tags.sql index-blocks-writes shipped when poses held 300 rows\n\
         V6__tags.sql lint-marker shipped with a marker missing its reason\n",
    )
    .unwrap();
    let r = lint_dir(&dir);
    r.assert_code(0);
    assert!(
        r.stdout.contains("2 accepted in lint-accepted.txt"),
        "{}",
        r.stdout
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);

    std::fs::write(
        dir.path().join("postgres/lint-accepted.txt"),
        "V6__tags.sql index-blocks-writes\n",
    )
    .unwrap();
    let r = lint_dir(&dir);
    r.assert_error(2, &["lint-accepted.txt:1: expected `FILE RULE REASON`"]);
}

#[test]
fn a_statement_the_parser_cannot_read_is_a_problem_and_a_missing_file_an_error() {
    let dir = folder(
        "V6__bad.sql",
        "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN;\n",
    );
    let r = lint_dir(&dir);
    r.assert_code(12);
    assert!(r.stdout.contains("V6__bad.sql:2: syntax:"), "{}", r.stdout);
    let r = run(&["lint", "/nonexistent/V9__x.sql"], &[]);
    r.assert_error(2, &["cannot read /nonexistent/V9__x.sql"]);
}

#[test]
fn new_then_lint_the_new_files() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["postgres", "sqlite"] {
        std::fs::create_dir_all(dir.path().join("sql").join(d)).unwrap();
    }
    run_in(dir.path(), &["new", "add_pose_tags"], &[]).assert_code(0);
    let r = run_in(dir.path(), &["lint"], &[]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("lint: 2 file(s), 0 problem(s)"),
        "{}",
        r.stdout
    );
}
