//! The live schema of a database, read from its catalog into one comparable model; the schema
//! a version *should* have, built by applying the embedded migrations to a scratch copy (never
//! a hand-kept snapshot); and the differences between the two, one line per object.

use crate::db::Database;
use crate::error::{Error, Result};
use crate::migrate::{self, HISTORY_TABLE};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Tables of one schema, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    /// Every table except the migration history.
    pub tables: BTreeMap<String, Table>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// Unique constraints (not unique indexes), as column lists.
    pub uniques: BTreeSet<Vec<String>>,
    /// Foreign keys.
    pub foreign_keys: BTreeSet<ForeignKey>,
    /// CHECK expressions, normalised.
    pub checks: BTreeSet<String>,
    /// Indexes created by CREATE INDEX, by name.
    pub indexes: BTreeMap<String, Index>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Type as the catalog spells it (normalised to lower case).
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default expression (normalised), `identity` for identity columns.
    pub default: Option<String>,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ForeignKey {
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced table.
    pub ref_table: String,
    /// Referenced columns.
    pub ref_columns: Vec<String>,
    /// ON DELETE rule: `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL`, `SET DEFAULT`.
    pub on_delete: String,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// UNIQUE index.
    pub unique: bool,
}

impl std::fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({}) -> {}({}) ON DELETE {}",
            self.columns.join(", "),
            self.ref_table,
            self.ref_columns.join(", "),
            self.on_delete
        )
    }
}

/// Lower-cases outside quotes, collapses whitespace, and drops parentheses around the whole
/// expression, so that spellings that mean the same compare equal.
pub fn normalize_expr(expr: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut space = false;
    for ch in expr.trim().chars() {
        match quote {
            Some(q) => {
                out.push(ch);
                if ch == q {
                    quote = None;
                }
            }
            None if ch.is_whitespace() => space = true,
            None => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                }
                out.push(ch.to_ascii_lowercase());
            }
        }
    }
    while out.starts_with('(') && out.ends_with(')') && balanced_inside(&out[1..out.len() - 1]) {
        out = out[1..out.len() - 1].trim().to_string();
    }
    out
}

fn balanced_inside(s: &str) -> bool {
    let mut depth = 0i32;
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Reads the tables of PostgreSQL schema `schema` from the catalog.
pub(crate) async fn read_pg(c: &tokio_postgres::Client, schema: &str) -> Result<Schema> {
    let mut out = Schema::default();
    let tables = c
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2",
            &[&schema, &HISTORY_TABLE],
        )
        .await?;
    for row in tables {
        out.tables.insert(row.get(0), Table::default());
    }
    let columns = c
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')",
            &[&schema],
        )
        .await?;
    for row in columns {
        let Some(table) = out.tables.get_mut(row.get::<_, &str>(0)) else {
            continue;
        };
        let identity: String = row.get(5);
        let default = match identity.as_str() {
            "d" => Some("generated by default as identity".to_string()),
            "a" => Some("generated always as identity".to_string()),
            _ => row.get::<_, Option<String>>(4).map(|d| normalize_expr(&d)),
        };
        table.columns.insert(
            row.get(1),
            Column {
                data_type: row.get::<_, String>(2).to_lowercase(),
                nullable: row.get(3),
                default,
            },
        );
    }
    let constraints = c
        .query(
            "SELECT cl.relname::text, con.contype::text, pg_get_constraintdef(con.oid), \
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
                    coalesce(fcl.relname::text, ''), \
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), \
                    con.confdeltype::text \
             FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = cl.relnamespace \
             LEFT JOIN pg_class fcl ON fcl.oid = con.confrelid \
             WHERE n.nspname = $1",
            &[&schema],
        )
        .await?;
    for row in constraints {
        let Some(table) = out.tables.get_mut(row.get::<_, &str>(0)) else {
            continue;
        };
        let columns: Vec<String> = row.get(3);
        match row.get::<_, &str>(1) {
            "p" => table.primary_key = columns,
            "u" => {
                table.uniques.insert(columns);
            }
            "c" => {
                let def: String = row.get(2);
                table
                    .checks
                    .insert(normalize_expr(def.trim_start_matches("CHECK ")));
            }
            "f" => {
                table.foreign_keys.insert(ForeignKey {
                    columns,
                    ref_table: row.get(4),
                    ref_columns: row.get(5),
                    on_delete: pg_rule(row.get(6)).to_string(),
                });
            }
            _ => {}
        }
    }
    let indexes = c
        .query(
            "SELECT t.relname::text, i.relname::text, ix.indisunique, \
                    ARRAY(SELECT coalesce(a.attname::text, '(expression)') \
                          FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)",
            &[&schema],
        )
        .await?;
    for row in indexes {
        let Some(table) = out.tables.get_mut(row.get::<_, &str>(0)) else {
            continue;
        };
        table.indexes.insert(
            row.get(1),
            Index {
                unique: row.get(2),
                columns: row.get(3),
            },
        );
    }
    Ok(out)
}

