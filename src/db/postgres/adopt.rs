//! Adoption on PostgreSQL: the catalog of a database made before this tool read against the
//! migrations (built on a scratch schema inside the baseline's transaction), planned as a list
//! of [`Change`]s (SERIAL ids to identity columns; with `--repair`, each column, constraint or
//! index brought to the contract where nothing is lost; constraints and indexes renamed to the
//! migrations' names), each checked against the rows it would reject, then made, or only
//! logged for a plan. Whether to adopt, and at which version, is decided above the seam
//! (`crate::adopt`); this module only carries a decided [`Adoption`] out.

use super::catalog::{self, first_row, ColumnDef, Named};
use super::error::{describe, give_way_or, StepError};
use crate::db::{quote_ident as q, refuse_unrepaired, AdoptMode, Adoption};
use crate::error::{Error, Kind};
use crate::migrations::{self, APP_TABLES};
use crate::schema::Schema;
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

type Step<T> = std::result::Result<T, StepError>;

/// One change an adoption makes to the live tables, decided before it is made.
enum Change {
    /// Only logged (a name that cannot be taken).
    Note(String),
    /// A statement: refused first if `guard` finds a row it would reject, logged as `log`,
    /// then run (unless the adoption only plans).
    Sql {
        sql: String,
        log: String,
        guard: Option<Guard>,
        /// For an added constraint or index, (its name, its table): a failure is then a refusal
        /// naming them, not an internal error.
        adds: Option<(String, String)>,
    },
}

/// The rows a change would reject, looked for before it is made.
enum Guard {
    /// A value longer than the contract's `varchar(max)`.
    TooLong {
        table: String,
        column: String,
        max: u32,
    },
    /// NULL where the contract says NOT NULL.
    Null { table: String, column: String },
    /// A row that breaks the contract's check `name`, shown with the `columns` it reads.
    Check {
        table: String,
        name: String,
        expr: String,
        columns: Vec<String>,
    },
}

impl Guard {
    /// The refusal naming the first row this guard finds, if any. Reads only.
    async fn refusal(&self, tx: &Transaction<'_>) -> Step<Option<Error>> {
        let refused = |message: String| Some(Error::new(Kind::SchemaDiffers, message));
        Ok(match self {
            Guard::TooLong { table, column, max } => {
                let cond = format!("length({}) > {max}", q(column));
                first_row(tx, table, &cond, &[column])
                    .await?
                    .and_then(|(id, value)| {
                        refused(format!(
                            "repair refused: {table} row id={id}: {value} is longer than the \
                         contract's {max} characters; nothing was changed"
                        ))
                    })
            }
            Guard::Null { table, column } => {
                let cond = format!("{} IS NULL", q(column));
                first_row(tx, table, &cond, &[]).await?.and_then(|(id, _)| {
                    refused(format!(
                        "repair refused: {table} row id={id}: {column} is NULL, which the \
                         contract's NOT NULL rejects; nothing was changed"
                    ))
                })
            }
            Guard::Check {
                table,
                name,
                expr,
                columns,
            } => {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let cond = format!("NOT {expr}");
                first_row(tx, table, &cond, &columns)
                    .await?
                    .and_then(|(id, values)| {
                        refused(format!(
                            "repair refused: {table} row id={id} ({values}) breaks the contract's \
                         check {name} {expr}; nothing was changed"
                        ))
                    })
            }
        })
    }
}

/// Carries `adoption` out inside `tx` (the baseline's transaction): SERIAL ids to identity
/// columns, names and, with `repair`, what differs for real but loses nothing; then, with
/// `repair`, what no repair covers is refused. The caller records the history after it.
pub async fn adopt(tx: &Transaction<'_>, adoption: &Adoption<'_>) -> Step<()> {
    let mode = adoption.mode;
    make(tx, serial_to_identity(tx).await?, mode).await?;
    let expected = Expected::build(tx, adoption.migrations).await?;
    let live_schema: String = tx
        .query_one("SELECT current_schema()::text", &[])
        .await?
        .get(0);
    if adoption.repair {
        let live = catalog::column_defs(tx, &live_schema).await?;
        let repairs = column_repairs(&expected.columns, &live, adoption.time_zone);
        make(tx, repairs, mode).await?;
    }
    let live = catalog::named_objects(tx, &live_schema).await?;
    make(tx, name_changes(&expected, &live, adoption.repair), mode).await?;
    if adoption.repair && mode != AdoptMode::PlanOnly {
        let after = catalog::read_schema(tx, &live_schema).await?;
        let left = crate::schema::diff(&expected.schema, &after, true);
        refuse_unrepaired(&left, "repair")?;
    }
    Ok(())
}

