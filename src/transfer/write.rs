//! Writing rows into a target inside one transaction: binary `COPY` into PostgreSQL, prepared
//! inserts into SQLite; then identity sequences past the largest id, and the read-back
//! checksum that `copy` compares with the source's before committing.

use super::read::{pg_raw, select_sql, sqlite_raw, Checksum, TableSpec};
use super::value::{format_sqlite, ColKind, Value};
use crate::error::{Error, Result};
use bytes::BytesMut;
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

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The `COPY ... FROM STDIN` statement for `spec`.
pub fn copy_sql(spec: &TableSpec) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| quoted(c)).collect();
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        quoted(&spec.name),
        cols.join(", ")
    )
}

/// The `INSERT` statement for `spec` on SQLite.
pub fn insert_sql(spec: &TableSpec) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| quoted(c)).collect();
    let marks: Vec<String> = (1..=spec.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quoted(&spec.name),
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
    let mut sum = Checksum::default();
    while let Some(row) = stream.next().await {
        let row = row?;
        let mut values = Vec::with_capacity(spec.columns.len());
        for (i, kind) in spec.target_kinds.iter().enumerate() {
            let raw = pg_raw(&row, i, *kind)?;
            values.push(super::value::convert(raw, *kind).map_err(Error::data)?);
        }
        sum.add(&values);
    }
    Ok(sum.result())
}

/// Reads `spec` back from SQLite and checksums it as the reader did.
pub fn sqlite_checksum(c: &rusqlite::Connection, spec: &TableSpec) -> Result<(u64, u64)> {
    let mut stmt = c.prepare(&select_sql(spec, "rowid"))?;
    let mut rows = stmt.query([])?;
    let mut sum = Checksum::default();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(spec.columns.len());
        for (i, kind) in spec.target_kinds.iter().enumerate() {
            let raw = sqlite_raw(row.get_ref(i)?);
            values.push(super::value::convert(raw, *kind).map_err(Error::data)?);
        }
        sum.add(&values);
    }
    Ok(sum.result())
}

/// Moves every identity sequence past the largest id, so the app's next insert works.
pub async fn reset_sequences(
    tx: &tokio_postgres::Transaction<'_>,
    tables: &[String],
) -> Result<()> {
    for t in tables {
        // is_called = true: the next id is max + 1 (an exhausted int4 fails on that insert,
        // not here); an empty table starts again at 1.
        let sql = format!(
            "SELECT CASE WHEN m IS NULL THEN setval(s, 1, false) ELSE setval(s, m, true) END \
             FROM (SELECT max(id) AS m FROM {q}) AS x, pg_get_serial_sequence('{lit}', 'id') AS s \
             WHERE s IS NOT NULL",
            q = quoted(t),
            lit = quoted(t).replace('\'', "''")
        );
        tx.batch_execute(&sql)
            .await
            .map_err(|e| Error::from(e).context(format!("resetting the id sequence of {t}")))?;
    }
    Ok(())
}