fn pg_rule(code: &str) -> &'static str {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
}

/// Reads the tables of a SQLite database from `sqlite_master` and its pragmas.
pub(crate) fn read_sqlite(c: &rusqlite::Connection) -> Result<Schema> {
    let mut out = Schema::default();
    let mut stmt = c.prepare(
        "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> ?1",
    )?;
    let tables: Vec<(String, String)> = stmt
        .query_map([HISTORY_TABLE], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, sql) in tables {
        let mut table = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut cols = c.prepare(&format!("PRAGMA table_info(\"{name}\")"))?;
        let mut rows = cols.query([])?;
        while let Some(r) = rows.next()? {
            let col: String = r.get(1)?;
            let pk_pos: i64 = r.get(5)?;
            if pk_pos > 0 {
                pk.push((pk_pos, col.clone()));
            }
            table.columns.insert(
                col,
                Column {
                    data_type: r.get::<_, String>(2)?.to_lowercase(),
                    nullable: r.get::<_, i64>(3)? == 0,
                    default: r.get::<_, Option<String>>(4)?.map(|d| normalize_expr(&d)),
                },
            );
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();

        let mut fks = c.prepare(&format!("PRAGMA foreign_key_list(\"{name}\")"))?;
        let mut grouped: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        let mut rows = fks.query([])?;
        while let Some(r) = rows.next()? {
            let fk = grouped.entry(r.get(0)?).or_insert_with(|| ForeignKey {
                columns: vec![],
                ref_table: String::new(),
                ref_columns: vec![],
                on_delete: String::new(),
            });
            fk.ref_table = r.get(2)?;
            fk.columns.push(r.get(3)?);
            fk.ref_columns
                .push(r.get::<_, Option<String>>(4)?.unwrap_or_default());
            fk.on_delete = r.get::<_, String>(6)?.to_uppercase();
        }
        table.foreign_keys = grouped.into_values().collect();

        let mut list = c.prepare(&format!("PRAGMA index_list(\"{name}\")"))?;
        let indexes: Vec<(String, bool, String)> = list
            .query_map([], |r| Ok((r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (index, unique, origin) in indexes {
            let mut info = c.prepare(&format!("PRAGMA index_info(\"{index}\")"))?;
            let columns: Vec<String> = info
                .query_map([], |r| {
                    Ok(r.get::<_, Option<String>>(2)?
                        .unwrap_or_else(|| "(expression)".into()))
                })?
                .collect::<rusqlite::Result<_>>()?;
            match origin.as_str() {
                "u" => {
                    table.uniques.insert(columns);
                }
                "c" => {
                    table.indexes.insert(index, Index { columns, unique });
                }
                _ => {}
            }
        }
        table.checks = sqlite_checks(&sql)
            .into_iter()
            .map(|c| normalize_expr(&c))
            .collect();
        out.tables.insert(name, table);
    }
    Ok(out)
}

/// The expressions of the CHECK clauses in a `CREATE TABLE` statement.
pub fn sqlite_checks(create_sql: &str) -> Vec<String> {
    let upper = create_sql.to_ascii_uppercase();
    let bytes = create_sql.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = upper[from..].find("CHECK") {
        let start = from + found;
        from = start + 5;
        let before_ok = start == 0
            || !(bytes[start - 1] as char).is_ascii_alphanumeric() && bytes[start - 1] != b'_';
        let rest = create_sql[from..].trim_start();
        if !before_ok || !rest.starts_with('(') {
            continue;
        }
        let open = create_sql.len() - rest.len();
        let mut depth = 0;
        let mut quote: Option<char> = None;
        for (i, ch) in create_sql[open..].char_indices() {
            match (quote, ch) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(ch),
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(create_sql[open + 1..open + i].to_string());
                        from = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Every difference between `expected` and `actual`, one line each, naming the object.
/// Tables that only `actual` has are reported unless `ignore_extra_tables`.
pub fn diff(expected: &Schema, actual: &Schema, ignore_extra_tables: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in &expected.tables {
        match actual.tables.get(name) {
            None => out.push(format!("table {name}: missing")),
            Some(have) => diff_table(name, want, have, &mut out),
        }
    }
    if !ignore_extra_tables {
        for name in actual
            .tables
            .keys()
            .filter(|t| !expected.tables.contains_key(*t))
        {
            out.push(format!("table {name}: extra"));
        }
    }
    out
}

fn show(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "none".into())
}

fn diff_table(t: &str, want: &Table, have: &Table, out: &mut Vec<String>) {
    for (name, w) in &want.columns {
        let Some(h) = have.columns.get(name) else {
            out.push(format!("column {t}.{name}: missing"));
            continue;
        };
        if w.data_type != h.data_type {
            out.push(format!(
                "column {t}.{name}: type changed from {} to {}",
                w.data_type, h.data_type
            ));
        }
        if w.nullable != h.nullable {
            let n = |b: bool| if b { "NULL" } else { "NOT NULL" };
            out.push(format!(
                "column {t}.{name}: changed from {} to {}",
                n(w.nullable),
                n(h.nullable)
            ));
        }
        if w.default != h.default {
            out.push(format!(
                "column {t}.{name}: default changed from {} to {}",
                show(&w.default),
                show(&h.default)
            ));
        }
    }
    for name in have
        .columns
        .keys()
        .filter(|c| !want.columns.contains_key(*c))
    {
        out.push(format!("column {t}.{name}: extra"));
    }
    if want.primary_key != have.primary_key {
        out.push(format!(
            "primary key of {t}: changed from ({}) to ({})",
            want.primary_key.join(", "),
            have.primary_key.join(", ")
        ));
    }
    for u in want.uniques.difference(&have.uniques) {
        out.push(format!("unique constraint {t}({}): missing", u.join(", ")));
    }
    for u in have.uniques.difference(&want.uniques) {
        out.push(format!("unique constraint {t}({}): extra", u.join(", ")));
    }
    for fk in want.foreign_keys.difference(&have.foreign_keys) {
        out.push(format!("foreign key {t}{fk}: missing"));
    }
    for fk in have.foreign_keys.difference(&want.foreign_keys) {
        out.push(format!("foreign key {t}{fk}: extra"));
    }
    for c in want.checks.difference(&have.checks) {
        out.push(format!("check on {t} ({c}): missing"));
    }
    for c in have.checks.difference(&want.checks) {
        out.push(format!("check on {t} ({c}): extra"));
    }
    for (name, w) in &want.indexes {
        match have.indexes.get(name) {
            None => out.push(format!("index {name} on {t}: missing")),
            Some(h) if h != w => out.push(format!(
                "index {name} on {t}: changed from {}({}) to {}({})",
                if w.unique { "unique " } else { "" },
                w.columns.join(", "),
                if h.unique { "unique " } else { "" },
                h.columns.join(", ")
            )),
            Some(_) => {}
        }
    }
    for name in have
        .indexes
        .keys()
        .filter(|i| !want.indexes.contains_key(*i))
    {
        out.push(format!("index {name} on {t}: extra"));
    }
}

/// Logs differences between the live schema and the expected one as warnings (after `up`).
/// Never fails the run: the migrations did commit.
pub async fn warn_drift(db: &Database) {
    let result = async {
        let version = db
            .read_history()
            .await?
            .and_then(|h| h.iter().map(|a| a.version).max())
            .unwrap_or(0);
        let latest = migrate::migrations(db.dialect())
            .last()
            .map_or(0, |m| m.version);
        let expected = db.expected_schema(version.min(latest)).await?;
        Ok::<_, Error>(diff(&expected, &db.live_schema().await?, true))
    }
    .await;
    match result {
        Ok(diffs) => {
            for d in diffs {
                log::warn!("schema drift: {d}");
            }
        }
        Err(e) => log::warn!("could not check the schema for drift: {}", e.report()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_equivalent_spellings() {
        let cases = [
            ("(CURRENT_TIMESTAMP)", "current_timestamp"),
            ("  '{}' ", "'{}'"),
            ("((rating >= 1))", "rating >= 1"),
            ("(a) OR (b)", "(a) or (b)"),
            ("'Mixed Case'", "'Mixed Case'"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_expr(input), want, "{input}");
        }
    }

    #[test]
    fn finds_check_clauses() {
        let sql = "CREATE TABLE t (a INT, rating REAL, CONSTRAINT ck CHECK (rating BETWEEN 1 AND 5), b TEXT check(b IN ('x)', 'y')))";
        assert_eq!(
            sqlite_checks(sql),
            vec![
                "rating BETWEEN 1 AND 5".to_string(),
                "b IN ('x)', 'y')".to_string()
            ]
        );
        assert!(sqlite_checks("CREATE TABLE checks (checked INT)").is_empty());
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
        let d = diff(&want, &have, false);
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