/// Makes each change in order: its guard first, then its log line, then (unless only
/// planning) its statement.
async fn make(tx: &Transaction<'_>, changes: Vec<Change>, mode: AdoptMode) -> Step<()> {
    for change in changes {
        let (sql, log, guard, adds) = match change {
            Change::Note(note) => {
                log::warn!("{note}");
                continue;
            }
            Change::Sql {
                sql,
                log,
                guard,
                adds,
            } => (sql, log, guard, adds),
        };
        if let Some(guard) = guard {
            if let Some(refusal) = guard.refusal(tx).await? {
                return Err(StepError::Fail(refusal));
            }
        }
        log::info!("{log}");
        if mode == AdoptMode::PlanOnly {
            continue;
        }
        tx.batch_execute(&sql).await.map_err(|e| match &adds {
            None => StepError::from(e),
            Some((name, table)) => give_way_or(e, |e| {
                Error::new(
                    Kind::SchemaDiffers,
                    format!(
                        "repair refused: adding {name} to {table}: {}; nothing was changed",
                        describe(&e)
                    ),
                )
            }),
        })?;
    }
    Ok(())
}

/// What the migrations make, read from a scratch schema built inside the transaction and
/// dropped again before it goes on (the search path restored verbatim).
struct Expected {
    /// The scratch schema's name, as it appears in index definitions.
    scratch: String,
    objects: BTreeMap<(String, String), Named>,
    columns: BTreeMap<(String, String), ColumnDef>,
    schema: Schema,
}

impl Expected {
    async fn build(tx: &Transaction<'_>, ms: &[migrations::Migration]) -> Step<Expected> {
        let search_path: String = tx
            .query_one("SELECT current_setting('search_path')", &[])
            .await?
            .get(0);
        let scratch = format!("yogaflow_names_{}", std::process::id());
        super::build_scratch(tx, &scratch, ms, "failed on a scratch schema").await?;
        let expected = Expected {
            objects: catalog::named_objects(tx, &scratch).await?,
            columns: catalog::column_defs(tx, &scratch).await?,
            schema: catalog::read_schema(tx, &scratch).await?,
            scratch,
        };
        // The search path as it was, all of it (`"$user", public`, extensions).
        tx.query_typed(
            "SELECT set_config('search_path', $1, true)",
            &[(&search_path, Type::TEXT)],
        )
        .await?;
        tx.batch_execute(&format!("DROP SCHEMA {} CASCADE", expected.scratch))
            .await?;
        Ok(expected)
    }
}

/// An adopted database left as `up` would have made it: its `SERIAL` id columns (what
/// SQLAlchemy's `Integer, primary_key=True` makes) become identity columns generated by
/// default, continuing past both the largest id and the sequence's position; the old sequence
/// goes. Rows untouched.
async fn serial_to_identity(tx: &Transaction<'_>) -> Step<Vec<Change>> {
    let tables: Vec<&str> = APP_TABLES.to_vec();
    let serials = tx
        .query_typed(
            "SELECT c.relname::text, a.attname::text, \
                    pg_get_serial_sequence(quote_ident(c.relname), a.attname) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
               AND a.attidentity = '' AND NOT a.attisdropped \
               AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%' \
               AND c.relname = ANY($1)",
            &[(&tables, Type::TEXT_ARRAY)],
        )
        .await?;
    let mut out = Vec::new();
    for row in serials {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let Some(sequence) = row.get::<_, Option<String>>(2) else {
            continue;
        };
        let (t, c) = (q(&table), q(&column));
        let seq = sequence.replace('\'', "''");
        let sql = format!(
            "DO $yogaflow$ DECLARE n bigint; BEGIN \
               SELECT greatest(coalesce((SELECT max({c}) FROM {t}), 0), \
                      (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
                       FROM {sequence})) + 1 INTO n; \
               ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT; \
               EXECUTE 'DROP SEQUENCE ' || '{seq}'; \
               EXECUTE format('ALTER TABLE %s ALTER COLUMN %s ADD GENERATED BY DEFAULT AS \
                               IDENTITY (START WITH %s)', '{tq}', '{cq}', n); \
             END $yogaflow$",
            tq = t.replace('\'', "''"),
            cq = c.replace('\'', "''"),
        );
        out.push(Change::Sql {
            sql,
            log: format!("{table}.{column}: SERIAL to an identity column, as `up` makes it"),
            guard: None,
            adds: None,
        });
    }
    Ok(out)
}

