//! A plan written as SQLite: native `ALTER TABLE` where SQLite has it (ADD, RENAME and DROP
//! COLUMN, indexes), and otherwise SQLite's table rebuild (a new table as the next version
//! has it, the rows copied by column name, the old table dropped, the new one renamed, its
//! indexes made again). `up` turns foreign keys off around a migration that drops a table and
//! checks them before the commit, so a rebuilt parent never cascades into its children.
//! Checks and NOT NULL hold at once on SQLite: the online migration holds only what the
//! PostgreSQL one does there, so both dialects reach the same schema at every version.

use super::postgres::{ident, list, ordered, Scripts};
use super::{Change, Half, Phase, Slot, SLOTS};
use crate::migrations::Dialect;
use crate::schema::logical::{spell_default, spell_type, IDENTITY};
use crate::schema::{Column, ConstraintKey as K, Index, Schema, Table};
use std::collections::BTreeSet;

/// The scripts of `slot` for `changes` (a whole plan), where `states` are the schemas after
/// each slot ([`super::states`]) and `from` the one before the first. Err names what SQLite
/// has no spelling for.
pub fn render(
    changes: &[Change],
    slot: Slot,
    from: &Schema,
    states: &[Schema; 4],
) -> Result<Scripts, String> {
    let at = SLOTS.iter().position(|s| *s == slot).expect("a slot");
    let (before, after) = (if at == 0 { from } else { &states[at - 1] }, &states[at]);
    let forward: Vec<Change> = changes
        .iter()
        .filter(|c| c.slot() == slot)
        .cloned()
        .collect();
    let backward: Vec<Change> = forward.iter().rev().map(Change::inverse).collect();
    let mut up = direction(&forward, before, after)?;
    // A rename pair's backfill follows its expand step, as on PostgreSQL.
    if slot.1 == Phase::Online {
        for c in changes.iter().filter(|c| c.slot() == (slot.0, Phase::Main)) {
            if let Change::RenamePair {
                table,
                from,
                to,
                half: Half::Expand,
                ..
            } = c
            {
                up.push(super::postgres::backfill(table, from, to));
            }
        }
    }
    Ok(Scripts {
        up,
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
        // NULLs filled before a rebuild that makes the column NOT NULL copies them.
        if !rebuilt.contains(table) || matches!(c, Change::FillNulls { .. }) {
            out.extend(statement(c)?);
            continue;
        }
        if done.insert(table) {
            let (b, a) = (&before.tables[table], &after.tables[table]);
            out.extend(rebuild(table, b, a, changes)?);
        }
        // A rebuild drops the table's triggers with it: a pair's are made after it.
        if let Change::RenamePair {
            from,
            to,
            half: Half::Expand | Half::UndoContract,
            ..
        } = c
        {
            out.extend(sync_triggers(table, from, to));
        }
    }
    Ok(out)
}

/// Whether a column can be added by ALTER TABLE: SQLite refuses NOT NULL without a constant
/// default, and a default that is not constant.
fn addable(def: &Column) -> bool {
    match def.default.as_deref() {
        None => def.nullable,
        Some(d) => d != "now" && d != IDENTITY && !d.contains(':'),
    }
}

/// Whether a column can be dropped by ALTER TABLE: SQLite refuses one a key, index or check
/// names.
fn droppable(before: &Schema, table: &str, column: &str) -> bool {
    before.tables.get(table).is_some_and(|t| {
        let named = |cols: &[String]| cols.iter().any(|c| c == column);
        !named(&t.primary_key)
            && !t.uniques.iter().any(|u| named(u))
            && !t.indexes.values().any(|i| named(&i.columns))
            && !t.foreign_keys.iter().any(|k| named(&k.columns))
            && !t
                .checks
                .iter()
                .any(|e| super::replace_word(e, column, "\u{0}") != *e)
    })
}

/// The triggers that keep a rename pair's columns equal: SQLite has no BEFORE trigger that
/// sets a value, so each fills the other column right after an insert or an update (its own
/// update does not fire them again: recursive triggers are off).
fn sync_triggers(table: &str, from: &str, to: &str) -> Vec<String> {
    let [on_insert, on_update] = super::apply::sync_triggers(table, from, to);
    let (t, f, n) = (ident(table), ident(from), ident(to));
    vec![
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {t} WHEN NEW.{n} IS NULL OR NEW.{f} IS NULL\n\
             BEGIN UPDATE {t} SET {n} = coalesce(NEW.{n}, NEW.{f}), {f} = coalesce(NEW.{f}, NEW.{n}) \
             WHERE rowid = NEW.rowid; END;",
            ident(&on_insert)
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE OF {f}, {n} ON {t} WHEN NEW.{n} IS NOT OLD.{n} OR NEW.{f} IS NOT OLD.{f}\n\
             BEGIN UPDATE {t} SET {n} = CASE WHEN NEW.{n} IS NOT OLD.{n} THEN NEW.{n} ELSE NEW.{f} END, \
             {f} = CASE WHEN NEW.{n} IS NOT OLD.{n} THEN NEW.{n} ELSE NEW.{f} END WHERE rowid = NEW.rowid; END;",
            ident(&on_update)
        ),
    ]
}

