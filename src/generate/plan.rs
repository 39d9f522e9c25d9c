//! The plan: the differences between what the migrations make and what the models make,
//! turned into [`Change`]s in an order the running app survives. Renames are declared
//! ([`Rename`]), never guessed.

use super::{Change, Half};
use crate::error::{Error, Result};
use crate::schema::logical::IDENTITY;
use crate::schema::{diff, ConstraintKey, Difference, ForeignKey, Schema, Side, Table};
use std::collections::BTreeSet;

/// Tables the backend's database has that are no part of the app's schema.
pub const IGNORED_TABLES: &[&str] = &["alembic_version"];

/// A column rename, declared with `--rename TABLE.OLD=NEW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// The table.
    pub table: String,
    /// The column's name in the migrations.
    pub from: String,
    /// Its name in the models.
    pub to: String,
}

impl std::str::FromStr for Rename {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Rename, String> {
        let parsed = s.split_once('.').and_then(|(t, rest)| {
            let (from, to) = rest.split_once('=')?;
            let ok = |w: &str| !w.is_empty() && !w.contains(['.', '=']);
            (ok(t) && ok(from) && ok(to)).then(|| Rename {
                table: t.into(),
                from: from.into(),
                to: to.into(),
            })
        });
        parsed.ok_or_else(|| {
            format!("'{s}' is not TABLE.OLD=NEW (e.g. users.full_name=display_name)")
        })
    }
}

/// The changes from `from` to `to`, in order, phase by phase. `from` and `to` are logical
/// schemas (`schema::logical`); `renames` are applied first.
pub fn plan(from: &Schema, to: &Schema, renames: &[Rename]) -> Result<Vec<Change>> {
    let (from, to) = (without_ignored(from), without_ignored(to));
    let mut changes = Vec::new();
    let mut renamed = from.clone();
    for r in renames {
        check_rename(&from, &to, r)?;
        changes.extend(rename_pair(&mut renamed, &to, r));
    }
    let differences = diff(&renamed, &to, false);
    refuse_guesses(&differences)?;
    for d in differences {
        changes.extend(change_for(&renamed, &to, d)?);
    }
    changes.extend(fill_nulls(&changes, &to));
    order(&mut changes, &renamed, &to);
    Ok(changes)
}

/// A declared rename as an expand/contract pair (and NOT NULL on the new column in the
/// contract step, if the models have it); `renamed` becomes the migrations' schema with the
/// new column in the old one's place, as the models define it.
fn rename_pair(renamed: &mut Schema, to: &Schema, r: &Rename) -> Vec<Change> {
    let t = renamed.tables.get_mut(&r.table).expect("checked");
    let old = t.columns.remove(&r.from).expect("checked");
    let new = to.tables[&r.table].columns[&r.to].clone();
    t.columns.insert(r.to.clone(), new.clone());
    for c in t.spelling.order.iter_mut().filter(|c| **c == r.from) {
        c.clone_from(&r.to);
    }
    let half = |half| Change::RenamePair {
        table: r.table.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        old: old.clone(),
        new: new.clone(),
        half,
    };
    let mut out = vec![half(Half::Expand), half(Half::Contract)];
    if !new.nullable {
        out.push(Change::SetNullable {
            table: r.table.clone(),
            column: r.to.clone(),
            nullable: false,
        });
    }
    out
}

/// For each column made NOT NULL that has a default, its NULLs filled with it first.
fn fill_nulls(changes: &[Change], to: &Schema) -> Vec<Change> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::SetNullable {
                table,
                column,
                nullable: false,
            } => {
                let value = to.tables[table].columns[column].default.clone()?;
                Some(Change::FillNulls {
                    table: table.clone(),
                    column: column.clone(),
                    value,
                    undo: false,
                })
            }
            _ => None,
        })
        .collect()
}

fn without_ignored(s: &Schema) -> Schema {
    let mut s = s.clone();
    s.tables
        .retain(|t, _| !IGNORED_TABLES.contains(&t.as_str()));
    s
}

