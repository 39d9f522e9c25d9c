//! Table tests of the planner and both writers.

use super::*;
use crate::schema::logical::IDENTITY;
use crate::schema::{Column, ForeignKey, Index, Schema, Spelling, Table};

fn col(t: &str, nullable: bool, default: Option<&str>) -> Column {
    Column {
        data_type: t.into(),
        nullable,
        default: default.map(str::to_string),
    }
}

/// A logical `users` table: id, email, full_name; unique email.
fn users() -> Table {
    let mut t = Table::default();
    t.columns
        .insert("id".into(), col("integer", false, Some(IDENTITY)));
    t.columns
        .insert("email".into(), col("string(255)", false, None));
    t.columns
        .insert("full_name".into(), col("string(255)", true, None));
    t.primary_key = vec!["id".into()];
    t.uniques.insert(vec!["email".into()]);
    t.spelling = Spelling {
        order: vec!["id".into(), "email".into(), "full_name".into()],
        ..Spelling::default()
    };
    t
}

fn schema(tables: Vec<(&str, Table)>) -> Schema {
    Schema {
        tables: tables
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
    }
}

fn rename(s: &str) -> Rename {
    s.parse().unwrap()
}

#[test]
fn renames_parse_as_table_old_new_and_name_what_is_wrong() {
    assert_eq!(
        rename("users.full_name=display_name"),
        Rename {
            table: "users".into(),
            from: "full_name".into(),
            to: "display_name".into()
        }
    );
    for bad in [
        "users.full_name",
        "full_name=display_name",
        "users.=x",
        "a.b.c=d",
        "users.a=",
    ] {
        assert!(bad.parse::<Rename>().is_err(), "{bad}");
    }
}

#[test]
fn the_same_schema_needs_nothing() {
    let s = schema(vec![("users", users())]);
    assert!(plan(&s, &s, &[]).unwrap().is_empty());
    let mut with_alembic = s.clone();
    with_alembic
        .tables
        .insert("alembic_version".into(), Table::default());
    assert!(plan(&s, &with_alembic, &[]).unwrap().is_empty());
}