fn drop_sync_triggers(table: &str, from: &str, to: &str) -> Vec<String> {
    super::apply::sync_triggers(table, from, to)
        .iter()
        .map(|n| format!("DROP TRIGGER IF EXISTS {};", ident(n)))
        .collect()
}

/// Whether SQLite's own ALTER TABLE does `c` (else the table is rebuilt).
fn native(c: &Change, before: &Schema) -> bool {
    match c {
        Change::CreateTable { .. }
        | Change::DropTable { .. }
        | Change::AddIndex { .. }
        | Change::DropIndex { .. } => true,
        Change::AddColumn { def, .. } => addable(def),
        Change::DropColumn { table, column, .. } => droppable(before, table, column),
        Change::RenamePair {
            table,
            from,
            to,
            old,
            new,
            half,
        } => match half {
            // The new column comes without its default (see `apply`): always addable.
            Half::Expand => true,
            // A default given or taken back, or NOT NULL, is a rebuild on SQLite.
            Half::UndoContract => old.nullable && old.default.is_none() && new.default.is_none(),
            Half::Contract => droppable(before, table, from) && new.default.is_none(),
            Half::UndoExpand => droppable(before, table, to),
        },
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
        Change::RenamePair {
            table,
            from,
            to,
            old,
            new,
            half,
        } => {
            let add = |name: &str, def: &Column| -> Result<String, String> {
                let d = column_def(&super::apply::bare(def))
                    .map_err(|e| format!("column {table}.{name}: {e}"))?;
                Ok(alter(table, format!("ADD COLUMN {} {d}", ident(name))))
            };
            let drop = |name: &str| alter(table, format!("DROP COLUMN {}", ident(name)));
            match half {
                Half::Expand => [vec![add(to, new)?], sync_triggers(table, from, to)].concat(),
                Half::Contract => [drop_sync_triggers(table, from, to), vec![drop(from)]].concat(),
                Half::UndoExpand => [drop_sync_triggers(table, from, to), vec![drop(to)]].concat(),
                Half::UndoContract => [
                    vec![add(from, old)?],
                    sync_triggers(table, from, to),
                    vec![super::postgres::backfill(table, from, to)],
                ]
                .concat(),
            }
        }
        Change::AddIndex { table, name, index } => vec![create_index(table, name, index)],
        Change::DropIndex { name, .. } => vec![format!("DROP INDEX IF EXISTS {};", ident(name))],
        Change::FillNulls {
            table,
            column,
            value,
            undo: false,
        } => {
            let v = spell_default(Dialect::Sqlite, "", value)
                .map_err(|e| format!("column {table}.{column}: {e}"))?;
            let c = ident(column);
            vec![format!(
                "UPDATE {} SET {c} = {v} WHERE {c} IS NULL;",
                ident(table)
            )]
        }
        Change::FillNulls { undo: true, .. } => Vec::new(),
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

/// SQLite's rebuild of `table` from `before` to `after`, rename pairs among `changes` followed.
fn rebuild(
    table: &str,
    before: &Table,
    after: &Table,
    changes: &[Change],
) -> Result<Vec<String>, String> {
    let temporary = format!("_yogaflow_new_{table}");
    let source = |column: &str| -> Option<String> {
        // A rename pair's new column is filled from the old one as it is made (and the old
        // from the new when undoing the contract).
        let renamed = changes.iter().find_map(|c| match c {
            Change::RenamePair {
                table: t,
                from,
                to,
                half,
                ..
            } if t == table => match half {
                Half::Expand if to == column => Some(from.clone()),
                Half::UndoContract if from == column => Some(to.clone()),
                _ => None,
            },
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
