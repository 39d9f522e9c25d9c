//! Sources of rows: a SQLite file, a PostgreSQL database or a JSON export, each read on a
//! thread of its own (so reading, converting and writing use both cores) and handed to the
//! writer as [`Event`]s through a bounded channel: memory stays flat whatever the size.

use super::value::{convert, json_null_rule, raw_from_json, ColKind, Raw, Value};
use crate::db::quote_ident;
use crate::error::{excerpt, Error, Result};
use crate::url::{PgUrl, SqliteUrl};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::hash::Hasher;
use tokio::sync::mpsc::Sender;

/// Rows per batch sent to the writer.
pub const BATCH: usize = 1024;
/// Batches in flight between reader and writer.
pub const CHANNEL: usize = 8;

/// One table to read: its columns, how the source stores them, what the target takes.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Columns, in the order values are sent.
    pub columns: Vec<String>,
    /// How the source stores each column (for typed PostgreSQL reads).
    pub source_kinds: Vec<ColKind>,
    /// What each target column takes.
    pub target_kinds: Vec<ColKind>,
    /// Whether each target column allows NULL (for the JSON null rule, see `value`).
    pub target_nullable: Vec<bool>,
    /// Whether the reader computes the content checksum (only `copy` compares it).
    pub checksum: bool,
}

/// What a reader sends.
pub enum Event {
    /// A JSON export's header: its schema version.
    Header {
        /// Schema version the export was taken at.
        schema_version: i32,
    },
    /// A table starts; rows follow.
    Table(TableSpec),
    /// Converted rows of the current table.
    Rows(Vec<Vec<Value>>),
    /// The current table is complete.
    TableDone {
        /// Rows read.
        rows: u64,
        /// Order-independent content checksum of the converted rows.
        checksum: u64,
    },
    /// Reading failed; nothing more follows.
    Failed(Error),
    /// Everything was read. A channel that closes without it means the reader died (a
    /// panic): never taken for a complete read.
    End,
}

/// A reader thread and the channel it sends on.
pub struct Reader {
    rx: tokio::sync::mpsc::Receiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    /// Starts `read` on a thread of its own, sending on a bounded channel.
    pub fn spawn(read: impl FnOnce(Sender<Event>) + Send + 'static) -> Result<Reader> {
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL);
        let thread = std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || read(tx))
            .map_err(|e| Error::internal("cannot start the reader thread").with_source(e))?;
        Ok(Reader {
            rx,
            thread: Some(thread),
        })
    }

    /// The next event. The reader ends with [`Event::End`] or [`Event::Failed`]; a channel that
    /// closes without either (the thread panicked) is an error, never the end of the data.
    pub async fn next(&mut self) -> Result<Event> {
        match self.rx.recv().await {
            Some(Event::End) => {
                self.join()?;
                Ok(Event::End)
            }
            Some(event) => Ok(event),
            None => {
                self.join()?;
                Err(Error::internal(
                    "the reader stopped without finishing its work; nothing was written",
                ))
            }
        }
    }

    /// Waits for the thread, which has sent its last event (or dropped its sender).
    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(|t| t.join()) {
            Some(Err(_)) => Err(Error::internal(
                "the reader thread panicked (its message is above); nothing was written",
            )),
            _ => Ok(()),
        }
    }
}

/// Order-independent checksum of a table: the wrapping sum of each row's hash.
#[derive(Clone, Copy)]
pub struct Checksum {
    sum: u64,
    rows: u64,
    enabled: bool,
}

impl Checksum {
    /// A checksum that hashes rows only when `enabled` (it always counts them).
    pub fn new(enabled: bool) -> Checksum {
        Checksum {
            sum: 0,
            rows: 0,
            enabled,
        }
    }

    /// Adds one row.
    pub fn add(&mut self, row: &[Value]) {
        self.rows += 1;
        if !self.enabled {
            return;
        }
        // Source and target are hashed in the same process, so std's hasher is stable enough.
        let mut h = std::hash::DefaultHasher::new();
        for v in row {
            v.hash_into(&mut h);
        }
        self.sum = self.sum.wrapping_add(h.finish());
    }

    /// (rows, checksum).
    pub fn result(&self) -> (u64, u64) {
        (self.rows, self.sum)
    }
}