#[test]
fn a_column_gone_and_another_new_is_a_rename_only_when_declared() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    let c = t.columns.remove("full_name").unwrap();
    t.columns.insert("display_name".into(), c);
    let to = schema(vec![("users", t)]);
    let e = plan(&from, &to, &[]).unwrap_err().to_string();
    assert!(e.contains("--rename users.full_name=display_name"), "{e}");
    let changes = plan(&from, &to, &[rename("users.full_name=display_name")]).unwrap();
    let halves: Vec<(Half, Stage)> = changes
        .iter()
        .map(|c| match c {
            Change::RenamePair { half, .. } => (*half, c.stage()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        halves,
        [
            (Half::Expand, Stage::Expand),
            (Half::Contract, Stage::Contract)
        ]
    );
    // Between the two, both columns and the sync triggers; after, the models' schema.
    let [expand, _, contract, _] = states(&from, &changes);
    assert!(expand.tables["users"].columns.contains_key("full_name"));
    assert!(expand.tables["users"].columns.contains_key("display_name"));
    assert_eq!(expand.tables["users"].triggers.len(), 2);
    assert_eq!(contract, to);
    for (bad, says) in [
        ("poses.a=b", "the migrations have no table poses"),
        ("users.nope=display_name", "has no column nope"),
        (
            "users.full_name=other",
            "the models' users has no column other",
        ),
    ] {
        let e = plan(&from, &to, &[rename(bad)]).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn a_new_not_null_column_needs_a_server_default() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    t.columns
        .insert("tz".into(), col("string(64)", false, None));
    let e = plan(&from, &schema(vec![("users", t.clone())]), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column users.tz is new and NOT NULL without a server default"),
        "{e}"
    );
    t.columns
        .insert("tz".into(), col("string(64)", false, Some("'UTC'")));
    let changes = plan(&from, &schema(vec![("users", t)]), &[]).unwrap();
    assert!(matches!(&changes[..], [Change::AddColumn { column, .. }] if column == "tz"));
}

/// Every change, applied to the model, reaches the models' schema; its inverses, applied in
/// reverse, come back to the migrations'.
#[test]
fn a_plan_reaches_the_models_schema_and_its_undo_comes_back() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    t.uniques.clear();
    t.columns.get_mut("full_name").unwrap().nullable = false;
    t.columns.get_mut("email").unwrap().data_type = "string(300)".into();
    t.checks.insert("email <> ''".into());
    t.indexes.insert(
        "ix_users_full_name".into(),
        Index {
            columns: vec!["full_name".into()],
            unique: false,
        },
    );
    let mut tags = Table::default();
    tags.columns
        .insert("id".into(), col("integer", false, Some(IDENTITY)));
    tags.columns
        .insert("user_id".into(), col("integer", true, None));
    tags.primary_key = vec!["id".into()];
    tags.foreign_keys.insert(ForeignKey {
        columns: vec!["user_id".into()],
        ref_table: "users".into(),
        ref_columns: vec!["id".into()],
        on_delete: "CASCADE".into(),
    });
    let to = schema(vec![("users", t), ("tags", tags)]);
    let changes = plan(&from, &to, &[]).unwrap();
    let [expand, _, _, last] = states(&from, &changes);
    assert_eq!(last, to);
    assert_ne!(expand, to, "what tightens waits for the contract step");
    let mut back = last.clone();
    for c in changes.iter().rev() {
        apply(&mut back, &c.inverse());
    }
    assert_eq!(back, from);
    assert_eq!(
        slots(&changes),
        vec![
            (Stage::Expand, Phase::Main),
            (Stage::Expand, Phase::Online),
            (Stage::Contract, Phase::Main),
            (Stage::Contract, Phase::Online)
        ]
    );
    // Referenced tables exist before a table that refers to them is made; the online phase
    // comes last.
    let kinds: Vec<u8> = changes.iter().map(Change::rank).collect();
    assert!(kinds
        .windows(2)
        .all(|w| w[0] <= w[1] || changes.iter().any(|c| c.phase() == Phase::Online)));
}

#[test]
fn postgresql_gets_the_forms_lint_accepts() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    t.columns.get_mut("full_name").unwrap().nullable = false;
    t.checks.insert("email <> ''".into());
    t.indexes.insert(
        "ix_users_full_name".into(),
        Index {
            columns: vec!["full_name".into()],
            unique: false,
        },
    );
    let changes = plan(&from, &schema(vec![("users", t)]), &[]).unwrap();
    let main = postgres::render(&changes, (Stage::Contract, Phase::Main)).unwrap();
    let online = postgres::render(&changes, (Stage::Contract, Phase::Online)).unwrap();
    assert_eq!(
        main.up,
        vec!["ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '') NOT VALID;"]
    );
    assert!(online.up[0].contains("VALIDATE CONSTRAINT users_email_check"));
    let joined = online.up.join("\n");
    for expected in [
        "ADD CONSTRAINT users_full_name_not_null CHECK (full_name IS NOT NULL) NOT VALID",
        "ALTER COLUMN full_name SET NOT NULL",
    ] {
        assert!(joined.contains(expected), "{expected}: {joined}");
    }
    assert_eq!(
        online.down,
        vec!["ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL;".to_string()]
    );
    assert_eq!(
        main.down,
        vec!["ALTER TABLE users DROP CONSTRAINT users_email_check;"]
    );
    // A plain index keeps the previous version working: the expand step builds it.
    let expand = postgres::render(&changes, (Stage::Expand, Phase::Online)).unwrap();
    assert_eq!(
        expand.up,
        vec!["CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_users_full_name ON users (full_name);"]
    );
}

