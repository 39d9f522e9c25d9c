//! Writing rows into a target inside one transaction: binary `COPY` into PostgreSQL, prepared
//! inserts into SQLite; then identity sequences past the largest id, and the read-back
//! checksum that `copy` compares with the source's before committing.

use super::read::{pg_raw, select_sql, sqlite_raw, Checksum, TableSpec};
use super::value::{format_sqlite, json_null_rule, ColKind, Value};
use crate::db::postgres::error::describe;
use crate::db::postgres::watch::{pg, SharedWatch};
use crate::db::sqlite::Sqlite;
use crate::db::{quote_ident, Database};
use crate::error::{Error, Kind, Result};
use bytes::BytesMut;
use std::pin::Pin;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Float(f) => f.to_sql(ty, out),
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Timestamp(t) => t.to_sql(ty, out),
            Value::Json(v) => v.to_sql(ty, out),
            Value::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // The column kinds decide the wire type; see `pg_type`.
        true
    }

    to_sql_checked!();
}

/// The binary COPY type for a column kind.
pub fn pg_type(kind: ColKind) -> Type {
    match kind {
        ColKind::Int { int4: true } => Type::INT4,
        ColKind::Int { int4: false } => Type::INT8,
        ColKind::Float => Type::FLOAT8,
        ColKind::Text => Type::TEXT,
        ColKind::Bool => Type::BOOL,
        ColKind::Timestamp => Type::TIMESTAMPTZ,
        ColKind::Json => Type::JSONB,
        ColKind::Bytes => Type::BYTEA,
    }
}

/// The `COPY ... FROM STDIN` statement for `spec`.
pub fn copy_sql(spec: &TableSpec) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| quote_ident(c)).collect();
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        quote_ident(&spec.name),
        cols.join(", ")
    )
}

/// The `INSERT` statement for `spec` on SQLite.
pub fn insert_sql(spec: &TableSpec) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| quote_ident(c)).collect();
    let marks: Vec<String> = (1..=spec.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_ident(&spec.name),
        cols.join(", "),
        marks.join(", ")
    )
}

/// Binds one value for SQLite in the spelling SQLAlchemy uses (booleans 0/1, timestamps as
/// `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC, JSON as text).
pub fn sqlite_value(v: &Value) -> Result<rusqlite::types::Value, String> {
    use rusqlite::types::Value as S;
    Ok(match v {
        Value::Null => S::Null,
        Value::Int(i) => S::Integer(*i),
        // SQLite turns NaN into NULL: refuse instead of losing the value.
        Value::Float(f) if f.is_nan() => return Err("NaN, which SQLite would store as NULL".into()),
        Value::Float(f) => S::Real(*f),
        Value::Text(t) => S::Text(t.clone()),
        Value::Bool(b) => S::Integer(*b as i64),
        Value::Timestamp(t) => S::Text(format_sqlite(*t)),
        Value::Json(j) => S::Text(j.to_string()),
        Value::Bytes(b) => S::Blob(b.clone()),
    })
}

/// Reads `spec` back from a PostgreSQL transaction and checksums it as the reader did.
pub async fn pg_checksum(
    tx: &tokio_postgres::Transaction<'_>,
    spec: &TableSpec,
) -> Result<(u64, u64)> {
    use futures_util::StreamExt;
    let stream = tx
        .query_raw(&select_sql(spec, "1"), std::iter::empty::<i32>())
        .await?;
    futures_util::pin_mut!(stream);
    let mut sum = Checksum::new(true);
    while let Some(row) = stream.next().await {
        let row = row?;
        let mut values = Vec::with_capacity(spec.columns.len());
        for (i, kind) in spec.target_kinds.iter().enumerate() {
            let raw = pg_raw(&row, i, *kind)?;
            let v = super::value::convert(raw, *kind).map_err(Error::data)?;
            values.push(json_null_rule(v, *kind, spec.target_nullable[i]));
        }
        sum.add(&values);
    }
    Ok(sum.result())
}

/// Reads `spec` back from SQLite and checksums it as the reader did.
pub fn sqlite_checksum(c: &rusqlite::Connection, spec: &TableSpec) -> Result<(u64, u64)> {
    let mut stmt = c.prepare(&select_sql(spec, "rowid"))?;
    let mut rows = stmt.query([])?;
    let mut sum = Checksum::new(true);
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(spec.columns.len());
        for (i, kind) in spec.target_kinds.iter().enumerate() {
            let raw = sqlite_raw(row.get_ref(i)?);
            let v = super::value::convert(raw, *kind).map_err(Error::data)?;
            values.push(json_null_rule(v, *kind, spec.target_nullable[i]));
        }
        sum.add(&values);
    }
    Ok(sum.result())
}

