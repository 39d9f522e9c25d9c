//! Temporary SQLite databases: a file path in a fresh directory, its `sqlite:` URL, and SQL
//! run on it with rusqlite.

use std::path::{Path, PathBuf};

/// A SQLite file path in a temporary directory (the file itself is not created).
pub struct TempSqlite {
    dir: tempfile::TempDir,
}

impl TempSqlite {
    /// A new empty directory.
    pub fn new() -> TempSqlite {
        TempSqlite {
            dir: tempfile::Builder::new()
                .prefix("yf-sqlite-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `<dir>/yogaflow.db`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("yogaflow.db")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `sqlite:////abs/path/yogaflow.db`.
    pub fn url(&self) -> String {
        format!("sqlite:///{}", self.path().display())
    }

    /// Runs SQL with rusqlite; rows as `a|b` lines, trimmed.
    pub fn sqlite(&self, sql: &str) -> String {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        let mut lines = Vec::new();
        for stmt in split_statements(sql) {
            let mut st = conn
                .prepare(&stmt)
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
            let n = st.column_count();
            let mut rows = st.query([]).unwrap_or_else(|e| panic!("{stmt}: {e}"));
            while let Some(row) = rows.next().unwrap() {
                let cells: Vec<String> = (0..n)
                    .map(|i| match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => v.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
                    })
                    .collect();
                lines.push(cells.join("|"));
            }
        }
        lines.join("\n").trim().to_string()
    }
}

impl Default for TempSqlite {
    fn default() -> Self {
        TempSqlite::new()
    }
}

/// Splits on `;` outside quotes (enough for test SQL).
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for ch in sql.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}