fn check_rename(from: &Schema, to: &Schema, r: &Rename) -> Result<()> {
    let has = |s: &Schema, c: &str| {
        s.tables
            .get(&r.table)
            .is_some_and(|t| t.columns.contains_key(c))
    };
    let problem = if !from.tables.contains_key(&r.table) {
        Some(format!("the migrations have no table {}", r.table))
    } else if !has(from, &r.from) {
        Some(format!(
            "the migrations' {} has no column {}",
            r.table, r.from
        ))
    } else if !has(to, &r.to) {
        Some(format!("the models' {} has no column {}", r.table, r.to))
    } else if has(to, &r.from) || has(from, &r.to) {
        Some(format!(
            "{}.{} and {}.{} both exist on one side",
            r.table, r.from, r.table, r.to
        ))
    } else {
        named_by(from, &r.table, &r.from).map(|what| {
            format!(
                "{}.{} is named by {what}: a rename pair of a column a key, index, check or \
                 trigger names is not written by this tool; write it by hand \
                 (`yogaflow-migrate new NAME`)",
                r.table, r.from
            )
        })
    };
    match problem {
        Some(p) => Err(Error::config(format!(
            "--rename {}.{}={}: {p}",
            r.table, r.from, r.to
        ))),
        None => Ok(()),
    }
}

/// What names `column` of `table` besides the column itself (a key, an index, a check, a
/// foreign key, here or in another table), if anything does.
fn named_by(s: &Schema, table: &str, column: &str) -> Option<String> {
    let t = &s.tables[table];
    let has = |cols: &[String]| cols.iter().any(|c| c == column);
    if has(&t.primary_key) {
        return Some("the primary key".into());
    }
    if let Some(u) = t.uniques.iter().find(|u| has(u)) {
        return Some(format!("a unique constraint ({})", u.join(", ")));
    }
    if let Some((name, _)) = t.indexes.iter().find(|(_, i)| has(&i.columns)) {
        return Some(format!("index {name}"));
    }
    if let Some(k) = t.foreign_keys.iter().find(|k| has(&k.columns)) {
        return Some(format!("foreign key {table}{k}"));
    }
    if let Some(e) = t
        .checks
        .iter()
        .find(|e| super::replace_word(e, column, "\u{0}") != **e)
    {
        return Some(format!("check ({e})"));
    }
    if !t.triggers.is_empty() {
        return Some(format!(
            "trigger {}",
            t.triggers.iter().next().expect("not empty")
        ));
    }
    s.tables.iter().find_map(|(name, other)| {
        other
            .foreign_keys
            .iter()
            .find(|k| k.ref_table == table && has(&k.ref_columns))
            .map(|k| format!("foreign key {name}{k}"))
    })
}

