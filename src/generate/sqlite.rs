//! A plan written as SQLite: native `ALTER TABLE` where SQLite has it (ADD, RENAME and DROP
//! COLUMN, indexes), and otherwise SQLite's table rebuild (a new table as the next version
//! has it, the rows copied by column name, the old table dropped, the new one renamed, its
//! indexes made again). `up` turns foreign keys off around a migration that drops a table and
//! checks them before the commit, so a rebuilt parent never cascades into its children.
//! Checks and NOT NULL hold at once on SQLite: the online migration holds only what the
//! PostgreSQL one does there, so both dialects reach the same schema at every version.

use super::postgres::{ident, list, ordered, Scripts};
use super::{Change, Phase};
use crate::migrations::Dialect;
use crate::schema::logical::{spell_default, spell_type, IDENTITY};
use crate::schema::{Column, ConstraintKey as K, Index, Schema, Table};
use std::collections::BTreeSet;

/// The scripts of `phase` for `changes` (a whole plan), where `states` are the schemas after
/// each phase and `from` the one before the first. Err names what SQLite has no spelling for.
pub fn render(
    changes: &[Change],
    phase: Phase,
    from: &Schema,
    states: &[Schema; 2],
) -> Result<Scripts, String> {
    let (before, after) = match phase {
        Phase::Main => (from, &states[0]),
        Phase::Online => (&states[0], &states[1]),
    };
    let forward: Vec<Change> = changes
        .iter()
        .filter(|c| c.phase() == phase)
        .cloned()
        .collect();
    let backward: Vec<Change> = forward.iter().rev().map(Change::inverse).collect();
    Ok(Scripts {
        up: direction(&forward, before, after)?,
        down: direction(&backward, after, before)?,
    })
}

/// The statements that take `before` to `after` through `changes`.
fn direction(changes: &[Change], before: &Schema, after: &Schema) -> Result<Vec<String>, String> {
    let rebuilt: BTreeSet<&str> = changes
        .iter()
        .filter(|c| !native(c, before))
        .map(Change::table)
        .filter(|t| before.tables.contains_key(*t) && after.tables.contains_key(*t))
        .collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for c in changes {
        let table = c.table();
        if rebuilt.contains(table) {
            if done.insert(table) {
                out.extend(rebuild(
                    table,
                    &before.tables[table],
                    &after.tables[table],
                    changes,
                )?);
            }
            continue;
        }
        out.extend(statement(c)?);
    }
    Ok(out)
}

/// Whether SQLite's own ALTER TABLE does `c` (else the table is rebuilt).
fn native(c: &Change, before: &Schema) -> bool {
    match c {
        Change::CreateTable { .. }
        | Change::DropTable { .. }
        | Change::RenameColumn { .. }
        | Change::AddIndex { .. }
        | Change::DropIndex { .. } => true,
        // SQLite refuses ADD COLUMN NOT NULL without a constant default, and a column whose
        // default is not constant.
        Change::AddColumn { def, .. } => match def.default.as_deref() {
            None => def.nullable,
            Some(d) => d != "now" && d != IDENTITY && !d.contains(':'),
        },
        // SQLite refuses DROP COLUMN of a column a key, index or check names.
        Change::DropColumn { table, column, .. } => before.tables.get(table).is_some_and(|t| {
            let named = |cols: &[String]| cols.iter().any(|c| c == column);
            !named(&t.primary_key)
                && !t.uniques.iter().any(|u| named(u))
                && !t.indexes.values().any(|i| named(&i.columns))
                && !t.foreign_keys.iter().any(|k| named(&k.columns))
                && !t
                    .checks
                    .iter()
                    .any(|e| super::replace_word(e, column, "\u{0}") != *e)
        }),
        _ => false,
    }
}

/// A native change's statements.
fn statement(c: &Change) -> Result<Vec<String>, String> {
    let alter = |t: &str, a: String| format!("ALTER TABLE {} {a};", ident(t));
    Ok(match c {
        Change::CreateTable { table, def } => create_table(table, table, def, true)?,
        Change::DropTable { table, .. } => vec![format!("DROP TABLE {};", ident(table))],
        Change::AddColumn { table, column, def } => {
            let d = column_def(def).map_err(|e| format!("column {table}.{column}: {e}"))?;
            vec![alter(table, format!("ADD COLUMN {} {d}", ident(column)))]
        }
        Change::DropColumn { table, column, .. } => {
            vec![alter(table, format!("DROP COLUMN {}", ident(column)))]
        }
        Change::RenameColumn { table, from, to } => {
            vec![alter(
                table,
                format!("RENAME COLUMN {} TO {}", ident(from), ident(to)),
            )]
        }
        Change::AddIndex { table, name, index } => vec![create_index(table, name, index)],
        Change::DropIndex { name, .. } => vec![format!("DROP INDEX IF EXISTS {};", ident(name))],
        other => {
            return Err(format!(
                "{}: SQLite needs a rebuild for this",
                other.describe()
            ))
        }
    })
}

