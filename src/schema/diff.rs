//! What differs between two schemas, as values: one [`Difference`] per object, its message
//! from `Display` (the words `verify`, `baseline` and the drift warning print), and what a
//! difference means decided on the variant, never on its wording ([`Difference::repairable`]).

use super::{default_meaning, ForeignKey, Index, Schema, Table};
use std::fmt;

/// Whether an object is wanted and absent, or present and not wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The expected schema has it; the actual one does not.
    Missing,
    /// The actual schema has it; the expected one does not.
    Extra,
}

/// One difference between an expected schema and an actual one, naming the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A whole table missing or extra.
    Table {
        /// The table.
        table: String,
        /// Missing or extra.
        side: Side,
    },
    /// A YogaFlow table of a later version than the one compared with: the database is not at
    /// that version, whatever else matches.
    LaterTable {
        /// The table.
        table: String,
    },
    /// A column missing or extra.
    Column {
        /// Its table.
        table: String,
        /// The column.
        column: String,
        /// Missing or extra.
        side: Side,
    },
    /// A column the actual table has beyond the expected one (the app's own).
    ExtraColumn {
        /// Its table.
        table: String,
        /// The column.
        column: String,
        /// Whether an insert that does not name it still works (it allows NULL or has a
        /// default): then the contract's app is not hindered by it.
        optional: bool,
    },
    /// A column's type as the catalog spells it.
    Type {
        /// Its table.
        table: String,
        /// The column.
        column: String,
        /// The expected type.
        want: String,
        /// The actual type.
        have: String,
    },
    /// A column's nullability.
    Nullable {
        /// Its table.
        table: String,
        /// The column.
        column: String,
        /// Whether the expected column allows NULL (the actual one does the opposite).
        want: bool,
    },
    /// A column's default, by meaning.
    Default {
        /// Its table.
        table: String,
        /// The column.
        column: String,
        /// The expected default expression.
        want: Option<String>,
        /// The actual default expression.
        have: Option<String>,
    },
    /// The primary key's columns.
    PrimaryKey {
        /// Its table.
        table: String,
        /// The expected key columns.
        want: Vec<String>,
        /// The actual key columns.
        have: Vec<String>,
    },
    /// A unique constraint, as its column list.
    Unique {
        /// Its table.
        table: String,
        /// The constrained columns.
        columns: Vec<String>,
        /// Missing or extra.
        side: Side,
    },
    /// A foreign key.
    ForeignKey {
        /// Its table.
        table: String,
        /// The key.
        key: ForeignKey,
        /// Missing or extra.
        side: Side,
    },
    /// A foreign key that both have, with another ON DELETE rule.
    OnDelete {
        /// Its table.
        table: String,
        /// The key as expected (its rule the wanted one).
        key: ForeignKey,
        /// The rule the actual key has.
        have: String,
    },
    /// A CHECK, by meaning.
    Check {
        /// Its table.
        table: String,
        /// The normalised expression.
        expr: String,
        /// Missing or extra.
        side: Side,
    },
    /// An index (by name) missing or extra.
    Index {
        /// Its table.
        table: String,
        /// The index.
        name: String,
        /// Missing or extra.
        side: Side,
    },
    /// A trigger (by name) missing or extra.
    Trigger {
        /// Its table.
        table: String,
        /// The trigger.
        name: String,
        /// Missing or extra.
        side: Side,
    },
    /// An index (by name) on other columns, or unique where it was not.
    IndexChanged {
        /// Its table.
        table: String,
        /// The index.
        name: String,
        /// The expected index.
        want: Index,
        /// The actual index.
        have: Index,
    },
}

fn is_varchar(t: &str) -> bool {
    t.starts_with("character varying(") || t.starts_with("varchar(")
}

/// `varchar` without a length, as either catalog spells it.
fn is_unbounded_varchar(t: &str) -> bool {
    t == "character varying" || t == "varchar"
}

