//! Adoption on SQLite: each table whose SQL is not what the migrations make (SQLAlchemy's DDL,
//! `FLOAT` for `REAL`, a check spelled otherwise, unnamed constraints; with `--repair`, a
//! missing check, NOT NULL, default or foreign key) is planned as a [`Rebuild`], checked
//! against the rows the new table would reject, then made exactly that by SQLite's documented
//! 12-step procedure inside the baseline's transaction (foreign keys are off around it, see
//! `run_step`): the views dropped, the table created as the migrations create it under a new
//! name, the rows copied by column name, the old table dropped, the new one renamed, its
//! indexes (the migrations' and any others it had) and triggers made again, the views made
//! again, and `PRAGMA foreign_key_check` before the commit (orphans that were there before are
//! left as they were). A table holding anything the migrations' lacks (a column, constraint)
//! is not rebuilt: that would lose it.

use super::catalog::{column_names, read_schema, sqlite_checks};
use crate::db::{quote_ident, refuse_unrepaired, AdoptMode, Adoption};
use crate::error::{Error, Kind, Result};
use crate::migrations::HISTORY_TABLE;
use crate::schema::{self, Schema};
use rusqlite::Connection;

/// One table to rebuild: its name and the migrations' `CREATE TABLE` for it.
struct Rebuild {
    table: String,
    sql: String,
}

/// (name, table, SQL) of each object of `kind` (`table`, `index`, `view`, `trigger`), in the
/// order they were made.
type Objects = Vec<(String, String, String)>;