/// Converts one row of raw values for `spec`, naming table, row id, column and value when a
/// value does not fit. `original(i)` gives column `i`'s raw value again for that message, so
/// the common case formats nothing.
pub fn convert_row(
    spec: &TableSpec,
    raws: Vec<Raw>,
    original: &dyn Fn(usize) -> Raw,
) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(raws.len());
    for (i, (raw, kind)) in raws.into_iter().zip(&spec.target_kinds).enumerate() {
        let nullable = spec.target_nullable.get(i).copied().unwrap_or(true);
        match convert(raw, *kind).map(|v| json_null_rule(v, *kind, nullable)) {
            Ok(v) => out.push(v),
            Err(why) => {
                let id = spec
                    .columns
                    .iter()
                    .position(|c| c == "id")
                    .map(|j| original(j).to_string())
                    .unwrap_or_else(|| "?".into());
                return Err(Error::data(format!(
                    "table {}, row id {id}, column {}: {why}: value {}",
                    spec.name,
                    spec.columns[i],
                    original(i)
                )));
            }
        }
    }
    Ok(out)
}

/// The SELECT that reads `spec` in id order.
pub fn select_sql(spec: &TableSpec, order_by: &str) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| quote_ident(c)).collect();
    format!(
        "SELECT {} FROM {} ORDER BY {order_by}",
        cols.join(", "),
        quote_ident(&spec.name)
    )
}

/// Reads SQLite tables on the calling (dedicated) thread.
pub fn sqlite_reader(target: SqliteUrl, tables: Vec<TableSpec>, tx: Sender<Event>) {
    let result = (|| -> Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            &target.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // One read transaction: every table from the same snapshot.
        conn.execute_batch("BEGIN")?;
        for spec in tables {
            if tx.blocking_send(Event::Table(spec.clone())).is_err() {
                return Ok(());
            }
            let mut stmt = conn.prepare(&select_sql(&spec, "rowid"))?;
            let n = spec.columns.len();
            let mut rows = stmt.query([])?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut sum = Checksum::new(spec.checksum);
            while let Some(row) = rows.next()? {
                let mut raws = Vec::with_capacity(n);
                for i in 0..n {
                    raws.push(sqlite_raw(row.get_ref(i)?));
                }
                let values = convert_row(&spec, raws, &|i| {
                    row.get_ref(i).map(sqlite_raw).unwrap_or(Raw::Null)
                })?;
                sum.add(&values);
                batch.push(values);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(Event::Rows(full)).is_err() {
                        return Ok(());
                    }
                }
            }
            let (rows, checksum) = sum.result();
            if tx.blocking_send(Event::Rows(batch)).is_err()
                || tx
                    .blocking_send(Event::TableDone { rows, checksum })
                    .is_err()
            {
                return Ok(());
            }
        }
        Ok(())
    })();
    let _ = tx.blocking_send(match result {
        Ok(()) => Event::End,
        Err(e) => Event::Failed(e),
    });
}

/// A SQLite cell as a [`Raw`].
pub fn sqlite_raw(v: rusqlite::types::ValueRef<'_>) -> Raw {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Raw::Null,
        V::Integer(i) => Raw::Int(i),
        V::Real(r) => Raw::Real(r),
        V::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Raw::Text(s.to_string()),
            Err(_) => Raw::Blob(t.to_vec()),
        },
        V::Blob(b) => Raw::Blob(b.to_vec()),
    }
}

/// A PostgreSQL cell of `kind` as a [`Raw`].
pub fn pg_raw(row: &tokio_postgres::Row, i: usize, kind: ColKind) -> Result<Raw> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Raw) -> Raw {
        v.map(f).unwrap_or(Raw::Null)
    }
    Ok(match kind {
        ColKind::Int { int4: true } => {
            opt(row.try_get::<_, Option<i32>>(i)?, |v| Raw::Int(v.into()))
        }
        ColKind::Int { int4: false } => opt(row.try_get::<_, Option<i64>>(i)?, Raw::Int),
        ColKind::Float => opt(row.try_get::<_, Option<f64>>(i)?, Raw::Real),
        ColKind::Text => opt(row.try_get::<_, Option<String>>(i)?, Raw::Text),
        ColKind::Bool => opt(row.try_get::<_, Option<bool>>(i)?, Raw::Bool),
        ColKind::Timestamp => opt(
            row.try_get::<_, Option<time::OffsetDateTime>>(i)?,
            Raw::Time,
        ),
        ColKind::Json => opt(row.try_get::<_, Option<serde_json::Value>>(i)?, Raw::Json),
        ColKind::Bytes => opt(row.try_get::<_, Option<Vec<u8>>>(i)?, Raw::Blob),
    })
}

