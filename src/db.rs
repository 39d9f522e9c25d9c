//! An open database of either dialect: the one `enum` that dialect differences are matched on,
//! and the few operations every command needs from both.

use crate::error::Result;

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The folder name under `sql/`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// An open connection.
pub enum Db {
    /// A PostgreSQL session (its connection task runs on the tokio runtime).
    Postgres(tokio_postgres::Client),
    /// A SQLite file.
    Sqlite(rusqlite::Connection),
}

impl Db {
    /// The dialect of this connection.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Names of the ordinary tables in the working schema (`public` on PostgreSQL), sorted.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let mut names = match self {
            Db::Postgres(c) => c
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect(),
            Db::Sqlite(c) => {
                let mut stmt = c.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()?
            }
        };
        names.sort();
        Ok(names)
    }
}