impl Difference {
    /// Whether this is the app's own addition that the contract's app works with: an extra
    /// column it need not name (NULL allowed or a default), an extra index. Tolerated and
    /// listed as not managed by `baseline` and `verify`, never repaired away.
    pub fn tolerated(&self) -> bool {
        matches!(
            self,
            Difference::ExtraColumn { optional: true, .. }
                | Difference::Index {
                    side: Side::Extra,
                    ..
                }
                | Difference::Trigger {
                    side: Side::Extra,
                    ..
                }
        )
    }

    /// Whether this keeps a database from being read as a source at the version compared
    /// with (`export`, `copy --from`): what its data needs is missing (a table, a column, a
    /// table of a later version), or a column's type is one whose values `readable` says
    /// cannot be read. Defaults, checks, keys, indexes, their names, ON DELETE rules and
    /// lengths never block reading: values are checked row by row as they are read.
    pub fn blocks_reading(&self, readable: impl Fn(&str) -> bool) -> bool {
        match self {
            Difference::Table { side, .. } | Difference::Column { side, .. } => {
                *side == Side::Missing
            }
            Difference::LaterTable { .. } => true,
            Difference::Type { have, .. } => !readable(have),
            _ => false,
        }
    }

    /// The flag that names what this repair would otherwise have to guess, if it needs one: a
    /// `timestamp` (no zone) where the contract has `timestamptz` needs the zone its values are
    /// in.
    pub fn needs_assumption(&self) -> Option<&'static str> {
        match self {
            Difference::Type { want, have, .. }
                if want == "timestamp with time zone" && have == "timestamp without time zone" =>
            {
                Some("--assume-time-zone ZONE")
            }
            _ => None,
        }
    }

    /// Whether `baseline --repair` can make this as the contract wants without losing or
    /// guessing anything: something missing that the migrations define (index, check, foreign
    /// key, unique constraint, default, NOT NULL), `json` where the contract has `jsonb`,
    /// another `varchar` length. Not: a missing table or column, anything extra, another
    /// primary key, type, default or index definition.
    pub fn repairable(&self) -> bool {
        match self {
            Difference::Type { want, have, .. } => {
                // To a bounded varchar only where every value fits: the repair checks the rows.
                (want == "jsonb" && have == "json")
                    || (is_varchar(want) && (is_varchar(have) || is_unbounded_varchar(have)))
            }
            // SQLAlchemy's default when `ondelete` is not given: the rule changes what a
            // delete does later, never a row there is now.
            Difference::OnDelete { have, .. } => have == "NO ACTION",
            Difference::Default { want, have, .. } => match (want, have) {
                (_, None) => true,
                // The json default of a json column that becomes jsonb: set again with it.
                (Some(want), Some(have)) => {
                    want.ends_with("::jsonb") && want.strip_suffix('b') == Some(have.as_str())
                }
                (None, Some(_)) => false,
            },
            Difference::Nullable { want, .. } => !want,
            // A trigger is code the migrations carry: made by them, never by a repair.
            Difference::Trigger { .. } => false,
            Difference::Unique { side, .. }
            | Difference::ForeignKey { side, .. }
            | Difference::Check { side, .. }
            | Difference::Index { side, .. } => *side == Side::Missing,
            Difference::Table { .. }
            | Difference::LaterTable { .. }
            | Difference::Column { .. }
            | Difference::ExtraColumn { .. }
            | Difference::PrimaryKey { .. }
            | Difference::IndexChanged { .. } => false,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Missing => "missing",
            Side::Extra => "extra",
        })
    }
}

/// What an extra column's message adds when the app's inserts would have to name it.
fn needs_naming(optional: bool) -> &'static str {
    if optional {
        ""
    } else {
        ", NOT NULL without a default (the app's inserts, which do not name it, would fail)"
    }
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

