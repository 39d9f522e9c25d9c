//! Sources of rows: a SQLite file, a PostgreSQL database or a JSON export, each read on a
//! thread of its own (so reading, converting and writing use both cores) and handed to the
//! writer as [`Event`]s through a bounded channel: memory stays flat whatever the size.

pub use super::json::json_reader;
use super::value::{convert, json_null_rule, ColKind, Raw, Value};
use crate::db::quote_ident;
use crate::error::{excerpt, Error, Result};
use crate::url::{PgUrl, SqliteUrl};
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
    /// The most characters each target column takes (`varchar(n)`), if it has a bound:
    /// checked here, so that SQLite, which would store anything, answers as PostgreSQL does.
    pub target_max_chars: Vec<Option<usize>>,
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
    /// The highest id each table ever handed out, where the source remembers more than its
    /// rows show: the target's ids continue past it, so no id of a deleted row comes back.
    HighWater(Vec<(String, i64)>),
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

/// The values of one row (the `row`-th of its table, from 1), converted for the target, with
/// the rules every route (`copy`, `import`, either dialect) shares: a value that does not
/// convert, a row without its id (PostgreSQL refuses it; SQLite would hand out a new id), and
/// text longer than the column's `varchar(n)` (SQLite would store it) are refused, named by
/// table, row, column and value.
pub fn convert_row(
    spec: &TableSpec,
    row: u64,
    raws: Vec<Raw>,
    original: &dyn Fn(usize) -> Raw,
) -> Result<Vec<Value>> {
    let id = || {
        let i = spec.columns.iter().position(|c| c == "id");
        i.map(|j| format!("row id {}", original(j)))
            .unwrap_or_else(|| format!("row {row}"))
    };
    let mut out = Vec::with_capacity(raws.len());
    for (i, (raw, kind)) in raws.into_iter().zip(&spec.target_kinds).enumerate() {
        let nullable = spec.target_nullable.get(i).copied().unwrap_or(true);
        let column = &spec.columns[i];
        let v = convert(raw, *kind)
            .map(|v| json_null_rule(v, *kind, nullable))
            .map_err(|why| {
                Error::data(format!(
                    "table {}, {}, column {column}: {why}: value {}",
                    spec.name,
                    id(),
                    original(i)
                ))
            })?;
        if column == "id" && v == Value::Null {
            return Err(Error::data(format!(
                "table {}, row {row}: its id is missing, null or empty: every row needs its \
                 own (PostgreSQL refuses one without, SQLite would give it a new one); nothing \
                 was written",
                spec.name
            )));
        }
        if let (Value::Text(t), Some(Some(max))) = (&v, spec.target_max_chars.get(i)) {
            let chars = t.chars().count();
            if chars > *max {
                return Err(Error::data(format!(
                    "table {}, {}, column {column}: {chars} characters, longer than the \
                     {max} the column takes (varchar({max})): value {}; nothing was written",
                    spec.name,
                    id(),
                    excerpt(t)
                )));
            }
        }
        out.push(v);
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
            let mut at = 0u64;
            while let Some(row) = rows.next()? {
                at += 1;
                let mut raws = Vec::with_capacity(n);
                for i in 0..n {
                    raws.push(sqlite_raw(row.get_ref(i)?));
                }
                let values = convert_row(&spec, at, raws, &|i| {
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
                let mut at = 0u64;
                while let Some(row) = stream.next().await {
                    let row = row?;
                    at += 1;
                    let mut raws = Vec::with_capacity(spec.columns.len());
                    for (i, kind) in spec.source_kinds.iter().enumerate() {
                        raws.push(pg_raw(&row, i, *kind)?);
                    }
                    let values = convert_row(&spec, at, raws, &|i| {
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