/// `varchar(n)`'s length.
fn varchar_length(ty: &str) -> Option<u32> {
    crate::schema::varchar_length(ty).and_then(|n| u32::try_from(n).ok())
}

/// `repair: SQL` for a statement that brings a column to the contract.
fn repair(sql: String, guard: Option<Guard>) -> Change {
    Change::Sql {
        log: format!("repair: {sql}"),
        sql,
        guard,
        adds: None,
    }
}

/// The column repairs: `json` to `jsonb` (its default set again as the migrations spell it:
/// a default keeps its old type through ALTER TYPE), a `varchar` to the contract's length
/// (refused if a value is longer), NOT NULL (refused if a row is NULL), a missing default.
fn column_repairs(
    expected: &BTreeMap<(String, String), ColumnDef>,
    live: &BTreeMap<(String, String), ColumnDef>,
    time_zone: Option<&str>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for ((table, column), (want_type, want_not_null, want_default)) in expected {
        let Some((have_type, have_not_null, have_default)) =
            live.get(&(table.clone(), column.clone()))
        else {
            continue;
        };
        let (t, c) = (q(table), q(column));
        if want_type != have_type {
            match (want_type.as_str(), have_type.as_str()) {
                ("timestamp with time zone", "timestamp without time zone") => {
                    // Only with the zone named: the values carry none.
                    if let Some(zone) = time_zone {
                        let zone = catalog::quote_literal(zone);
                        out.push(repair(
                            format!(
                                "ALTER TABLE {t} ALTER COLUMN {c} TYPE timestamptz USING {c} AT \
                                 TIME ZONE {zone}"
                            ),
                            None,
                        ));
                    }
                }
                ("jsonb", "json") => out.push(repair(
                    match want_default {
                        Some(default) => format!(
                            "ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT, ALTER COLUMN {c} \
                             TYPE jsonb USING {c}::jsonb, ALTER COLUMN {c} SET DEFAULT {default}"
                        ),
                        None => {
                            format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE jsonb USING {c}::jsonb")
                        }
                    },
                    None,
                )),
                (w, h) => {
                    // Another length, or none (SQLAlchemy's `String()`): every value must fit.
                    let have = match h {
                        "character varying" => Some(u32::MAX),
                        h => varchar_length(h),
                    };
                    if let (Some(want), Some(have)) = (varchar_length(w), have) {
                        let guard = (have > want).then(|| Guard::TooLong {
                            table: table.clone(),
                            column: column.clone(),
                            max: want,
                        });
                        out.push(repair(
                            format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {w}"),
                            guard,
                        ));
                    }
                }
            }
        }
        if *want_not_null && !have_not_null {
            let guard = Guard::Null {
                table: table.clone(),
                column: column.clone(),
            };
            out.push(repair(
                format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"),
                Some(guard),
            ));
        }
        if let (Some(default), None) = (want_default, have_default) {
            out.push(repair(
                format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default}"),
                None,
            ));
        }
    }
    out
}