/// Reads PostgreSQL tables on the calling (dedicated) thread, with its own runtime and
/// connection, inside one read-only repeatable-read transaction (a consistent snapshot).
pub fn pg_reader(
    target: PgUrl,
    options: crate::db::OpenOptions,
    tables: Vec<TableSpec>,
    tx: Sender<Event>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Event::Failed(Error::from(e)));
            return;
        }
    };
    runtime.block_on(async {
        let result = async {
            use futures_util::StreamExt;
            let mut client = crate::db::postgres::connect::connect_pg(
                &target,
                options.wait,
                options.net_timeout,
            )
            .await?;
            let txn = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            for spec in tables {
                if tx.send(Event::Table(spec.clone())).await.is_err() {
                    return Ok(());
                }
                let stream = txn
                    .query_raw(&select_sql(&spec, "1"), std::iter::empty::<i32>())
                    .await?;
                futures_util::pin_mut!(stream);
                let mut batch = Vec::with_capacity(BATCH);
                let mut sum = Checksum::new(spec.checksum);
                while let Some(row) = stream.next().await {
                    let row = row?;
                    let mut raws = Vec::with_capacity(spec.columns.len());
                    for (i, kind) in spec.source_kinds.iter().enumerate() {
                        raws.push(pg_raw(&row, i, *kind)?);
                    }
                    let values = convert_row(&spec, raws, &|i| {
                        pg_raw(&row, i, spec.source_kinds[i]).unwrap_or(Raw::Null)
                    })?;
                    sum.add(&values);
                    batch.push(values);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.send(Event::Rows(full)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                let (rows, checksum) = sum.result();
                if tx.send(Event::Rows(batch)).await.is_err()
                    || tx.send(Event::TableDone { rows, checksum }).await.is_err()
                {
                    return Ok(());
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        let _ = tx
            .send(match result {
                Ok(()) => Event::End,
                Err(e) => Event::Failed(e),
            })
            .await;
    });
}

/// Streams a JSON export on the calling (dedicated) thread. `tables` are the target's tables;
/// a table or column the target does not have is an error naming it.
pub fn json_reader(
    input: Box<dyn std::io::Read + Send>,
    tables: Vec<TableSpec>,
    tx: Sender<Event>,
) {
    let reader = std::io::BufReader::with_capacity(1 << 20, input);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let ctx = JsonCtx {
        tables,
        tx: &tx,
        header: std::cell::Cell::new(None),
        seen_tables: std::cell::Cell::new(false),
        failure: std::cell::RefCell::new(None),
    };
    let result = Document(&ctx).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = ctx.failure.take() {
        let _ = tx.blocking_send(Event::Failed(e));
    } else if let Err(e) = result {
        if !e.to_string().contains(STOPPED) {
            let _ = tx.blocking_send(Event::Failed(Error::data(format!(
                "the JSON file is malformed or truncated: {e}"
            ))));
        }
    } else if ctx.header.get().is_none() {
        let _ = tx.blocking_send(Event::Failed(Error::data(
            "the JSON file has no schema_version: it was not written by yogaflow-migrate export",
        )));
    } else if !ctx.seen_tables.get() {
        let _ = tx.blocking_send(Event::Failed(Error::data(
            "the JSON file has no tables: it was not written by yogaflow-migrate export, or is truncated",
        )));
    } else {
        let _ = tx.blocking_send(Event::End);
    }
}

/// Marker for "the writer went away": not an error of the file.
const STOPPED: &str = "yogaflow: reader stopped";

struct JsonCtx<'a> {
    tables: Vec<TableSpec>,
    tx: &'a Sender<Event>,
    header: std::cell::Cell<Option<i32>>,
    /// Whether the `tables` object was read to its end.
    seen_tables: std::cell::Cell<bool>,
    /// A data error found while reading (kept whole: serde's errors only carry text).
    failure: std::cell::RefCell<Option<Error>>,
}

impl JsonCtx<'_> {
    fn send<E: serde::de::Error>(&self, event: Event) -> std::result::Result<(), E> {
        self.tx.blocking_send(event).map_err(|_| E::custom(STOPPED))
    }

    fn fail<E: serde::de::Error>(&self, e: Error) -> E {
        let text = e.to_string();
        *self.failure.borrow_mut() = Some(e);
        E::custom(text)
    }
}

struct Document<'c, 'a>(&'c JsonCtx<'a>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a yogaflow-migrate export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let ctx = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let f: String = map.next_value()?;
                    if f != "yogaflow-export" {
                        return Err(ctx.fail(Error::data(format!(
                            "the file's format is '{f}', not yogaflow-export"
                        ))));
                    }
                }
                "format_version" => {
                    let v: u32 = map.next_value()?;
                    if v != 1 {
                        return Err(ctx.fail(Error::data(format!(
                            "format_version {v} is not supported (this binary reads 1)"
                        ))));
                    }
                }
                "schema_version" => {
                    let v: i32 = map.next_value()?;
                    ctx.header.set(Some(v));
                    ctx.send(Event::Header { schema_version: v })?;
                }
                "tables" => {
                    if ctx.header.get().is_none() {
                        return Err(ctx.fail(Error::data(
                            "schema_version must come before tables in the JSON file",
                        )));
                    }
                    map.next_value_seed(Tables(ctx))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Tables<'c, 'a>(&'c JsonCtx<'a>);

impl<'de> DeserializeSeed<'de> for Tables<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Tables<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let ctx = self.0;
        let mut seen: Vec<String> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let Some(spec) = ctx.tables.iter().find(|t| t.name == name).cloned() else {
                return Err(ctx.fail(Error::data(format!(
                    "table {} in the JSON file does not exist in the target database",
                    excerpt(&name)
                ))));
            };
            if seen.contains(&name) {
                return Err(ctx.fail(Error::data(format!(
                    "table {name} appears twice in the JSON file"
                ))));
            }
            seen.push(name.clone());
            ctx.send(Event::Table(spec.clone()))?;
            let sum = map.next_value_seed(Rows { ctx, spec: &spec })?;
            let (rows, checksum) = sum.result();
            ctx.send(Event::TableDone { rows, checksum })?;
        }
        // An export holds every table of its schema version, empty ones too: a file without
        // one is truncated or foreign, and loading it with --replace would empty that table.
        let missing: Vec<&str> = ctx
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .filter(|t| !seen.iter().any(|s| s == t))
            .collect();
        if !missing.is_empty() {
            return Err(ctx.fail(Error::data(format!(
                "the JSON file lacks table(s) {}: an export holds every table of its schema \
                 version, so this one is truncated or was not written by yogaflow-migrate \
                 export; nothing was written",
                missing.join(", ")
            ))));
        }
        ctx.seen_tables.set(true);
        Ok(())
    }
}