fn index_shape(i: &Index) -> String {
    format!(
        "{}({})",
        if i.unique { "unique " } else { "" },
        i.columns.join(", ")
    )
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = |b: bool| if b { "NULL" } else { "NOT NULL" };
        match self {
            Difference::Table { table, side } => write!(f, "table {table}: {side}"),
            Difference::LaterTable { table } => {
                write!(f, "table {table}: belongs to a later version")
            }
            Difference::Column {
                table,
                column,
                side,
            } => write!(f, "column {table}.{column}: {side}"),
            Difference::ExtraColumn {
                table,
                column,
                optional,
            } => write!(
                f,
                "column {table}.{column}: extra{}",
                needs_naming(*optional)
            ),
            Difference::Type {
                table,
                column,
                want,
                have,
            } => write!(
                f,
                "column {table}.{column}: type changed from {want} to {have}"
            ),
            Difference::Nullable {
                table,
                column,
                want,
            } => write!(
                f,
                "column {table}.{column}: changed from {} to {}",
                null(*want),
                null(!want)
            ),
            Difference::Default {
                table,
                column,
                want,
                have,
            } => write!(
                f,
                "column {table}.{column}: default changed from {} to {}",
                show(want),
                show(have)
            ),
            Difference::PrimaryKey { table, want, have } => write!(
                f,
                "primary key of {table}: changed from ({}) to ({})",
                want.join(", "),
                have.join(", ")
            ),
            Difference::Unique {
                table,
                columns,
                side,
            } => write!(
                f,
                "unique constraint {table}({}): {side}",
                columns.join(", ")
            ),
            Difference::ForeignKey { table, key, side } => {
                write!(f, "foreign key {table}{key}: {side}")
            }
            Difference::OnDelete { table, key, have } => write!(
                f,
                "foreign key {table}({}) -> {}({}): ON DELETE changed from {} to {have}",
                key.columns.join(", "),
                key.ref_table,
                key.ref_columns.join(", "),
                key.on_delete
            ),
            Difference::Check { table, expr, side } => {
                write!(f, "check on {table} ({expr}): {side}")
            }
            Difference::Index { table, name, side } => write!(f, "index {name} on {table}: {side}"),
            Difference::Trigger { table, name, side } => {
                write!(f, "trigger {name} on {table}: {side}")
            }
            Difference::IndexChanged {
                table,
                name,
                want,
                have,
            } => write!(
                f,
                "index {name} on {table}: changed from {} to {}",
                index_shape(want),
                index_shape(have)
            ),
        }
    }
}