fn objects(c: &Connection, kind: &str) -> Result<Objects> {
    let mut stmt = c.prepare(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = ?1 AND sql IS NOT NULL \
         AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Carries `adoption` out inside `tx`: the rebuilds planned, then (unless only planning) made;
/// with `repair`, missing indexes added, and what no rebuild covers refused.
pub fn adopt(tx: &Connection, adoption: &Adoption<'_>) -> Result<()> {
    let scratch = super::scratch_db(adoption.migrations)?;
    let expected = read_schema(&scratch)?;
    let plan = plan(tx, &scratch, &expected)?;
    if adoption.mode == AdoptMode::PlanOnly {
        for r in &plan {
            log::info!(
                "{}: rebuilt as the migrations make it (SQLite's 12-step table change; rows kept)",
                r.table
            );
        }
        return Ok(());
    }
    let expected_indexes = objects(&scratch, "index")?;
    let views = objects(tx, "view")?;
    let before_orphans = orphans(tx)?;
    for (name, _, _) in views.iter().filter(|_| !plan.is_empty()) {
        tx.execute_batch(&format!("DROP VIEW {}", quote_ident(name)))?;
    }
    for r in &plan {
        rebuild(tx, &scratch, &expected_indexes, r)?;
    }
    for (_, _, sql) in views.iter().filter(|_| !plan.is_empty()) {
        tx.execute_batch(sql)?;
    }
    if adoption.repair {
        add_missing_indexes(tx, &expected_indexes)?;
    }
    refuse_new_orphans(tx, &before_orphans)?;
    if adoption.repair {
        refuse_unrepaired(&schema::diff(&expected, &read_schema(tx)?, true), "rebuild")?;
    }
    Ok(())
}

/// The tables to rebuild: those whose SQL differs from the migrations' and that lack nothing
/// and hold nothing more. A row the new table would reject stops the plan, named. Reads only.
fn plan(tx: &Connection, scratch: &Connection, expected: &Schema) -> Result<Vec<Rebuild>> {
    let live = read_schema(tx)?;
    let live_tables = objects(tx, "table")?;
    // The same statement, whatever quoting of the table's name SQLite's RENAME left, and with
    // or without AUTOINCREMENT (kept by meaning: see `rebuild`).
    let same = |a: &str, b: &str| {
        let words = |s: &str| {
            renamed_create(s, "t")
                .unwrap_or_else(|| s.to_string())
                .split_whitespace()
                .filter(|w| !w.eq_ignore_ascii_case("autoincrement"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        words(a) == words(b)
    };
    let mut plan = Vec::new();
    for (table, _, sql) in objects(scratch, "table")?
        .into_iter()
        .filter(|(t, _, _)| t != HISTORY_TABLE)
    {
        let Some((_, _, live_sql)) = live_tables.iter().find(|(t, _, _)| *t == table) else {
            continue;
        };
        if same(live_sql, &sql) {
            continue;
        }
        let (Some(want), Some(have)) = (expected.tables.get(&table), live.tables.get(&table))
        else {
            continue;
        };
        if !only_lacks(want, have) || want.columns.keys().any(|c| !have.columns.contains_key(c)) {
            // Something to lose, or a column to make up: no rebuild (refused as a
            // difference, by `adopt` or after the repair).
            continue;
        }
        if let Some(why) = rejected_row(tx, scratch, &table, &sql)? {
            return Err(Error::new(
                Kind::SchemaDiffers,
                format!("repair refused: {why}; nothing was changed"),
            ));
        }
        let autoincrement = live_sql.to_ascii_uppercase().contains("AUTOINCREMENT");
        let sql = if autoincrement {
            with_autoincrement(&sql)
        } else {
            sql
        };
        plan.push(Rebuild { table, sql });
    }
    Ok(plan)
}

/// SQLite's 12 steps for one table (the views are dropped and made again around all of them).
fn rebuild(
    tx: &Connection,
    scratch: &Connection,
    expected_indexes: &Objects,
    r: &Rebuild,
) -> Result<()> {
    let table = &r.table;
    let mut columns = column_names(scratch, table)?;
    let extras = extra_columns(tx, &columns, table)?;
    let new_name = format!("yogaflow_new_{table}");
    let create = renamed_create(&r.sql, &new_name)
        .ok_or_else(|| Error::internal(format!("cannot read the migrations' SQL of {table}")))?;
    // The table's other indexes (not the migrations') and its triggers, made again.
    let again: Vec<String> = objects(tx, "index")?
        .into_iter()
        .filter(|(name, t, _)| t == table && !expected_indexes.iter().any(|(n, _, _)| n == name))
        .chain(
            objects(tx, "trigger")?
                .into_iter()
                .filter(|(_, t, _)| t == table),
        )
        .map(|(_, _, sql)| sql)
        .collect();
    let (t, n) = (quote_ident(table), quote_ident(&new_name));
    columns.extend(extras.iter().map(|(name, _)| name.clone()));
    let list = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let high_water = sequence_of(tx, table)?;
    tx.execute_batch(&create)?;
    // The app's own columns, as they were declared, after the contract's.
    for (name, declared) in &extras {
        tx.execute_batch(&format!(
            "ALTER TABLE {n} ADD COLUMN {} {declared}",
            quote_ident(name)
        ))?;
    }
    tx.execute_batch(&format!("INSERT INTO {n} ({list}) SELECT {list} FROM {t}"))
        .map_err(|e| {
            Error::new(
                Kind::SchemaDiffers,
                format!("repair refused: {table}: {e}; nothing was changed"),
            )
        })?;
    tx.execute_batch(&format!("DROP TABLE {t}; ALTER TABLE {n} RENAME TO {t}"))?;
    if let Some(high) = high_water {
        // The ids of deleted rows stay used: the table's high-water mark carries over.
        let updated = tx.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
            rusqlite::params![table, high],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                rusqlite::params![table, high],
            )?;
        }
    }
    for (_, _, index) in expected_indexes.iter().filter(|(_, it, _)| it == table) {
        tx.execute_batch(index)?;
    }
    for sql in &again {
        tx.execute_batch(sql)?;
    }
    log::info!(
        "{table}: rebuilt as the migrations make it (SQLite's 12-step table change; rows kept)"
    );
    Ok(())
}

/// The live `table`'s columns beyond `contract` (the app's own), with their declarations
/// (type, NOT NULL, default) as `PRAGMA table_info` gives them.
fn extra_columns(
    c: &Connection,
    contract: &[String],
    table: &str,
) -> Result<Vec<(String, String)>> {
    let mut stmt = c.prepare(&format!("PRAGMA table_info({})", quote_ident(table)))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|(name, ..)| !contract.contains(name))
        .map(|(name, ty, not_null, default)| {
            let mut declared = ty;
            if not_null {
                declared.push_str(" NOT NULL");
            }
            if let Some(d) = default {
                declared.push_str(&format!(" DEFAULT {d}"));
            }
            (name, declared)
        })
        .collect())
}

/// `sqlite_sequence`'s mark for `table` (made with AUTOINCREMENT), if it has one.
fn sequence_of(c: &Connection, table: &str) -> Result<Option<i64>> {
    if !super::catalog::has_table(c, "sqlite_sequence")? {
        return Ok(None);
    }
    let mut stmt = c.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?1")?;
    Ok(stmt.query_row([table], |r| r.get(0)).ok())
}

/// The migrations' `CREATE TABLE` with its id column AUTOINCREMENT, for a table that was made
/// so: SQLite then never hands out the id of a deleted row again, as the backend relied on.
fn with_autoincrement(create_sql: &str) -> String {
    let upper = create_sql.to_ascii_uppercase();
    match upper.find("PRIMARY KEY") {
        Some(at) if !upper[at + 11..].trim_start().starts_with('(') => format!(
            "{} AUTOINCREMENT{}",
            &create_sql[..at + 11],
            &create_sql[at + 11..]
        ),
        _ => create_sql.to_string(),
    }
}

/// The migrations' indexes the file lacks, made (`--repair`).
fn add_missing_indexes(tx: &Connection, expected_indexes: &Objects) -> Result<()> {
    let live: Vec<String> = objects(tx, "index")?
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    for (name, _, sql) in expected_indexes {
        if !live.contains(name) {
            log::info!("repair: {sql}");
            tx.execute_batch(sql).map_err(|e| {
                Error::new(
                    Kind::SchemaDiffers,
                    format!("repair refused: {sql}: {e}; nothing was changed"),
                )
            })?;
        }
    }
    Ok(())
}

/// Refuses a row whose foreign key finds no parent now and did before the rebuilds.
pub(super) fn refuse_new_orphans(tx: &Connection, before: &[(String, i64, String)]) -> Result<()> {
    match orphans(tx)?.into_iter().find(|o| !before.contains(o)) {
        Some((table, rowid, parent)) => Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "refused: {table} row rowid={rowid} refers to a row {parent} does not have; \
                 nothing was changed"
            ),
        )),
        None => Ok(()),
    }
}

