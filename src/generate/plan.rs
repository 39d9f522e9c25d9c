//! The plan: the differences between what the migrations make and what the models make,
//! turned into [`Change`]s in an order the running app survives. Renames are declared
//! ([`Rename`]), never guessed.

use super::apply::apply;
use super::Change;
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
        let c = Change::RenameColumn {
            table: r.table.clone(),
            from: r.from.clone(),
            to: r.to.clone(),
        };
        apply(&mut renamed, &c);
        changes.push(c);
    }
    let differences = diff(&renamed, &to, false);
    refuse_guesses(&differences)?;
    for d in differences {
        changes.extend(change_for(&renamed, &to, d)?);
    }
    order(&mut changes, &renamed, &to);
    Ok(changes)
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
        None
    };
    match problem {
        Some(p) => Err(Error::config(format!(
            "--rename {}.{}={}: {p}",
            r.table, r.from, r.to
        ))),
        None => Ok(()),
    }
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
        (c.phase(), c.rank(), within)
    });
}