impl serde::Serialize for Difference {
    /// As its message: `verify --json` lists differences as strings.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Every difference between `expected` and `actual`, in a stable order (table by table).
/// Tables that only `actual` has are reported unless `ignore_extra_tables`.
pub fn diff(expected: &Schema, actual: &Schema, ignore_extra_tables: bool) -> Vec<Difference> {
    let mut out = Vec::new();
    for (name, want) in &expected.tables {
        match actual.tables.get(name) {
            None => out.push(Difference::Table {
                table: name.clone(),
                side: Side::Missing,
            }),
            Some(have) => diff_table(name, want, have, &mut out),
        }
    }
    if !ignore_extra_tables {
        for name in actual
            .tables
            .keys()
            .filter(|t| !expected.tables.contains_key(*t))
        {
            out.push(Difference::Table {
                table: name.clone(),
                side: Side::Extra,
            });
        }
    }
    out
}

fn diff_table(t: &str, want: &Table, have: &Table, out: &mut Vec<Difference>) {
    diff_columns(t, want, have, out);
    if want.primary_key != have.primary_key {
        out.push(Difference::PrimaryKey {
            table: t.to_string(),
            want: want.primary_key.clone(),
            have: have.primary_key.clone(),
        });
    }
    let table = || t.to_string();
    for (side, a, b) in [(Side::Missing, want, have), (Side::Extra, have, want)] {
        out.extend(
            a.uniques
                .difference(&b.uniques)
                .map(|u| Difference::Unique {
                    table: table(),
                    columns: u.clone(),
                    side,
                }),
        );
    }
    diff_foreign_keys(t, want, have, out);
    for (side, a, b) in [(Side::Missing, want, have), (Side::Extra, have, want)] {
        out.extend(a.checks.difference(&b.checks).map(|c| Difference::Check {
            table: table(),
            expr: c.clone(),
            side,
        }));
    }
    diff_indexes(t, want, have, out);
    for (side, a, b) in [(Side::Missing, want, have), (Side::Extra, have, want)] {
        out.extend(
            a.triggers
                .difference(&b.triggers)
                .map(|n| Difference::Trigger {
                    table: table(),
                    name: n.clone(),
                    side,
                }),
        );
    }
}

/// Foreign keys missing or extra; a pair that differs only in its ON DELETE rule is one
/// [`Difference::OnDelete`].
fn diff_foreign_keys(t: &str, want: &Table, have: &Table, out: &mut Vec<Difference>) {
    let missing: Vec<&ForeignKey> = want.foreign_keys.difference(&have.foreign_keys).collect();
    let extra: Vec<&ForeignKey> = have.foreign_keys.difference(&want.foreign_keys).collect();
    let same_key = |a: &ForeignKey, b: &ForeignKey| {
        a.columns == b.columns && a.ref_table == b.ref_table && a.ref_columns == b.ref_columns
    };
    for k in &missing {
        let difference = match extra.iter().find(|h| same_key(k, h)) {
            Some(h) => Difference::OnDelete {
                table: t.to_string(),
                key: (*k).clone(),
                have: h.on_delete.clone(),
            },
            None => Difference::ForeignKey {
                table: t.to_string(),
                key: (*k).clone(),
                side: Side::Missing,
            },
        };
        out.push(difference);
    }
    for h in extra
        .iter()
        .filter(|h| !missing.iter().any(|k| same_key(k, h)))
    {
        out.push(Difference::ForeignKey {
            table: t.to_string(),
            key: (*h).clone(),
            side: Side::Extra,
        });
    }
}

fn diff_columns(t: &str, want: &Table, have: &Table, out: &mut Vec<Difference>) {
    let (table, col) = (|| t.to_string(), |c: &String| c.clone());
    for (name, w) in &want.columns {
        let Some(h) = have.columns.get(name) else {
            out.push(Difference::Column {
                table: table(),
                column: col(name),
                side: Side::Missing,
            });
            continue;
        };
        if w.data_type != h.data_type {
            out.push(Difference::Type {
                table: table(),
                column: col(name),
                want: w.data_type.clone(),
                have: h.data_type.clone(),
            });
        }
        if w.nullable != h.nullable {
            out.push(Difference::Nullable {
                table: table(),
                column: col(name),
                want: w.nullable,
            });
        }
        let meaning = |d: &Option<String>| d.as_deref().map(default_meaning);
        if meaning(&w.default) != meaning(&h.default) {
            out.push(Difference::Default {
                table: table(),
                column: col(name),
                want: w.default.clone(),
                have: h.default.clone(),
            });
        }
    }
    for name in have
        .columns
        .keys()
        .filter(|c| !want.columns.contains_key(*c))
    {
        let column = &have.columns[name];
        out.push(Difference::ExtraColumn {
            table: table(),
            column: col(name),
            optional: column.nullable || column.default.is_some(),
        });
    }
}

fn diff_indexes(t: &str, want: &Table, have: &Table, out: &mut Vec<Difference>) {
    for (name, w) in &want.indexes {
        match have.indexes.get(name) {
            None => out.push(Difference::Index {
                table: t.to_string(),
                name: name.clone(),
                side: Side::Missing,
            }),
            Some(h) if h != w => out.push(Difference::IndexChanged {
                table: t.to_string(),
                name: name.clone(),
                want: w.clone(),
                have: h.clone(),
            }),
            Some(_) => {}
        }
    }
    for name in have
        .indexes
        .keys()
        .filter(|i| !want.indexes.contains_key(*i))
    {
        out.push(Difference::Index {
            table: t.to_string(),
            name: name.clone(),
            side: Side::Extra,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn what_a_repair_covers() {
        let (t, c) = (s("poses"), s("c"));
        let fk = ForeignKey {
            columns: vec![s("user_id")],
            ref_table: s("users"),
            ref_columns: vec![s("id")],
            on_delete: s("CASCADE"),
        };
        let ix = |cols: &[&str]| Index {
            columns: cols.iter().map(|c| s(c)).collect(),
            unique: false,
        };
        let ty = |want: &str, have: &str| Difference::Type {
            table: t.clone(),
            column: c.clone(),
            want: s(want),
            have: s(have),
        };
        let default = |want: &str, have: Option<&str>| Difference::Default {
            table: t.clone(),
            column: c.clone(),
            want: Some(s(want)),
            have: have.map(s),
        };
        let side = |side| Difference::Index {
            table: t.clone(),
            name: s("ix_poses_difficulty"),
            side,
        };
        for (difference, want) in [
            (side(Side::Missing), true),
            (
                Difference::Check {
                    table: t.clone(),
                    expr: s("rating <= 5"),
                    side: Side::Missing,
                },
                true,
            ),
            (
                Difference::ForeignKey {
                    table: t.clone(),
                    key: fk.clone(),
                    side: Side::Missing,
                },
                true,
            ),
            (
                Difference::Unique {
                    table: t.clone(),
                    columns: vec![s("name")],
                    side: Side::Missing,
                },
                true,
            ),
            (ty("jsonb", "json"), true),
            (ty("character varying(255)", "character varying(300)"), true),
            (
                Difference::Nullable {
                    table: t.clone(),
                    column: c.clone(),
                    want: false,
                },
                true,
            ),
            (default("true", None), true),
            (default("true", Some("false")), false),
            (default("'{}'::jsonb", Some("'{}'::json")), true),
            (
                Difference::Column {
                    table: t.clone(),
                    column: c.clone(),
                    side: Side::Extra,
                },
                false,
            ),
            (
                Difference::Column {
                    table: t.clone(),
                    column: c.clone(),
                    side: Side::Missing,
                },
                false,
            ),
            (ty("integer", "bigint"), false),
            (
                Difference::Nullable {
                    table: t.clone(),
                    column: c.clone(),
                    want: true,
                },
                false,
            ),
            (
                Difference::Table {
                    table: s("tags"),
                    side: Side::Missing,
                },
                false,
            ),
            (Difference::LaterTable { table: s("tags") }, false),
            (
                Difference::PrimaryKey {
                    table: t.clone(),
                    want: vec![s("id")],
                    have: vec![s("name")],
                },
                false,
            ),
            (
                Difference::Check {
                    table: t.clone(),
                    expr: s("difficulty <> ''"),
                    side: Side::Extra,
                },
                false,
            ),
            (
                Difference::ForeignKey {
                    table: t.clone(),
                    key: fk,
                    side: Side::Extra,
                },
                false,
            ),
            (
                Difference::IndexChanged {
                    table: t.clone(),
                    name: s("ix"),
                    want: ix(&["a"]),
                    have: ix(&["b"]),
                },
                false,
            ),
            (side(Side::Extra), false),
        ] {
            assert_eq!(difference.repairable(), want, "{difference}");
        }
    }

    #[test]
    fn the_apps_own_additions_are_tolerated_and_on_delete_is_one_difference() {
        let col = |optional| Difference::ExtraColumn {
            table: s("users"),
            column: s("nickname"),
            optional,
        };
        assert!(col(true).tolerated() && !col(true).repairable());
        let naive = Difference::Type {
            table: s("users"),
            column: s("created_at"),
            want: s("timestamp with time zone"),
            have: s("timestamp without time zone"),
        };
        assert_eq!(naive.needs_assumption(), Some("--assume-time-zone ZONE"));
        assert!(!naive.repairable() && col(true).needs_assumption().is_none());
        assert!(!col(false).tolerated());
        assert_eq!(
            col(false).to_string(),
            "column users.nickname: extra, NOT NULL without a default (the app's inserts, \
             which do not name it, would fail)"
        );
        let fk = |on_delete: &str| ForeignKey {
            columns: vec![s("user_id")],
            ref_table: s("users"),
            ref_columns: vec![s("id")],
            on_delete: s(on_delete),
        };
        let mut want = Schema::default();
        let mut t = Table::default();
        t.foreign_keys.insert(fk("CASCADE"));
        want.tables.insert(s("sequences"), t.clone());
        let mut have = want.clone();
        let h = have.tables.get_mut("sequences").unwrap();
        h.foreign_keys = [fk("NO ACTION")].into_iter().collect();
        let d = diff(&want, &have, true);
        assert_eq!(
            d.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            vec!["foreign key sequences(user_id) -> users(id): ON DELETE changed from CASCADE to NO ACTION"]
        );
        assert!(d[0].repairable());
        have.tables.get_mut("sequences").unwrap().foreign_keys =
            [fk("RESTRICT")].into_iter().collect();
        assert!(!diff(&want, &have, true)[0].repairable());
    }

    #[test]
    fn messages_name_the_object() {
        let n = Difference::Nullable {
            table: s("poses"),
            column: s("created_at"),
            want: false,
        };
        assert_eq!(
            n.to_string(),
            "column poses.created_at: changed from NOT NULL to NULL"
        );
        let ix = |unique| Index {
            columns: vec![s("difficulty")],
            unique,
        };
        let changed = Difference::IndexChanged {
            table: s("poses"),
            name: s("ix_d"),
            want: ix(false),
            have: ix(true),
        };
        assert_eq!(
            changed.to_string(),
            "index ix_d on poses: changed from (difficulty) to unique (difficulty)"
        );
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            "\"column poses.created_at: changed from NOT NULL to NULL\""
        );
    }

    #[test]
    fn diff_names_every_object() {
        let mut want = Schema::default();
        let mut t = Table::default();
        t.columns.insert(
            "id".into(),
            Column {
                data_type: "integer".into(),
                nullable: false,
                default: None,
            },
        );
        t.columns.insert(
            "m".into(),
            Column {
                data_type: "jsonb".into(),
                nullable: false,
                default: Some("'{}'".into()),
            },
        );
        t.indexes.insert(
            "ix_t_m".into(),
            Index {
                columns: vec!["m".into()],
                unique: false,
            },
        );
        t.foreign_keys.insert(ForeignKey {
            columns: vec!["id".into()],
            ref_table: "u".into(),
            ref_columns: vec!["id".into()],
            on_delete: "CASCADE".into(),
        });
        want.tables.insert("t".into(), t.clone());
        let mut have = want.clone();
        let h = have.tables.get_mut("t").unwrap();
        h.indexes.clear();
        h.foreign_keys.clear();
        h.columns.get_mut("m").unwrap().default = Some("'[]'".into());
        h.columns.insert(
            "extra".into(),
            Column {
                data_type: "text".into(),
                nullable: true,
                default: None,
            },
        );
        have.tables
            .insert("alembic_version".into(), Table::default());
        let d: Vec<String> = diff(&want, &have, false)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            d,
            vec![
                "column t.m: default changed from '{}' to '[]'",
                "column t.extra: extra",
                "foreign key t(id) -> u(id) ON DELETE CASCADE: missing",
                "index ix_t_m on t: missing",
                "table alembic_version: extra",
            ]
        );
        assert_eq!(diff(&want, &have, true).len(), 4);
        assert!(diff(&want, &want, false).is_empty());
    }
}
