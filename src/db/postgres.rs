//! The PostgreSQL side of the seam: a session (its connection task runs on the runtime), the
//! migration lock on it, history, steps in one transaction each, the catalog, and the one
//! place that turns a PostgreSQL error into a message.

use super::{Outcome, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, HISTORY_DDL};
use crate::schema::{self, Schema};
use crate::url::PgUrl;
use std::time::{Duration, Instant};
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::{Client, SimpleQueryMessage};

/// An open PostgreSQL session.
pub struct Postgres {
    client: Client,
    /// Whether this session holds the advisory lock.
    locked: bool,
}

impl Postgres {
    /// Connects, waiting up to `wait` for the server (see `connect`).
    pub async fn connect(url: &PgUrl, wait: Duration) -> Result<Postgres> {
        Ok(Postgres {
            client: crate::connect::connect_pg(url, wait).await?,
            locked: false,
        })
    }

    /// The session, for what only PostgreSQL does (bulk COPY).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The session, mutably (transactions borrow it).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .client
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        names.sort();
        Ok(names)
    }

    pub(super) async fn read_history(&self) -> Result<Option<Vec<Applied>>> {
        // The simple protocol: no prepared statement to clash with a pooler's.
        let rows = match self.client.simple_query(migrate::HISTORY_SELECT).await {
            Ok(msgs) => msgs
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => {
                        Some([0, 1, 2, 3].map(|i| r.get(i).map(str::to_string)))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => return Ok(None),
            Err(e) => return Err(Error::from(e).context("reading the migration history")),
        };
        rows.into_iter()
            .map(migrate::parse_history_row)
            .collect::<Result<_>>()
            .map(Some)
    }

    pub(super) async fn ensure_history(&self) -> Result<()> {
        self.client.batch_execute(HISTORY_DDL).await?;
        Ok(())
    }

    pub(super) async fn lock(&mut self, timeout: Duration) -> Result<()> {
        crate::lock::acquire(&self.client, timeout).await?;
        self.locked = true;
        Ok(())
    }

    pub(super) async fn unlock(&mut self) -> Result<()> {
        if std::mem::take(&mut self.locked) {
            crate::lock::release(&self.client).await?;
        }
        Ok(())
    }

    pub(super) async fn run_step(&mut self, step: Step<'_>) -> Result<Outcome> {
        let start = Instant::now();
        let tx = self.client.transaction().await?;
        match step {
            Step::Apply(m) => {
                tx.batch_execute(m.up)
                    .await
                    .map_err(|e| migration_error(m, m.up, "failed", e))?;
                tx.batch_execute(&migrate::record_sql(m)).await?;
            }
            Step::Undo(m) => {
                tx.batch_execute(m.down)
                    .await
                    .map_err(|e| migration_error(m, m.down, "could not be undone", e))?;
                tx.batch_execute(&migrate::delete_sql(m)).await?;
            }
            Step::Record(ms) => tx.batch_execute(&migrate::record_all_sql(ms)).await?,
        }
        tx.commit().await?;
        Ok(Outcome::Done(start.elapsed()))
    }

    pub(super) async fn live_schema(&self) -> Result<Schema> {
        let name: String = self
            .client
            .query_one("SELECT current_schema()::text", &[])
            .await?
            .get(0);
        schema::read_pg(&self.client, &name).await
    }

    /// Applies the migrations to a scratch schema inside a transaction that is rolled back
    /// (so it needs CREATE on the database, and leaves nothing behind).
    pub(super) async fn expected_schema(&self, version: i32) -> Result<Schema> {
        let c = &self.client;
        let scratch = format!("yogaflow_expected_{}", std::process::id());
        c.batch_execute(&format!(
            "BEGIN; CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}"
        ))
        .await
        .map_err(|e| {
            Error::from(e).context("building the expected schema needs CREATE on the database")
        })?;
        let result = async {
            for m in migrate::migrations(super::Dialect::Postgres)
                .iter()
                .filter(|m| m.version <= version)
            {
                c.batch_execute(m.up)
                    .await
                    .map_err(|e| migration_error(m, m.up, "failed on a scratch schema", e))?;
            }
            schema::read_pg(c, &scratch).await
        }
        .await;
        c.batch_execute("ROLLBACK").await?;
        result
    }

    pub(super) async fn row_counts(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for t in tables {
            let sql = format!("SELECT count(*) FROM {}", super::quote_ident(t));
            out.push((t.clone(), self.client.query_one(&sql, &[]).await?.get(0)));
        }
        Ok(out)
    }
}

/// A PostgreSQL error as one line: the server's message, its detail in parentheses, SQLSTATE,
/// the position in `sql`, hint and context for an error the server sent; the cause chain (connection refused, TLS) otherwise.
/// Every message built from a PostgreSQL error goes through here (redacted).
pub fn describe(e: &tokio_postgres::Error) -> String {
    describe_in(e, None)
}

/// [`describe`], with the line and column of the error's position in `sql` when it has one.
pub fn describe_in(e: &tokio_postgres::Error, sql: Option<&str>) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m.push_str(&format!(" (SQLSTATE {})", db.code().code()));
            if let (Some(sql), Some(ErrorPosition::Original(pos))) = (sql, db.position()) {
                let (line, col) = migrate::line_col(sql, *pos as usize);
                m.push_str(&format!(" at line {line}, column {col}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            if let Some(w) = db.where_() {
                m.push_str(&format!("; context: {w}"));
            }
            m
        }
        None => {
            let mut parts = vec![e.to_string()];
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                cause = c.source();
            }
            parts.join(": ")
        }
    };
    crate::redact::scrub(&text)
}

/// A migration's failure: the migration, the server's message, SQLSTATE and the position in
/// the file.
fn migration_error(
    m: &migrate::Migration,
    sql: &str,
    verb: &str,
    e: tokio_postgres::Error,
) -> Error {
    if e.as_db_error().is_none() {
        return Error::from(e).context(format!("migration {m} {verb}"));
    }
    Error::new(
        Kind::Migration,
        format!(
            "migration {m} {verb} and was rolled back: {}",
            describe_in(&e, Some(sql))
        ),
    )
}