/// Constraints and indexes: each the live database has under another name renamed to the
/// migrations' (SQLAlchemy's `poses_name_key` to `uq_poses_name`, so that a later migration
/// naming them works); with `repair`, each it lacks added (a check first looked for rows that
/// break it). A name another object holds is left, with a note.
fn name_changes(
    expected: &Expected,
    live: &BTreeMap<(String, String), Named>,
    repair: bool,
) -> Vec<Change> {
    let taken: BTreeSet<&str> = live.values().map(|n| n.name.as_str()).collect();
    let mut out = Vec::new();
    for ((table, key), want) in &expected.objects {
        let twin = rule_twin(live, table, key).filter(|_| repair);
        if let (None, Some(old)) = (live.get(&(table.clone(), key.clone())), twin) {
            let held_by_another = taken.contains(want.name.as_str()) && old.name != want.name;
            if !held_by_another {
                out.push(remade_foreign_key(table, old, want));
            }
            continue;
        }
        let Some(have) = live.get(&(table.clone(), key.clone())) else {
            if repair && !taken.contains(want.name.as_str()) {
                out.push(addition(expected, table, want));
            }
            // Otherwise missing (a difference `adopt` reported), or another object holds
            // its name.
            continue;
        };
        if have.name == want.name {
            continue;
        }
        if taken.contains(want.name.as_str()) {
            out.push(Change::Note(format!(
                "{table}: {} keeps its name: {} is taken by another object",
                have.name, want.name
            )));
            continue;
        }
        let (sql, what) = if have.constraint {
            let sql = format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                q(table),
                q(&have.name),
                q(&want.name)
            );
            (sql, "constraint")
        } else {
            (
                format!("ALTER INDEX {} RENAME TO {}", q(&have.name), q(&want.name)),
                "index",
            )
        };
        out.push(Change::Sql {
            sql,
            log: format!(
                "{table}: {what} {} renamed {}, as the migrations name it",
                have.name, want.name
            ),
            guard: None,
            adds: None,
        });
    }
    out
}

/// A live foreign key of `table` that is the expected one of `key` but for its ON DELETE rule,
/// which is NO ACTION (SQLAlchemy's default when `ondelete` is not given).
fn rule_twin<'a>(
    live: &'a BTreeMap<(String, String), Named>,
    table: &str,
    key: &str,
) -> Option<&'a Named> {
    let bare = |k: &str| k.split(" ON DELETE ").next().unwrap_or(k).to_string();
    if !key.starts_with("f ") || !key.contains(" ON DELETE ") {
        return None;
    }
    live.iter()
        .find(|((t, k), _)| {
            t == table && k.starts_with("f ") && !k.contains(" ON DELETE ") && bare(k) == bare(key)
        })
        .map(|(_, n)| n)
}

/// The change that re-makes `old` (a foreign key with ON DELETE NO ACTION) as `want`, the
/// contract's rule: added NOT VALID, then validated (an orphan row stops it, named).
fn remade_foreign_key(table: &str, old: &Named, want: &Named) -> Change {
    let (t, new) = (q(table), q(&want.name));
    let sql = format!(
        "ALTER TABLE {t} DROP CONSTRAINT {}, ADD CONSTRAINT {new} {} NOT VALID; \
         ALTER TABLE {t} VALIDATE CONSTRAINT {new}",
        q(&old.name),
        want.def
    );
    Change::Sql {
        log: format!(
            "repair: {table}: foreign key {} re-made as {} {} (NOT VALID, then VALIDATE)",
            old.name, want.name, want.def
        ),
        sql,
        guard: None,
        adds: Some((want.name.clone(), table.to_string())),
    }
}

/// The change that adds `want`, a constraint or index the live `table` lacks.
fn addition(expected: &Expected, table: &str, want: &Named) -> Change {
    let guard = want.def.strip_prefix("CHECK ").map(|expr| {
        // The columns the check reads, to show their values.
        let words: BTreeSet<&str> = expr
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .collect();
        Guard::Check {
            table: table.to_string(),
            name: want.name.clone(),
            expr: expr.to_string(),
            columns: expected
                .columns
                .keys()
                .filter(|(t, c)| t == table && words.contains(c.as_str()))
                .map(|(_, c)| c.clone())
                .collect(),
        }
    });
    let sql = if want.constraint && (guard.is_some() || want.def.starts_with("FOREIGN KEY")) {
        // A check or a foreign key: added NOT VALID, then validated, the form `lint` asks
        // for. Inside the baseline's one transaction the ADD's lock lasts to the commit all
        // the same (adoption is once, under the migration lock); what it keeps apart is the
        // add from the scan, whose failure PostgreSQL names by row.
        let (t, n) = (q(table), q(&want.name));
        format!(
            "ALTER TABLE {t} ADD CONSTRAINT {n} {} NOT VALID; ALTER TABLE {t} VALIDATE \
             CONSTRAINT {n}",
            want.def
        )
    } else if want.constraint {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {}",
            q(table),
            q(&want.name),
            want.def
        )
    } else {
        want.def
            .replace(&format!(" ON {}.", expected.scratch), " ON ")
    };
    Change::Sql {
        log: format!("repair: {sql}"),
        sql,
        guard,
        adds: Some((want.name.clone(), table.to_string())),
    }
}