/// A table where a column disappears and another appears is a rename or two changes: which,
/// only the developer knows.
fn refuse_guesses(differences: &[Difference]) -> Result<()> {
    let mut tables = BTreeSet::new();
    for d in differences {
        if let Difference::Column {
            table,
            side: Side::Missing,
            ..
        } = d
        {
            tables.insert(table.clone());
        }
    }
    for table in tables {
        let gone: Vec<&str> = differences
            .iter()
            .filter_map(|d| match d {
                Difference::Column {
                    table: t,
                    column,
                    side: Side::Missing,
                } if *t == table => Some(column.as_str()),
                _ => None,
            })
            .collect();
        let new: Vec<&str> = differences
            .iter()
            .filter_map(|d| match d {
                Difference::ExtraColumn {
                    table: t, column, ..
                } if *t == table => Some(column.as_str()),
                _ => None,
            })
            .collect();
        if new.is_empty() {
            continue;
        }
        let flags: Vec<String> = gone
            .iter()
            .flat_map(|o| {
                new.iter()
                    .map(|n| format!("--rename {table}.{o}={n}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        return Err(Error::config(format!(
            "table {table}: {} gone and {} new: a rename keeps the data, a drop and an add \
             lose it. For a rename, pass {}; otherwise drop the old column in one migration and \
             add the new one in the next",
            columns_are(&gone),
            columns_are(&new),
            flags.join(" or ")
        )));
    }
    Ok(())
}

/// "column a is" or "columns a, b are".
fn columns_are(names: &[&str]) -> String {
    match names {
        [one] => format!("column {one} is"),
        many => format!("columns {} are", many.join(", ")),
    }
}

/// The changes that make one difference (`want` is the migrations' side, `have` the
/// models').
fn change_for(want: &Schema, have: &Schema, d: Difference) -> Result<Vec<Change>> {
    match d {
        Difference::Table { .. }
        | Difference::LaterTable { .. }
        | Difference::Column { .. }
        | Difference::ExtraColumn { .. } => Ok(vec![table_or_column(want, have, d)?]),
        Difference::Type { .. }
        | Difference::Nullable { .. }
        | Difference::Default { .. }
        | Difference::PrimaryKey { .. } => Ok(vec![definition(d)?]),
        Difference::Index { .. } | Difference::IndexChanged { .. } => Ok(index(want, have, d)),
        Difference::Trigger { table, name, .. } => Err(Error::config(format!(
            "trigger {name} on {table}: triggers are not written by this tool; write this \
             migration by hand (`yogaflow-migrate new NAME`)"
        ))),
        _ => Ok(constraint(want, have, d)),
    }
}

fn table(s: &Schema, t: &str) -> Table {
    s.tables.get(t).cloned().unwrap_or_default()
}

/// A table or a column made or dropped.
fn table_or_column(want: &Schema, have: &Schema, d: Difference) -> Result<Change> {
    Ok(match d {
        Difference::Table { table, side } => match side {
            Side::Missing => Change::DropTable {
                def: self::table(want, &table),
                table,
            },
            Side::Extra => Change::CreateTable {
                def: self::table(have, &table),
                table,
            },
        },
        Difference::LaterTable { table } => Change::CreateTable {
            def: self::table(have, &table),
            table,
        },
        Difference::Column {
            table,
            column,
            side: Side::Missing,
        } => {
            let def = self::table(want, &table).columns[&column].clone();
            Change::DropColumn { table, column, def }
        }
        Difference::Column { table, column, .. }
        | Difference::ExtraColumn { table, column, .. } => {
            let def = self::table(have, &table).columns[&column].clone();
            if !def.nullable && def.default.is_none() {
                return Err(Error::config(format!(
                    "column {table}.{column} is new and NOT NULL without a server default: the \
                     rows {table} has already would have no value. Give it a server_default in \
                     the model, or add it nullable, fill it, and make it NOT NULL in the next \
                     migration"
                )));
            }
            Change::AddColumn { table, column, def }
        }
        other => unreachable!("not a table or column: {other}"),
    })
}

/// A column's type, nullability or default, or a table's primary key, changed.
fn definition(d: Difference) -> Result<Change> {
    let by_hand = |what: String| {
        Error::config(format!(
            "{what}; write this migration by hand (`yogaflow-migrate new NAME`)"
        ))
    };
    Ok(match d {
        Difference::Type {
            table,
            column,
            want,
            have,
        } => Change::AlterType {
            table,
            column,
            from: want,
            to: have,
        },
        Difference::Nullable {
            table,
            column,
            want,
        } => Change::SetNullable {
            table,
            column,
            nullable: !want,
        },
        Difference::Default {
            table,
            column,
            want,
            have,
        } => {
            if have.as_deref() == Some(IDENTITY) || want.as_deref() == Some(IDENTITY) {
                return Err(by_hand(format!(
                    "column {table}.{column}: becomes or stops being an identity column"
                )));
            }
            Change::SetDefault {
                table,
                column,
                from: want,
                to: have,
            }
        }
        Difference::PrimaryKey { table, want, have } => {
            return Err(by_hand(format!(
                "primary key of {table}: ({}) -> ({})",
                want.join(", "),
                have.join(", ")
            )))
        }
        other => unreachable!("not a column definition: {other}"),
    })
}

/// A unique constraint, foreign key or check added or dropped (a new ON DELETE rule is the
/// key dropped and added again under its name). Names come from each side's spelling.
fn constraint(want: &Schema, have: &Schema, d: Difference) -> Vec<Change> {
    let name = |s: &Schema, t: &str, k: ConstraintKey| self::table(s, t).spelling.name_of(t, &k);
    match d {
        Difference::Unique {
            table,
            columns,
            side,
        } => match side {
            Side::Missing => {
                let name = name(want, &table, ConstraintKey::Unique(&columns));
                vec![Change::DropUnique {
                    table,
                    columns,
                    name,
                }]
            }
            Side::Extra => {
                let name = name(have, &table, ConstraintKey::Unique(&columns));
                vec![Change::AddUnique {
                    table,
                    columns,
                    name,
                }]
            }
        },
        Difference::ForeignKey { table, key, side } => match side {
            Side::Missing => {
                let name = name(want, &table, ConstraintKey::ForeignKey(&key.columns));
                vec![Change::DropForeignKey { table, key, name }]
            }
            Side::Extra => {
                let name = name(have, &table, ConstraintKey::ForeignKey(&key.columns));
                vec![Change::AddForeignKey { table, key, name }]
            }
        },
        Difference::OnDelete {
            table,
            key,
            have: rule,
        } => {
            let name = name(want, &table, ConstraintKey::ForeignKey(&key.columns));
            let new = ForeignKey {
                on_delete: rule,
                ..key.clone()
            };
            vec![
                Change::DropForeignKey {
                    table: table.clone(),
                    key,
                    name: name.clone(),
                },
                Change::AddForeignKey {
                    table,
                    key: new,
                    name,
                },
            ]
        }
        Difference::Check { table, expr, side } => match side {
            Side::Missing => {
                let name = name(want, &table, ConstraintKey::Check(&expr));
                vec![Change::DropCheck { table, expr, name }]
            }
            Side::Extra => {
                let name = name(have, &table, ConstraintKey::Check(&expr));
                vec![Change::AddCheck { table, expr, name }]
            }
        },
        other => unreachable!("not a constraint: {other}"),
    }
}

/// An index added, dropped, or changed (dropped and made again under its name).
fn index(want: &Schema, have: &Schema, d: Difference) -> Vec<Change> {
    match d {
        Difference::Index {
            table,
            name,
            side: Side::Missing,
        } => {
            let index = self::table(want, &table).indexes[&name].clone();
            vec![Change::DropIndex { table, name, index }]
        }
        Difference::Index { table, name, .. } => {
            let index = self::table(have, &table).indexes[&name].clone();
            vec![Change::AddIndex { table, name, index }]
        }
        Difference::IndexChanged {
            table,
            name,
            want,
            have,
        } => vec![
            Change::DropIndex {
                table: table.clone(),
                name: name.clone(),
                index: want,
            },
            Change::AddIndex {
                table,
                name,
                index: have,
            },
        ],
        other => unreachable!("not an index: {other}"),
    }
}

/// Sorts `changes` by phase and rank; new tables so that a table comes after those it
/// refers to, dropped ones the other way round.
fn order(changes: &mut [Change], from: &Schema, to: &Schema) {
    let depth = |s: &Schema, t: &str| {
        let mut d = 0;
        let mut at = vec![t.to_string()];
        while d < s.tables.len() {
            let next: Vec<String> = at
                .iter()
                .filter_map(|t| s.tables.get(t))
                .flat_map(|t| t.foreign_keys.iter().map(|k| k.ref_table.clone()))
                .filter(|r| r != t)
                .collect();
            if next.is_empty() {
                break;
            }
            at = next;
            d += 1;
        }
        d
    };
    changes.sort_by_key(|c| {
        let within = match c {
            Change::CreateTable { table, .. } => depth(to, table) as i64,
            Change::DropTable { table, .. } => -(depth(from, table) as i64),
            _ => 0,
        };
        (c.stage(), c.phase(), c.rank(), within)
    });
}