/// Moves every identity sequence past the largest id, so the app's next insert works. With
/// `ALTER SEQUENCE ... RESTART`, which a rollback undoes: `setval` is not transactional, and an
/// interrupted `--replace` would keep the old rows with their sequences wound back.
pub async fn reset_sequences(
    tx: &tokio_postgres::Transaction<'_>,
    tables: &[String],
    high_water: &[(String, i64)],
) -> Result<()> {
    use tokio_postgres::SimpleQueryMessage::Row;
    for t in tables {
        let context = || format!("resetting the id sequence of {t}");
        let lit = quote_ident(t).replace('\'', "''");
        let sql = format!(
            "SELECT s, (SELECT max(id)::bigint FROM {q})::text, \
                    (SELECT seqmax FROM pg_sequence WHERE seqrelid = s::regclass)::text \
             FROM pg_get_serial_sequence('{lit}', 'id') AS s WHERE s IS NOT NULL",
            q = quote_ident(t)
        );
        let rows = tx
            .simple_query(&sql)
            .await
            .map_err(|e| Error::from(e).context(context()))?;
        let Some(Row(row)) = rows.iter().find(|m| matches!(m, Row(_))) else {
            continue;
        };
        let sequence = row.get(0).unwrap_or_default();
        // The source's high-water mark counts as a row: ids of its deleted rows stay used.
        let mark = high_water.iter().find(|(n, _)| n == t).map(|(_, h)| *h);
        let max = match (row.get(1).and_then(|m| m.parse::<i64>().ok()), mark) {
            (Some(m), Some(h)) => Some(m.max(h)),
            (m, h) => m.or(h),
        };
        let next = match max {
            // An empty table with no mark starts again where the sequence starts.
            None => String::new(),
            // The next id is max + 1; an exhausted int4 fails on that insert, not here.
            Some(max) => {
                let seqmax: i64 = row.get(2).and_then(|s| s.parse().ok()).unwrap_or(i64::MAX);
                format!(" WITH {}", max.saturating_add(1).min(seqmax))
            }
        };
        tx.batch_execute(&format!("ALTER SEQUENCE {sequence} RESTART{next}"))
            .await
            .map_err(|e| Error::from(e).context(context()))?;
    }
    Ok(())
}

/// Foreign keys and secondary indexes of `tables`, dropped for a bulk load and rebuilt after it
/// inside the same transaction: PostgreSQL then checks each constraint once over the whole
/// table instead of once per row (the difference between about 3 s and 16 s for a million
/// rows). A violation fails the rebuild, which names the constraint and the key, and the
/// transaction takes everything back.
pub struct Deferred {
    recreate: Vec<String>,
}

impl Deferred {
    /// Drops the foreign keys and non-constraint indexes of `tables` (inside `tx`).
    pub async fn suspend(
        tx: &tokio_postgres::Transaction<'_>,
        tables: &[String],
    ) -> Result<Deferred> {
        let fks = tx
            .query(
                "SELECT format('ALTER TABLE %I DROP CONSTRAINT %I', cl.relname, c.conname), \
                        format('ALTER TABLE %I ADD CONSTRAINT %I %s', cl.relname, c.conname, pg_get_constraintdef(c.oid)) \
                 FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid \
                 WHERE c.contype = 'f' AND cl.relnamespace = current_schema()::regnamespace \
                   AND cl.relname = ANY($1) ORDER BY 1",
                &[&tables],
            )
            .await?;
        let indexes = tx
            .query(
                "SELECT format('DROP INDEX %I', i.relname), pg_get_indexdef(i.oid) \
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
                 WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1) \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY 1",
                &[&tables],
            )
            .await?;
        let mut drop = String::new();
        let mut recreate = Vec::new();
        for row in indexes.iter().chain(&fks) {
            drop.push_str(row.get::<_, &str>(0));
            drop.push_str(";\n");
        }
        // Indexes first (the unique ones check duplicates), then the foreign keys.
        for row in indexes.iter().chain(&fks) {
            recreate.push(row.get::<_, String>(1));
        }
        tx.batch_execute(&drop).await?;
        Ok(Deferred { recreate })
    }

    /// Rebuilds what [`Deferred::suspend`] dropped, checking every row.
    pub async fn restore(self, tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
        for sql in &self.recreate {
            tx.batch_execute(sql).await.map_err(|e| {
                if !is_data_error(&e) {
                    return Error::from(e).context("rebuilding indexes and foreign keys");
                }
                Error::data(format!(
                    "the loaded rows break a constraint: {}; nothing was written",
                    describe(&e)
                ))
            })?;
        }
        Ok(())
    }
}