fn column_def(c: &Column) -> Result<String, String> {
    let mut s = spell_type(Dialect::Sqlite, &c.data_type)?;
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    if let Some(v) = c.default.as_deref().filter(|v| *v != IDENTITY) {
        s.push_str(" DEFAULT ");
        s.push_str(&spell_default(Dialect::Sqlite, &c.data_type, v)?);
    }
    Ok(s)
}

fn create_index(table: &str, name: &str, i: &Index) -> String {
    format!(
        "CREATE {}INDEX IF NOT EXISTS {} ON {} ({});",
        if i.unique { "UNIQUE " } else { "" },
        ident(name),
        ident(table),
        list(&i.columns)
    )
}

/// `CREATE TABLE created` as `name` is defined by `t` (constraint names from `name`'s
/// spelling), and, if `indexes`, its indexes.
fn create_table(
    created: &str,
    name: &str,
    t: &Table,
    indexes: bool,
) -> Result<Vec<String>, String> {
    let rowid = match t.primary_key.as_slice() {
        [pk] if t.columns[pk].default.as_deref() == Some(IDENTITY) => Some(pk.clone()),
        _ => None,
    };
    let mut lines = Vec::new();
    for c in ordered(t) {
        let def = &t.columns[&c];
        if rowid.as_ref() == Some(&c) {
            lines.push(format!("{} INTEGER NOT NULL PRIMARY KEY", ident(&c)));
            continue;
        }
        let d = column_def(def).map_err(|e| format!("column {name}.{c}: {e}"))?;
        lines.push(format!("{} {d}", ident(&c)));
    }
    if rowid.is_none() && !t.primary_key.is_empty() {
        lines.push(format!("PRIMARY KEY ({})", list(&t.primary_key)));
    }
    for u in &t.uniques {
        let n = t.spelling.name_of(name, &K::Unique(u));
        lines.push(format!("CONSTRAINT {} UNIQUE ({})", ident(&n), list(u)));
    }
    for e in &t.checks {
        if e.contains("::") {
            return Err(format!(
                "check on {name} ({e}): PostgreSQL's spelling, not SQLite's"
            ));
        }
        let n = t.spelling.name_of(name, &K::Check(e));
        lines.push(format!("CONSTRAINT {} CHECK ({e})", ident(&n)));
    }
    for k in &t.foreign_keys {
        let n = t.spelling.name_of(name, &K::ForeignKey(&k.columns));
        let rule = match k.on_delete.as_str() {
            "NO ACTION" | "" => String::new(),
            r => format!(" ON DELETE {r}"),
        };
        lines.push(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){rule}",
            ident(&n),
            list(&k.columns),
            ident(&k.ref_table),
            list(&k.ref_columns)
        ));
    }
    let mut out = vec![format!(
        "CREATE TABLE {} (\n    {}\n);",
        ident(created),
        lines.join(",\n    ")
    )];
    if indexes {
        out.extend(t.indexes.iter().map(|(n, i)| create_index(name, n, i)));
    }
    Ok(out)
}

/// SQLite's rebuild of `table` from `before` to `after`, renames among `changes` followed.
fn rebuild(
    table: &str,
    before: &Table,
    after: &Table,
    changes: &[Change],
) -> Result<Vec<String>, String> {
    let temporary = format!("_yogaflow_new_{table}");
    let source = |column: &str| -> Option<String> {
        let renamed = changes.iter().find_map(|c| match c {
            Change::RenameColumn { table: t, from, to } if t == table && to == column => {
                Some(from.clone())
            }
            _ => None,
        });
        let name = renamed.unwrap_or_else(|| column.to_string());
        before.columns.contains_key(&name).then_some(name)
    };
    let (mut to, mut from) = (Vec::new(), Vec::new());
    for c in ordered(after) {
        if let Some(s) = source(&c) {
            to.push(c);
            from.push(s);
        }
    }
    let mut out = create_table(&temporary, table, after, false)?;
    out.push(format!(
        "INSERT INTO {} ({}) SELECT {} FROM {};",
        ident(&temporary),
        list(&to),
        list(&from),
        ident(table)
    ));
    out.push(format!("DROP TABLE {};", ident(table)));
    out.push(format!(
        "ALTER TABLE {} RENAME TO {};",
        ident(&temporary),
        ident(table)
    ));
    out.extend(after.indexes.iter().map(|(n, i)| create_index(table, n, i)));
    Ok(out)
}