/// Rows whose foreign key finds no parent: (table, rowid, parent table).
pub(super) fn orphans(c: &Connection) -> Result<Vec<(String, i64, String)>> {
    let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get(2)?,
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// `CREATE TABLE name (...)` made into `CREATE TABLE "new_name" (...)`.
fn renamed_create(sql: &str, new_name: &str) -> Option<String> {
    let rest = sql.trim_start();
    let head = rest.get(..12)?;
    if !head.eq_ignore_ascii_case("create table") {
        return None;
    }
    let after = rest[12..].trim_start();
    let name_len = match after.chars().next()? {
        q @ ('"' | '`' | '[') => {
            let close = if q == '[' { ']' } else { q };
            after[1..].find(close)? + 2
        }
        _ => after.find(|c: char| c.is_whitespace() || c == '(')?,
    };
    Some(format!(
        "CREATE TABLE {} {}",
        quote_ident(new_name),
        after[name_len..].trim_start()
    ))
}

/// The first row of `table` that the table as the migrations make it (`expected`, the
/// scratch database holding it) would reject, named with the values it holds there: NULL in
/// a NOT NULL column, or a CHECK broken. Reads only.
fn rejected_row(
    c: &Connection,
    expected: &Connection,
    table: &str,
    create_sql: &str,
) -> Result<Option<String>> {
    let t = quote_ident(table);
    let first = |condition: &str| -> Option<String> {
        c.query_row(
            &format!("SELECT CAST(id AS TEXT) FROM {t} WHERE {condition} ORDER BY id LIMIT 1"),
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
    };
    let mut stmt = expected.prepare(&format!("PRAGMA table_info({t})"))?;
    let not_null: Vec<String> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, bool>(3)?)))?
        .filter_map(|r| r.ok())
        .filter(|(_, nn)| *nn)
        .map(|(name, _)| name)
        .collect();
    for column in &not_null {
        if let Some(id) = first(&format!("{} IS NULL", quote_ident(column))) {
            return Ok(Some(format!(
                "{table} row id={id}: {column} is NULL, which the contract rejects"
            )));
        }
    }
    // SQLite stores text of any length: what the contract's varchar(n) bounds must fit it.
    let mut stmt = expected.prepare(&format!("PRAGMA table_info({t})"))?;
    let bounded: Vec<(String, usize)> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .filter_map(|r| r.ok())
        .filter_map(|(name, ty)| Some((name, schema::varchar_length(&ty)?)))
        .collect();
    for (column, max) in &bounded {
        let longer = format!("length({}) > {max}", quote_ident(column));
        if let Some(id) = first(&longer) {
            return Ok(Some(format!(
                "{table} row id={id}: {column} is longer than the contract's {max} characters"
            )));
        }
    }
    let columns = column_names(c, table)?;
    for check in sqlite_checks(create_sql) {
        let Some(id) = first(&format!("NOT ({check})")) else {
            continue;
        };
        // The values of the columns the check reads.
        let words: Vec<&str> = check
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .collect();
        let values: Vec<String> = columns
            .iter()
            .filter(|col| words.contains(&col.as_str()))
            .filter_map(|col| {
                let sql = format!("SELECT quote({}) FROM {t} WHERE id = ?1", quote_ident(col));
                let v: String = c.query_row(&sql, [&id], |r| r.get(0)).ok()?;
                Some(format!("{col} = {v}"))
            })
            .collect();
        return Ok(Some(format!(
            "{table} row id={id} ({}) breaks the contract's check ({check})",
            values.join(", ")
        )));
    }
    Ok(None)
}