struct Rows<'c, 'a, 's> {
    ctx: &'c JsonCtx<'a>,
    spec: &'s TableSpec,
}

impl<'de> DeserializeSeed<'de> for Rows<'_, '_, '_> {
    type Value = Checksum;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Checksum, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_, '_> {
    type Value = Checksum;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> std::result::Result<Checksum, S::Error> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut sum = Checksum::new(self.spec.checksum);
        while let Some(raws) = seq.next_element_seed(RowSeed {
            ctx: self.ctx,
            spec: self.spec,
        })? {
            // JSON values are gone once converted: keep the row for the error message.
            let copy = raws.clone();
            let values = convert_row(self.spec, raws, &|i| copy[i].clone())
                .map_err(|e| self.ctx.fail::<S::Error>(e))?;
            sum.add(&values);
            batch.push(values);
            if batch.len() == BATCH {
                self.ctx.send(Event::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))?;
            }
        }
        self.ctx.send(Event::Rows(batch))?;
        Ok(sum)
    }
}

struct RowSeed<'c, 'a, 's> {
    ctx: &'c JsonCtx<'a>,
    spec: &'s TableSpec,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Raw>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Vec<Raw>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Raw>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<Raw>, A::Error> {
        let spec = self.spec;
        let mut raws = vec![Raw::Null; spec.columns.len()];
        while let Some(column) = map.next_key::<String>()? {
            let Some(i) = spec.columns.iter().position(|c| *c == column) else {
                return Err(self.ctx.fail(Error::data(format!(
                    "table {}: column {} in the JSON file does not exist in the target database",
                    spec.name,
                    excerpt(&column)
                ))));
            };
            let v: serde_json::Value = map.next_value()?;
            raws[i] = raw_from_json(v, spec.target_kinds[i]).map_err(|why| {
                self.ctx.fail::<A::Error>(Error::data(format!(
                    "table {}, column {column}: {why}",
                    spec.name
                )))
            })?;
        }
        Ok(raws)
    }
}
