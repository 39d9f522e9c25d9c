//! SQLite's catalog, read: the tables of a file (`sqlite_master` and its pragmas) into the
//! comparable [`Schema`] model, with the CHECK clauses found in each table's SQL; table and
//! column names.

use crate::error::Result;
use crate::migrations::HISTORY_TABLE;
use crate::schema::{
    check_meaning, normalize_expr, sqlite_type_meaning, Column, ForeignKey, Index, Schema, Table,
};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// Reads the tables of a SQLite database from `sqlite_master` and its pragmas.
pub fn read_schema(c: &Connection) -> Result<Schema> {
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
                    data_type: sqlite_type_meaning(&r.get::<_, String>(2)?),
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
            .filter(|c| !boolean_check(&table, c))
            .map(|c| check_meaning(&c))
            .collect();
        out.tables.insert(name, table);
    }
    Ok(out)
}

/// Whether `check` is the `col IN (0, 1)` that SQLAlchemy 1.3 put on every `Boolean` column
/// on SQLite: by meaning nothing the contract's BOOLEAN column lacks (what the app writes
/// there is 0 or 1 either way), so not a difference, and gone after a rebuild.
fn boolean_check(table: &Table, check: &str) -> bool {
    let n = normalize_expr(check).replace(' ', "");
    let Some(column) = n.strip_suffix("in(0,1)") else {
        return false;
    };
    let column = column.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']');
    table
        .columns
        .get(column)
        .is_some_and(|c| c.data_type == "boolean")
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

/// Names of the tables in the file (SQLite's own aside), sorted.
pub fn table_names(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut names = rows.collect::<rusqlite::Result<Vec<String>>>()?;
    names.sort();
    Ok(names)
}

/// Whether the database has a table of that name.
pub fn has_table(c: &Connection, name: &str) -> Result<bool> {
    Ok(
        c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([name])?,
    )
}

/// Column names of `table`, in order.
pub fn column_names(c: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare(&format!(
        "PRAGMA table_info({})",
        crate::db::quote_ident(table)
    ))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_13_boolean_checks_mean_nothing_more() {
        let mut t = Table::default();
        for (name, ty) in [("is_active", "boolean"), ("rating", "real")] {
            t.columns.insert(
                name.into(),
                Column {
                    data_type: ty.into(),
                    nullable: true,
                    default: None,
                },
            );
        }
        assert!(boolean_check(&t, "is_active IN (0, 1)"));
        assert!(boolean_check(&t, "\"is_active\" in (0,1)"));
        assert!(!boolean_check(&t, "rating IN (0, 1)"));
        assert!(!boolean_check(&t, "is_active IN (0, 1, 2)"));
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
}