/// Whether `have` (a live table) holds nothing `want` (the table as the migrations make it)
/// lacks: no extra column, unique constraint, foreign key or check. A rebuild to `want`
/// loses none of them then; extra indexes are made again by the rebuild. A foreign key with
/// ON DELETE NO ACTION (SQLAlchemy's default) is the contract's with its rule, not an extra.
fn only_lacks(want: &schema::Table, have: &schema::Table) -> bool {
    let known = |k: &schema::ForeignKey| {
        want.foreign_keys.contains(k)
            || (k.on_delete == "NO ACTION"
                && want.foreign_keys.iter().any(|w| {
                    w.columns == k.columns
                        && w.ref_table == k.ref_table
                        && w.ref_columns == k.ref_columns
                }))
    };
    // The app's own columns that its inserts need not name are carried over (see `rebuild`).
    let carried = |c: &schema::Column| c.nullable || c.default.is_some();
    have.columns
        .iter()
        .all(|(name, c)| want.columns.contains_key(name) || carried(c))
        && have.uniques.is_subset(&want.uniques)
        && have.foreign_keys.iter().all(known)
        && have.checks.is_subset(&want.checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_table_statement_takes_a_new_name() {
        for (sql, want) in [
            (
                "CREATE TABLE poses (id INTEGER)",
                "CREATE TABLE \"n\" (id INTEGER)",
            ),
            (
                "create table \"poses\"(id INTEGER)",
                "CREATE TABLE \"n\" (id INTEGER)",
            ),
            ("CREATE TABLE [po ses] (id)", "CREATE TABLE \"n\" (id)"),
        ] {
            assert_eq!(renamed_create(sql, "n").as_deref(), Some(want), "{sql}");
        }
        assert_eq!(renamed_create("CREATE INDEX x ON t (a)", "n"), None);
    }
}