/// The open transaction a load writes into, with what each dialect needs on the way.
pub enum Sink<'a> {
    /// PostgreSQL: binary COPY per table; constraints rebuilt at commit.
    Postgres {
        /// The load's transaction.
        tx: tokio_postgres::Transaction<'a>,
        /// Bounds each wait for the server's answer (`MIGRATE_NET_TIMEOUT`).
        watch: SharedWatch,
        /// The table being copied.
        writer: Option<Pin<Box<BinaryCopyInWriter>>>,
        /// Foreign keys and indexes to rebuild before commit.
        deferred: Option<Deferred>,
    },
    /// SQLite: prepared inserts in one `BEGIN IMMEDIATE` transaction on the worker thread.
    Sqlite {
        /// The load's transaction.
        txn: SqliteTxn<'a>,
        /// The INSERT for the current table.
        sql: String,
    },
}

/// A SQLite transaction spanning several worker jobs: rolled back (queued on the worker)
/// unless committed.
pub struct SqliteTxn<'a> {
    db: &'a Sqlite,
    open: bool,
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        if self.open {
            self.db.post(|c| {
                let _ = c.execute_batch("ROLLBACK");
            });
        }
    }
}

impl<'a> Sink<'a> {
    /// Opens the transaction; `empty_first` deletes the rows `tables` hold (for `--replace`).
    pub async fn begin(
        db: &'a mut Database,
        tables: &[String],
        empty_first: bool,
    ) -> Result<Sink<'a>> {
        match db {
            Database::Postgres(session) => {
                let watch = session.watch();
                session.watch_for_silence().await?;
                let begin = pg(session.client_mut().transaction());
                let tx = watch.short("starting the load", begin).await?;
                watch.learn_pid_in(&tx).await?;
                if empty_first {
                    let list: Vec<String> = tables.iter().map(|t| quote_ident(t)).collect();
                    let truncate = format!("TRUNCATE {}", list.join(", "));
                    let emptying = "emptying the tables (--replace)";
                    watch
                        .long(emptying, false, pg(tx.batch_execute(&truncate)))
                        .await?;
                }
                let suspend = Deferred::suspend(&tx, tables);
                let deferred = Some(
                    watch
                        .long("dropping indexes for the load", false, suspend)
                        .await?,
                );
                Ok(Sink::Postgres {
                    tx,
                    watch,
                    writer: None,
                    deferred,
                })
            }
            Database::Sqlite(lite) => {
                lite.begin_immediate().await?;
                let txn = SqliteTxn {
                    db: lite,
                    open: true,
                };
                // Foreign keys checked at COMMIT (and named before it, see `commit`), as
                // PostgreSQL's deferred rebuild does: the order of the tables in a file does
                // not matter on either.
                txn.db
                    .call(|c| Ok(c.execute_batch("PRAGMA defer_foreign_keys = ON")?))
                    .await?;
                if empty_first {
                    let tables = tables.to_vec();
                    txn.db
                        .call(move |c| {
                            for t in tables.iter().rev() {
                                c.execute_batch(&format!("DELETE FROM {}", quote_ident(t)))?;
                            }
                            Ok(())
                        })
                        .await?;
                }
                Ok(Sink::Sqlite {
                    txn,
                    sql: String::new(),
                })
            }
        }
    }

    /// Starts loading `spec`.
    pub async fn start_table(&mut self, spec: &TableSpec) -> Result<()> {
        match self {
            Sink::Postgres {
                tx, writer, watch, ..
            } => {
                let what = format!("COPY into {}", spec.name);
                let copy = watch
                    .long(&what, false, pg(tx.copy_in(&copy_sql(spec))))
                    .await?;
                let types: Vec<_> = spec.target_kinds.iter().map(|k| pg_type(*k)).collect();
                *writer = Some(Box::pin(BinaryCopyInWriter::new(copy, &types)));
            }
            Sink::Sqlite { sql, .. } => *sql = insert_sql(spec),
        }
        Ok(())
    }

    /// Writes rows of `spec`.
    pub async fn write_rows(&mut self, spec: &TableSpec, rows: Vec<Vec<Value>>) -> Result<()> {
        match self {
            Sink::Postgres { writer, watch, .. } => {
                let Some(writer) = writer.as_mut() else {
                    return Err(Error::internal("rows before their table"));
                };
                // Writing waits only when the server stops reading: watched like a statement.
                let write = async {
                    for row in &rows {
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                        writer
                            .as_mut()
                            .write(&refs)
                            .await
                            .map_err(|e| load_error(&spec.name, row, e))?;
                    }
                    Ok::<(), Error>(())
                };
                watch
                    .long(&format!("COPY into {}", spec.name), false, write)
                    .await?;
            }
            Sink::Sqlite { txn, sql } => {
                let sql = sql.clone();
                let table = spec.name.clone();
                let columns = spec.columns.clone();
                txn.db
                    .call(move |c| insert_rows(c, &sql, &table, &columns, &rows))
                    .await?;
            }
        }
        Ok(())
    }

    /// Ends the current table.
    pub async fn finish_table(&mut self, spec: &TableSpec) -> Result<()> {
        if let Sink::Postgres { writer, watch, .. } = self {
            if let Some(mut w) = writer.take() {
                let finish = async {
                    w.as_mut()
                        .finish()
                        .await
                        .map_err(|e| load_error(&spec.name, &[], e))
                };
                watch
                    .long(&format!("COPY into {}", spec.name), false, finish)
                    .await?;
            }
        }
        Ok(())
    }

    /// Reads `spec` back inside the transaction: (rows, checksum).
    pub async fn checksum(&self, spec: &TableSpec) -> Result<(u64, u64)> {
        match self {
            Sink::Postgres { tx, watch, .. } => {
                let what = format!("reading {} back", spec.name);
                watch.long(&what, false, pg_checksum(tx, spec)).await
            }
            Sink::Sqlite { txn, .. } => {
                let spec = spec.clone();
                txn.db.call(move |c| sqlite_checksum(c, &spec)).await
            }
        }
    }

    /// Rebuilds deferred constraints, moves sequences past the largest id, and commits.
    pub async fn commit(self, tables: &[String], high_water: &[(String, i64)]) -> Result<()> {
        match self {
            Sink::Postgres {
                tx,
                deferred,
                watch,
                ..
            } => {
                if let Some(d) = deferred {
                    let start = std::time::Instant::now();
                    let rebuilding = "rebuilding indexes and foreign keys";
                    watch.long(rebuilding, false, d.restore(&tx)).await?;
                    log::info!(
                        "indexes and foreign keys rebuilt in {:.2} s",
                        start.elapsed().as_secs_f64()
                    );
                }
                let sequences = reset_sequences(&tx, tables, high_water);
                watch
                    .long("moving the id sequences", false, sequences)
                    .await?;
                let committed = watch
                    .long("COMMIT of the load", true, pg(tx.commit()))
                    .await;
                watch.transaction_ended();
                committed?;
            }
            Sink::Sqlite { mut txn, .. } => {
                txn.db.call(|c| refuse_orphans(c)).await?;
                txn.db.call(|c| Ok(c.execute_batch("COMMIT")?)).await?;
                txn.open = false;
            }
        }
        Ok(())
    }
}