#[test]
fn sqlite_alters_in_place_where_it_can_and_rebuilds_otherwise() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    t.columns
        .insert("tz".into(), col("string(64)", true, Some("'UTC'")));
    let changes = plan(&from, &schema(vec![("users", t.clone())]), &[]).unwrap();
    let expand = (Stage::Expand, Phase::Main);
    let s = sqlite::render(&changes, expand, &from, &states(&from, &changes)).unwrap();
    assert_eq!(
        s.up,
        vec!["ALTER TABLE users ADD COLUMN tz VARCHAR(64) DEFAULT 'UTC';"]
    );
    assert_eq!(s.down, vec!["ALTER TABLE users DROP COLUMN tz;"]);

    t.columns.get_mut("email").unwrap().data_type = "text".into();
    let changes = plan(&from, &schema(vec![("users", t)]), &[]).unwrap();
    // A wider type keeps the previous version working: the expand step, as a rebuild.
    let s = sqlite::render(&changes, expand, &from, &states(&from, &changes)).unwrap();
    let up = s.up.join("\n");
    assert!(up.starts_with("CREATE TABLE _yogaflow_new_users (\n    id INTEGER NOT NULL PRIMARY KEY,\n    email TEXT NOT NULL,"), "{up}");
    assert!(up.contains("INSERT INTO _yogaflow_new_users (id, email, full_name) SELECT id, email, full_name FROM users;"), "{up}");
    assert!(
        up.contains("DROP TABLE users;\nALTER TABLE _yogaflow_new_users RENAME TO users;"),
        "{up}"
    );
    assert!(s.down.join("\n").contains("email VARCHAR(255) NOT NULL"));
}

#[test]
fn what_one_dialect_cannot_spell_is_named() {
    let from = schema(vec![("users", users())]);
    let mut t = users();
    t.columns
        .insert("key".into(), col("postgres:uuid", true, None));
    let changes = plan(&from, &schema(vec![("users", t)]), &[]).unwrap();
    let expand = (Stage::Expand, Phase::Main);
    let e = sqlite::render(&changes, expand, &from, &states(&from, &changes)).unwrap_err();
    assert!(
        e.contains("column users.key: type uuid (postgres) has no sqlite counterpart"),
        "{e}"
    );
    assert!(postgres::render(&changes, expand).unwrap().up[0].contains("ADD COLUMN key uuid"));
}

#[test]
fn identifiers_are_quoted_where_postgresql_needs_it() {
    for (name, spelled) in [
        ("users", "users"),
        ("user", "\"user\""),
        ("Name", "\"Name\""),
        ("a b", "\"a b\""),
        ("x\"y", "\"x\"\"y\""),
    ] {
        assert_eq!(postgres::ident(name), spelled);
    }
}

/// A renamed column with a default: the new column comes without it (else ADD COLUMN would
/// fill every row with it, and the backfill would take it for a value), gets it in the
/// contract step, and every state on the way is the model's.
#[test]
fn a_renamed_column_with_a_default_keeps_its_values() {
    let mut t = users();
    t.columns
        .insert("status".into(), col("string(20)", false, Some("'active'")));
    let from = schema(vec![("users", t.clone())]);
    let c = t.columns.remove("status").unwrap();
    t.columns.insert("state".into(), c);
    let to = schema(vec![("users", t)]);
    let changes = plan(&from, &to, &[rename("users.status=state")]).unwrap();
    let expand = postgres::render(&changes, (Stage::Expand, Phase::Main)).unwrap();
    assert_eq!(
        expand.up[0],
        "ALTER TABLE users ADD COLUMN state varchar(20);"
    );
    let contract = postgres::render(&changes, (Stage::Contract, Phase::Main)).unwrap();
    assert!(
        contract
            .up
            .contains(&"ALTER TABLE users ALTER COLUMN state SET DEFAULT 'active';".to_string()),
        "{:?}",
        contract.up
    );
    let lite = sqlite::render(
        &changes,
        (Stage::Expand, Phase::Main),
        &from,
        &states(&from, &changes),
    )
    .unwrap();
    assert_eq!(
        lite.up[0],
        "ALTER TABLE users ADD COLUMN state VARCHAR(20);"
    );
    let [after_expand, _, _, last] = states(&from, &changes);
    assert_eq!(after_expand.tables["users"].columns["state"].default, None);
    assert_eq!(last, to);
    let mut back = last;
    for c in changes.iter().rev() {
        apply(&mut back, &c.inverse());
    }
    assert_eq!(back, from);
    // Two tables renaming alike get triggers of their own (SQLite's names are global).
    assert_ne!(
        super::apply::sync_triggers("users", "status", "state"),
        super::apply::sync_triggers("poses", "status", "state")
    );
}
