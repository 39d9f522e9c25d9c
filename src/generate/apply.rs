//! Changes made to the schema model: what a migration leaves is its predecessor's schema with
//! its changes applied ([`apply`]), phase by phase ([`states`]). The writers read whole tables
//! from here (a SQLite rebuild writes the table as the next version has it).

use super::{Change, Half, Phase, Slot, SLOTS};
use crate::schema::{Column, ConstraintKey, Schema, Table};

/// `change` made to the model `s` (the schema a migration leaves is its predecessor's with
/// its changes applied).
pub fn apply(s: &mut Schema, change: &Change) {
    if let Change::CreateTable { table, def } = change {
        s.tables.insert(table.clone(), def.clone());
        return;
    }
    if let Change::DropTable { table, .. } = change {
        s.tables.remove(table);
        return;
    }
    if let Change::RenamePair { .. } = change {
        pair(s, change);
        return;
    }
    let Some(t) = s.tables.get_mut(change.table()) else {
        return;
    };
    match change {
        Change::AddColumn { column, def, .. } => {
            t.columns.insert(column.clone(), def.clone());
            t.spelling.order.push(column.clone());
        }
        Change::DropColumn { column, .. } => drop_column(t, column),
        Change::AlterType { column, to, .. } => set(t, column, |c| c.data_type = to.clone()),
        Change::SetDefault { column, to, .. } => set(t, column, |c| c.default = to.clone()),
        Change::SetNullable {
            column, nullable, ..
        } => set(t, column, |c| c.nullable = *nullable),
        Change::AddCheck { expr, name, .. } => {
            t.checks.insert(expr.clone());
            t.spelling.name(ConstraintKey::Check(expr), name);
        }
        Change::DropCheck { expr, .. } => {
            t.checks.remove(expr);
        }
        Change::AddUnique { columns, name, .. } => {
            t.uniques.insert(columns.clone());
            t.spelling.name(ConstraintKey::Unique(columns), name);
        }
        Change::DropUnique { columns, .. } => {
            t.uniques.remove(columns);
        }
        Change::AddForeignKey { key, name, .. } => {
            t.foreign_keys.insert(key.clone());
            t.spelling
                .name(ConstraintKey::ForeignKey(&key.columns), name);
        }
        Change::DropForeignKey { key, .. } => {
            t.foreign_keys.remove(key);
        }
        Change::AddIndex { name, index, .. } => {
            t.indexes.insert(name.clone(), index.clone());
        }
        Change::DropIndex { name, .. } => {
            t.indexes.remove(name);
        }
        Change::CreateTable { .. }
        | Change::DropTable { .. }
        | Change::RenamePair { .. }
        | Change::FillNulls { .. } => {}
    }
}

/// Drops a column and, as both dialects do, the indexes and constraints that name it.
fn drop_column(t: &mut Table, column: &str) {
    t.columns.remove(column);
    t.spelling.order.retain(|c| c != column);
    let names = |cols: &[String]| cols.iter().any(|c| c == column);
    t.indexes.retain(|_, i| !names(&i.columns));
    t.uniques.retain(|u| !names(u));
    t.foreign_keys.retain(|k| !names(&k.columns));
    t.checks.retain(|e| replace_word(e, column, "\u{0}") == *e);
}

/// The migrations a plan makes, in order: a slot has one if a change goes there, or (an
/// online slot) if a change of its stage's transaction has work to follow up there.
pub fn slots(changes: &[Change]) -> Vec<Slot> {
    SLOTS
        .into_iter()
        .filter(|slot| {
            changes.iter().any(|c| {
                c.slot() == *slot
                    || (slot.1 == Phase::Online
                        && c.follows_up()
                        && c.slot() == (slot.0, Phase::Main))
            })
        })
        .collect()
}

/// The schema after each slot of `changes` (all four, in [`SLOTS`] order), starting from
/// `from`.
pub fn states(from: &Schema, changes: &[Change]) -> [Schema; 4] {
    let mut at = from.clone();
    SLOTS.map(|slot| {
        for c in changes.iter().filter(|c| c.slot() == slot) {
            apply(&mut at, c);
        }
        at.clone()
    })
}

fn set(t: &mut Table, column: &str, f: impl FnOnce(&mut Column)) {
    if let Some(c) = t.columns.get_mut(column) {
        f(c);
    }
}

/// The names of the two triggers that keep `from` and `to` of `table` equal (on insert, on
/// update), the same in both dialects.
pub fn sync_triggers(table: &str, from: &str, to: &str) -> [String; 2] {
    // With the table: SQLite's trigger names are the database's, not the table's.
    let base = format!("yogaflow_sync_{table}_{from}_{to}");
    ["insert", "update"].map(|on| crate::schema::truncate_name(&format!("{base}_{on}")))
}

/// A rename pair's column as it is added, in either dialect: nullable (the backfill fills it)
/// and without its default until the contract step (with one, ADD COLUMN would fill every row
/// with it, and the backfill and triggers would take it for a value written).
pub fn bare(c: &Column) -> Column {
    Column {
        nullable: true,
        default: None,
        ..c.clone()
    }
}

/// A rename pair's half made to the model.
fn pair(s: &mut Schema, change: &Change) {
    let Change::RenamePair {
        table,
        from,
        to,
        old,
        new,
        half,
    } = change
    else {
        return;
    };
    let Some(t) = s.tables.get_mut(table) else {
        return;
    };
    let triggers = sync_triggers(table, from, to);
    let (add, column, drop) = match half {
        Half::Expand => (true, Some((to, bare(new))), None),
        Half::UndoContract => (true, Some((from, old.clone())), None),
        Half::Contract => (false, None, Some(from)),
        Half::UndoExpand => (false, None, Some(to)),
    };
    // The new column's default comes with the contract step (and goes with its undo).
    if let Some(c) = t.columns.get_mut(to) {
        match half {
            Half::Contract => c.default.clone_from(&new.default),
            Half::UndoContract => c.default = None,
            _ => {}
        }
    }
    if add {
        t.triggers.extend(triggers);
    } else {
        for n in &triggers {
            t.triggers.remove(n);
        }
    }
    if let Some((name, def)) = column {
        t.columns.insert(name.clone(), def);
        t.spelling.order.push(name.clone());
    }
    if let Some(name) = drop {
        drop_column(t, name);
    }
}

/// `expr` with the identifier `from` (outside quotes) replaced by `to`.
pub fn replace_word(expr: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(if word == from { to } else { word });
        word.clear();
    };
    for ch in expr.chars() {
        if let Some(q) = quote {
            out.push(ch);
            if ch == q {
                quote = None;
            }
            continue;
        }
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        flush(&mut word, &mut out);
        if ch == '\'' {
            quote = Some(ch);
        }
        out.push(ch);
    }
    flush(&mut word, &mut out);
    out
}
