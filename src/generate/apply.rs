//! Changes made to the schema model: what a migration leaves is its predecessor's schema with
//! its changes applied ([`apply`]), phase by phase ([`states`]). The writers read whole tables
//! from here (a SQLite rebuild writes the table as the next version has it).

use super::{Change, Phase};
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
    if let Change::RenameColumn { table, from, to } = change {
        rename_column(s, table, from, to);
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
        Change::CreateTable { .. } | Change::DropTable { .. } | Change::RenameColumn { .. } => {}
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

/// The migrations a plan makes: the main one (in a transaction) if any change goes there,
/// the online one if any goes there or is validated there.
pub fn phases(changes: &[Change]) -> Vec<Phase> {
    let main = changes.iter().any(|c| c.phase() == Phase::Main);
    let online = changes
        .iter()
        .any(|c| c.phase() == Phase::Online || c.validates_later());
    [(Phase::Main, main), (Phase::Online, online)]
        .into_iter()
        .filter_map(|(p, has)| has.then_some(p))
        .collect()
}

/// The schema after each phase of `changes`, starting from `from`: [after main, after online].
pub fn states(from: &Schema, changes: &[Change]) -> [Schema; 2] {
    let mut main = from.clone();
    for c in changes.iter().filter(|c| c.phase() == Phase::Main) {
        apply(&mut main, c);
    }
    let mut online = main.clone();
    for c in changes.iter().filter(|c| c.phase() == Phase::Online) {
        apply(&mut online, c);
    }
    [main, online]
}

fn set(t: &mut Table, column: &str, f: impl FnOnce(&mut Column)) {
    if let Some(c) = t.columns.get_mut(column) {
        f(c);
    }
}

/// Renames a column everywhere it is named: its table's keys, indexes and checks, and the
/// foreign keys of other tables that refer to it (as both dialects do).
fn rename_column(s: &mut Schema, table: &str, from: &str, to: &str) {
    let swap = |c: &mut String| {
        if c == from {
            *c = to.to_string();
        }
    };
    for (name, t) in s.tables.iter_mut() {
        let keys = std::mem::take(&mut t.foreign_keys);
        t.foreign_keys = keys
            .into_iter()
            .map(|mut k| {
                if k.ref_table == table {
                    k.ref_columns.iter_mut().for_each(swap);
                }
                if name == table {
                    k.columns.iter_mut().for_each(swap);
                }
                k
            })
            .collect();
        if name != table {
            continue;
        }
        if let Some(c) = t.columns.remove(from) {
            t.columns.insert(to.to_string(), c);
        }
        t.spelling.order.iter_mut().for_each(swap);
        t.primary_key.iter_mut().for_each(swap);
        t.uniques = std::mem::take(&mut t.uniques)
            .into_iter()
            .map(|mut u| {
                u.iter_mut().for_each(swap);
                u
            })
            .collect();
        for i in t.indexes.values_mut() {
            i.columns.iter_mut().for_each(swap);
        }
        t.checks = std::mem::take(&mut t.checks)
            .into_iter()
            .map(|e| replace_word(&e, from, to))
            .collect();
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
