//! SQLite's catalog, read: the tables of a file (`sqlite_master` and its pragmas) into the
//! comparable [`Schema`] model, with the CHECK clauses found in each table's SQL; table and
//! column names.

use crate::error::Result;
use crate::migrations::HISTORY_TABLE;
use crate::schema::{
    check_meaning, normalize_expr, sqlite_type_meaning, Column, ConstraintKey, ForeignKey, Index,
    Schema, Spelling, Table,
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
            table.spelling.order.push(col.clone());
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
        record_names(&mut table.spelling, &sql);
        out.tables.insert(name, table);
    }
    read_triggers(c, &mut out)?;
    Ok(out)
}

/// The triggers of the tables in `out`, by name.
fn read_triggers(c: &Connection, out: &mut Schema) -> Result<()> {
    let mut stmt = c.prepare("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")?;
    let triggers: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (table, trigger) in triggers {
        if let Some(t) = out.tables.get_mut(&table) {
            t.triggers.insert(trigger);
        }
    }
    Ok(())
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

/// The names a `CREATE TABLE` statement gives its constraints, kept in `spelling`.
fn record_names(spelling: &mut Spelling, create_sql: &str) {
    for (kind, constraint, body) in named_constraints(create_sql) {
        let columns = || body.split(',').map(unquote).collect::<Vec<_>>();
        let key = match kind.as_str() {
            "check" => Spelling::key(&ConstraintKey::Check(&check_meaning(&body))),
            "unique" => Spelling::key(&ConstraintKey::Unique(&columns())),
            "foreign" => Spelling::key(&ConstraintKey::ForeignKey(&columns())),
            _ => continue,
        };
        spelling.names.insert(key, constraint);
    }
}

/// An identifier without its quotes.
fn unquote(s: &str) -> String {
    let s = s.trim();
    let quoted = s.len() >= 2
        && matches!(
            (s.as_bytes()[0], s.as_bytes()[s.len() - 1]),
            (b'"', b'"') | (b'`', b'`') | (b'[', b']')
        );
    if quoted {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// The `CONSTRAINT name KIND (body)` clauses of a `CREATE TABLE` statement, as (kind: `check`,
/// `unique`, `foreign` or `primary`, name, what is inside the parentheses): SQLite keeps
/// constraint names only in the statement's text.
pub fn named_constraints(create_sql: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let words = words(create_sql);
    for (i, (w, _)) in words.iter().enumerate() {
        if !w.eq_ignore_ascii_case("constraint") {
            continue;
        }
        let (Some((name, _)), Some((kind, _))) = (words.get(i + 1), words.get(i + 2)) else {
            continue;
        };
        let kind = kind.to_ascii_lowercase();
        // The body: the first parenthesis after the kind word (after KEY for FOREIGN KEY).
        let Some(&(_, at)) = words.get(i + 2) else {
            continue;
        };
        let Some(open) = create_sql[at..].find('(').map(|o| at + o) else {
            continue;
        };
        if let Some(body) = parenthesised(create_sql, open) {
            out.push((kind, unquote(name), body));
        }
    }
    out
}

/// The words of SQL text outside quotes and parentheses' contents aside, with where each
/// ends; a quoted identifier is one word.
fn words(sql: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for (i, ch) in sql.char_indices() {
        match quote {
            // A string's text is no word; a quoted identifier is one.
            Some('\'') if ch == '\'' => quote = None,
            Some('\'') => {}
            Some(q) => {
                current.push(ch);
                if ch == q || (q == '[' && ch == ']') {
                    quote = None;
                }
            }
            None if ch == '"' || ch == '`' || ch == '[' => {
                current.push(ch);
                quote = Some(ch);
            }
            None if ch == '\'' => quote = Some('\''),
            None if ch.is_alphanumeric() || ch == '_' => current.push(ch),
            None => {
                if !current.is_empty() {
                    out.push((std::mem::take(&mut current), i));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push((current, sql.len()));
    }
    out
}

/// The text inside the parenthesis opening at byte `open`, up to its match.
fn parenthesised(sql: &str, open: usize) -> Option<String> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, ch) in sql[open..].char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(sql[open + 1..open + i].to_string());
                }
            }
            _ => {}
        }
    }
    None
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
        if let Some(body) = parenthesised(create_sql, open) {
            from = open + body.len() + 1;
            out.push(body);
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