/// Refuses a load that left a row whose foreign key finds no parent (SQLite, before COMMIT:
/// the deferred check would only say "FOREIGN KEY constraint failed"), naming the row.
fn refuse_orphans(c: &rusqlite::Connection) -> Result<()> {
    let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
    let orphan = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .next()
        .transpose()?;
    match orphan {
        Some((table, rowid, parent)) => Err(Error::data(format!(
            "the loaded rows break a constraint: table {table}, row id {}, refers to a row \
             {parent} does not have; nothing was written",
            rowid.map_or("?".to_string(), |r| r.to_string())
        ))),
        None => Ok(()),
    }
}

/// Inserts `rows` into `table` with the prepared `sql`, naming the row and column of a value
/// SQLite cannot take.
fn insert_rows(
    c: &rusqlite::Connection,
    sql: &str,
    table: &str,
    columns: &[String],
    rows: &[Vec<Value>],
) -> Result<()> {
    let mut stmt = c.prepare_cached(sql)?;
    for row in rows {
        let mut params = Vec::with_capacity(row.len());
        for (i, v) in row.iter().enumerate() {
            params.push(sqlite_value(v).map_err(|why| {
                Error::data(format!(
                    "table {table}, row id {}, column {}: {why}",
                    row_id(row),
                    columns[i]
                ))
            })?);
        }
        stmt.execute(rusqlite::params_from_iter(params))
            .map_err(|e| Error::data(format!("table {table}, row id {}: {e}", row_id(row))))?;
    }
    Ok(())
}

fn row_id(row: &[Value]) -> String {
    match row.first() {
        Some(Value::Int(i)) => i.to_string(),
        _ => "?".into(),
    }
}

/// Whether the server refused the data itself (SQLSTATE classes 22, data exception, and 23,
/// integrity constraint violation), as opposed to the connection, the server or the disk.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(&db.code().code()[..2], "22" | "23"))
}

fn load_error(table: &str, row: &[Value], e: tokio_postgres::Error) -> Error {
    if !is_data_error(&e) {
        return Error::from(e).context(format!("loading table {table}"));
    }
    let at = if row.is_empty() {
        String::new()
    } else {
        format!(", row id {}", row_id(row))
    };
    Error::new(
        Kind::Data,
        format!(
            "loading table {table}{at} failed: {}; nothing was written",
            describe(&e)
        ),
    )
}
