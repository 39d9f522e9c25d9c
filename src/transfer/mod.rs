//! Moving data: `export` to one JSON document, `import` from one, and `copy` between two
//! databases. Each streams (a reader thread feeds the writer through a bounded channel), loads
//! in foreign-key order inside one transaction on the target, refuses a target that holds rows
//! unless `--replace`, and leaves identity sequences past the largest id.
//!
//! Schema versions: `import` and `copy` bring an older target up to the source's version
//! first (migrations commit on their own, as `up` would), and refuse a target that is newer
//! than the source: data shaped for an older schema cannot be trusted to fit a newer one.

pub mod json;
pub mod read;
pub mod value;
pub mod write;

use crate::cli::{CopyArgs, ExportArgs, ImportArgs};
use crate::config::{self, Config};
use crate::db::{Database, Dialect, OpenOptions};
use crate::error::{Error, Result};
use crate::migrate::{self, APP_TABLES};
use crate::progress::TableProgress;
use crate::schema::Schema;
use crate::url::DbUrl;
use read::{Event, Reader, TableSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use value::{kind_of, ColKind};

/// Tables in an order that loads referenced tables first (pure; ties by name).
pub fn load_order(schema: &Schema) -> Vec<String> {
    let mut placed: Vec<String> = Vec::new();
    let mut left: Vec<&String> = schema.tables.keys().collect();
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            schema.tables[*t].foreign_keys.iter().all(|fk| {
                fk.ref_table == **t
                    || placed.contains(&fk.ref_table)
                    || !schema.tables.contains_key(&fk.ref_table)
            })
        });
        // A cycle cannot be ordered; take the first table and let the database judge.
        let i = ready.unwrap_or(0);
        placed.push(left.remove(i).clone());
    }
    placed
}

/// Column names of `table` with `id` first, then by name.
fn columns(schema: &Schema, table: &str) -> Vec<String> {
    let mut cols: Vec<String> = schema.tables[table].columns.keys().cloned().collect();
    cols.sort_by_key(|c| (c != "id", c.clone()));
    cols
}

fn kinds(schema: &Schema, table: &str, cols: &[String], dialect: Dialect) -> Result<Vec<ColKind>> {
    cols.iter()
        .map(|c| {
            let dt = &schema.tables[table].columns[c].data_type;
            kind_of(dt, dialect == Dialect::Postgres).ok_or_else(|| {
                Error::data(format!(
                    "table {table}, column {c}: type {dt} is not supported for transfer"
                ))
            })
        })
        .collect()
}

/// Whether each of `cols` of `table` allows NULL.
fn nullable(schema: &Schema, table: &str, cols: &[String]) -> Vec<bool> {
    cols.iter()
        .map(|c| schema.tables[table].columns[c].nullable)
        .collect()
}

/// The most characters each of `cols` of `table` takes, from its `varchar(n)` (PostgreSQL's
/// `character varying(n)`, SQLite's declared `VARCHAR(n)`).
fn max_chars(schema: &Schema, table: &str, cols: &[String]) -> Vec<Option<usize>> {
    cols.iter()
        .map(|c| crate::schema::varchar_length(&schema.tables[table].columns[c].data_type))
        .collect()
}

/// The YogaFlow tables of `schema` in load order.
fn app_tables(schema: &Schema) -> Vec<String> {
    load_order(schema)
        .into_iter()
        .filter(|t| APP_TABLES.contains(&t.as_str()))
        .collect()
}

/// Specs for reading `source` into `target`: every source column must exist in the target.
fn pair_specs(
    source: &Schema,
    sd: Dialect,
    target: &Schema,
    td: Dialect,
) -> Result<Vec<TableSpec>> {
    let mut specs = Vec::new();
    let missing: Vec<String> = app_tables(target)
        .into_iter()
        .filter(|t| !source.tables.contains_key(t))
        .collect();
    let beyond: Vec<String> = app_tables(source)
        .into_iter()
        .filter(|t| !target.tables.contains_key(t))
        .collect();
    if !beyond.is_empty() {
        return Err(Error::data(format!(
            "the source holds table(s) {} beyond its recorded schema version: its history is \
             behind its tables (a baseline at too old a version?); refusing a copy that would \
             leave them out; nothing was written",
            beyond.join(", ")
        )));
    }
    if !missing.is_empty() {
        // A partial copy must never look like a whole one.
        return Err(Error::data(format!(
            "the source lacks table(s) {} that the target has at the same schema version: \
             refusing a partial copy; nothing was written",
            missing.join(", ")
        )));
    }
    log_left_behind(source, target);
    for t in app_tables(target) {
        // The target's columns are the contract's; the source's others stay behind.
        let cols: Vec<String> = columns(source, &t)
            .into_iter()
            .filter(|c| target.tables[&t].columns.contains_key(c))
            .collect();
        specs.push(TableSpec {
            checksum: false,
            source_kinds: kinds(source, &t, &cols, sd)?,
            target_kinds: kinds(target, &t, &cols, td)?,
            target_nullable: nullable(target, &t, &cols),
            target_max_chars: max_chars(target, &t, &cols),
            columns: cols,
            name: t,
        });
    }
    Ok(specs)
}

/// Brings the destination to `version` (never down), for import and copy: those migrations
/// commit on their own, as `up` would.
async fn align_destination(config: &Config, url: &DbUrl, version: i32) -> Result<Database> {
    let mut db = Database::open(url, config.for_writing()).await?;
    let current = migrate::current_version(&db).await?;
    if current > version {
        return Err(Error::data(format!(
            "the target database is at schema version {current}, the data at {version}: \
             bring the source up first, or the target down with `down --to {version}`"
        )));
    }
    if current < version {
        log::info!("bringing the target from schema version {current} to {version} first");
        // No app serves a transfer's target yet: its contract steps need no waiting.
        migrate::upgrade(
            &mut db,
            Some(version),
            config.lock_timeout,
            migrate::Contracts::Apply,
        )
        .await?;
        migrate::warn_drift(&db).await;
    }
    Ok(db)
}

fn spawn_reader(source: &DbUrl, options: OpenOptions, specs: Vec<TableSpec>) -> Result<Reader> {
    let source = source.clone();
    Reader::spawn(move |tx| match source {
        DbUrl::Sqlite(s) => read::sqlite_reader(s, specs, tx),
        DbUrl::Postgres(p) => read::pg_reader(*p, options, specs, tx),
    })
}

/// Runs `export`: the source's YogaFlow tables, streamed into one JSON document written to
/// `args.out` (under a temporary name until complete) or to stdout for `-`.
pub async fn export(config: &Config, url: &DbUrl, args: &ExportArgs) -> Result<()> {
    log::info!("exporting {url}");
    let source = |e: Error| e.context(format!("source {url}"));
    let db = Database::open(url, config.for_reading())
        .await
        .map_err(source)?;
    let dialect = db.dialect();
    let version = crate::adopt::source_version(&db, &readable(dialect))
        .await
        .map_err(source)?;
    let live = db.live_schema().await?;
    let contract = db.expected_schema(version).await?;
    log_left_behind(&live, &contract);
    let specs = export_specs(&live, &contract, dialect)?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let totals = db.row_counts(&names).await?;
    let high_water = db.id_high_water(&names).await?;
    let mut reader = spawn_reader(url, config.for_reading(), specs)?;
    let target = ExportTarget::new(&args.out);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, target.create()?);
    let header = ExportHeader {
        version,
        dialect,
        high_water,
    };
    let result = write_export(&mut out, &mut reader, &totals, &header).await;
    drop(out);
    target.finish(result, version)
}

/// Whether a column type of `dialect` is one whose values a transfer reads.
fn readable(dialect: Dialect) -> impl Fn(&str) -> bool {
    move |data_type: &str| kind_of(data_type, dialect == Dialect::Postgres).is_some()
}

/// Names what a source holds beyond the contract (`contract`: the schema its version has),
/// which a transfer leaves behind: its own tables, and columns the contract's tables lack.
fn log_left_behind(source: &Schema, contract: &Schema) {
    let mut behind: Vec<String> = Vec::new();
    for (t, table) in &source.tables {
        match contract.tables.get(t) {
            None => behind.push(format!("table {t}")),
            Some(want) => behind.extend(
                table
                    .columns
                    .keys()
                    .filter(|c| !want.columns.contains_key(*c))
                    .map(|c| format!("column {t}.{c}")),
            ),
        }
    }
    if !behind.is_empty() {
        log::info!(
            "left behind, outside the contract: {} (the source keeps them)",
            behind.join(", ")
        );
    }
}

/// Specs for exporting the contract's tables and columns (`contract`) of `live`, each column
/// read as it is.
fn export_specs(live: &Schema, contract: &Schema, dialect: Dialect) -> Result<Vec<TableSpec>> {
    let mut specs = Vec::new();
    for t in app_tables(contract) {
        let cols = columns(contract, &t);
        let has = |c: &String| {
            live.tables
                .get(&t)
                .is_some_and(|l| l.columns.contains_key(c))
        };
        if let Some(c) = cols.iter().find(|c| !has(c)) {
            return Err(Error::data(format!(
                "table {t}: the source lacks column {c}, which its schema version has; nothing \
                 was written"
            )));
        }
        let k = kinds(live, &t, &cols, dialect)?;
        specs.push(TableSpec {
            target_nullable: nullable(contract, &t, &cols),
            // What import would refuse is refused here already: an export always reads back.
            target_max_chars: max_chars(contract, &t, &cols),
            name: t,
            columns: cols,
            source_kinds: k.clone(),
            target_kinds: k,
            checksum: false,
        });
    }
    Ok(specs)
}

/// Where an export goes: stdout for `-`, else a file written under a temporary name next to
/// it and renamed into place only once complete (a failed export leaves no partial file).
struct ExportTarget<'a> {
    out: &'a Path,
    partial: PathBuf,
    to_stdout: bool,
}

impl<'a> ExportTarget<'a> {
    /// The target for `out`.
    fn new(out: &'a Path) -> Self {
        let partial = out.with_file_name(format!(
            ".{}.partial-{}",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("export"),
            std::process::id()
        ));
        ExportTarget {
            out,
            partial,
            to_stdout: out.as_os_str() == "-",
        }
    }

    /// Opens stdout, or creates the temporary file.
    fn create(&self) -> Result<Box<dyn Write>> {
        if self.to_stdout {
            return Ok(Box::new(std::io::stdout().lock()));
        }
        let file = std::fs::File::create(&self.partial).map_err(|e| {
            Error::config(format!("cannot write {}", self.partial.display())).with_source(e)
        })?;
        Ok(Box::new(file))
    }

    /// After the writer is closed: renames a complete file into place, or removes the
    /// temporary file of a failed export and hands its error back.
    fn finish(&self, result: Result<()>, version: i32) -> Result<()> {
        match result {
            Ok(()) if !self.to_stdout => {
                std::fs::rename(&self.partial, self.out).map_err(|e| {
                    Error::config(format!("cannot write {}", self.out.display())).with_source(e)
                })?;
                log::info!(
                    "exported schema version {version} to {}",
                    self.out.display()
                );
                Ok(())
            }
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&self.partial);
                Err(e)
            }
        }
    }
}

/// Writes the export document to `out`: the header, each table's rows as the reader delivers
/// them (with progress against `totals`), and the closing braces; flushes at the end.
/// What an export's header says besides its format.
struct ExportHeader {
    version: i32,
    dialect: Dialect,
    /// The highest id each table handed out (`id_high_water`; older readers ignore it).
    high_water: Vec<(String, i64)>,
}

async fn write_export(
    out: &mut impl Write,
    reader: &mut Reader,
    totals: &[(String, i64)],
    header: &ExportHeader,
) -> Result<()> {
    let exported_at = value::format_iso(time::OffsetDateTime::now_utc());
    let marks: serde_json::Map<String, serde_json::Value> = header
        .high_water
        .iter()
        .map(|(t, n)| (t.clone(), (*n).into()))
        .collect();
    write!(
        out,
        "{{\"format\":\"yogaflow-export\",\"format_version\":1,\"schema_version\":{},\
         \"source_dialect\":\"{}\",\"exported_at\":\"{exported_at}\",\"id_high_water\":{},\
         \"tables\":{{",
        header.version,
        header.dialect.name(),
        serde_json::Value::Object(marks)
    )?;
    let mut first_table = true;
    // The current table's progress, and whether no row of it is written yet.
    let mut current: Option<(TableProgress, bool)> = None;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    loop {
        match reader.next().await? {
            Event::Header { .. } | Event::HighWater(_) => {}
            Event::Table(spec) => {
                let total = totals
                    .iter()
                    .find(|(t, _)| *t == spec.name)
                    .map(|(_, n)| *n as u64);
                write!(
                    out,
                    "{}\n{}:[",
                    if first_table { "" } else { "]," },
                    serde_json::to_string(&spec.name).unwrap_or_default()
                )?;
                first_table = false;
                keys = json_keys(&spec.columns);
                current = Some((TableProgress::start(&spec.name, total), true));
            }
            Event::Rows(rows) => {
                let Some((progress, first_row)) = current.as_mut() else {
                    continue;
                };
                progress.add(rows.len() as u64);
                write_rows(out, &keys, rows, first_row)?;
            }
            Event::TableDone { .. } => {
                if let Some((progress, _)) = current.take() {
                    progress.finish();
                }
            }
            Event::Failed(e) => return Err(e),
            Event::End => break,
        }
    }
    writeln!(out, "{}}}}}", if first_table { "" } else { "]" })?;
    out.flush()?;
    Ok(())
}

/// `"column":` for each of `columns`, spelled once per table, not once per value.
fn json_keys(columns: &[String]) -> Vec<Vec<u8>> {
    columns
        .iter()
        .map(|c| format!("{}:", serde_json::Value::from(c.as_str())).into_bytes())
        .collect()
}

/// Writes `rows` as JSON objects keyed by `keys`, each on a line of its own, separated by
/// commas; `first_row` says whether none of the table is written yet.
fn write_rows(
    out: &mut impl Write,
    keys: &[Vec<u8>],
    rows: Vec<Vec<value::Value>>,
    first_row: &mut bool,
) -> Result<()> {
    for row in rows {
        out.write_all(if *first_row { b"\n{" } else { b",\n{" })?;
        *first_row = false;
        for (i, (key, v)) in keys.iter().zip(&row).enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(key)?;
            v.write_json(out)?;
        }
        out.write_all(b"}")?;
    }
    Ok(())
}

/// Finds `"schema_version": N` in the first bytes of an export (our writer puts it there), so
/// the target can be brought to that version before the rows are streamed.
pub fn peek_version(prefix: &[u8]) -> Option<i32> {
    let text = String::from_utf8_lossy(prefix);
    let at = text.find("\"schema_version\"")? + "\"schema_version\"".len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The schema version an export's header names, checked against this binary's migrations and
/// named in the file's own terms (never as a flag nobody passed).
fn file_version(prefix: &[u8], file: &Path, destination: &DbUrl) -> Result<i32> {
    let version = peek_version(prefix).ok_or_else(|| {
        Error::data(format!(
            "{}: no schema_version at its start: not a file written by yogaflow-migrate export",
            file.display()
        ))
    })?;
    let dialect = match destination {
        DbUrl::Postgres(_) => Dialect::Postgres,
        DbUrl::Sqlite(_) => Dialect::Sqlite,
    };
    let known = migrate::migrations(dialect);
    let latest = known.last().map_or(0, |m| m.version);
    if version != 0 && !known.iter().any(|m| m.version == version) {
        return Err(Error::data(format!(
            "{}: its header says schema_version {version}, which this binary does not know \
             (it knows 1 to {latest}): import it with the yogaflow-migrate that exported it, \
             or a newer one; nothing was written",
            file.display()
        )));
    }
    Ok(version)
}

/// Runs `import`.
pub async fn import(config: &Config, destination: &DbUrl, args: &ImportArgs) -> Result<()> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| {
        Error::config(format!("cannot read {}: {e}", args.file.display())).with_source(e)
    };
    let mut input: Box<dyn std::io::Read + Send> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        if args.file.is_dir() {
            return Err(Error::config(format!(
                "{} is a directory: name the file `export` wrote",
                args.file.display()
            )));
        }
        Box::new(std::fs::File::open(&args.file).map_err(unreadable)?)
    };
    let mut prefix = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = input.read(&mut prefix[filled..]).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    prefix.truncate(filled);
    let version = file_version(&prefix, &args.file, destination)?;
    log::info!(
        "importing {} (schema version {version}) into {destination}",
        args.file.display()
    );
    let mut db = align_destination(config, destination, version).await?;
    let live = db.live_schema().await?;
    let dialect = db.dialect();
    let specs = pair_specs(&live, dialect, &live, dialect)?;
    let stream: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(prefix).chain(input));
    let reader = Reader::spawn(move |tx| read::json_reader(stream, specs, tx))?;
    load(
        &mut db,
        reader,
        &app_tables(&live),
        (args.replace, false),
        Vec::new(),
    )
    .await
}

/// Runs `copy`; `destination` is `--to` or `DATABASE_URL`.
pub async fn copy(config: &Config, destination: &DbUrl, args: &CopyArgs) -> Result<()> {
    let source = config::parse_url(&args.from)?;
    if source == *destination {
        return Err(Error::config("--from and the target are the same database"));
    }
    log::info!("copying {source} into {destination}");
    let side = |e: Error| e.context(format!("source {source}"));
    let src = Database::open(&source, config.for_reading())
        .await
        .map_err(side)?;
    let version = crate::adopt::source_version(&src, &readable(src.dialect()))
        .await
        .map_err(side)?;
    let source_schema = src.live_schema().await.map_err(side)?;
    let target = |e: Error| e.context(format!("target {destination}"));
    let mut db = align_destination(config, destination, version)
        .await
        .map_err(target)?;
    let target_schema = db.live_schema().await.map_err(target)?;
    let mut specs = pair_specs(&source_schema, src.dialect(), &target_schema, db.dialect())?;
    for spec in &mut specs {
        spec.checksum = !args.no_verify;
    }
    // The ids the source handed out beyond its rows (deleted rows): never handed out again.
    let high_water = src
        .id_high_water(&app_tables(&source_schema))
        .await
        .map_err(side)?;
    drop(src);
    let reader = spawn_reader(&source, config.for_reading(), specs)?;
    load(
        &mut db,
        reader,
        &app_tables(&target_schema),
        (args.replace, !args.no_verify),
        high_water,
    )
    .await
}

/// Loads what `rx` delivers into `db` in one transaction. `tables` are the target's YogaFlow
/// tables (emptied first with `replace`). With `verify`, each table is read back inside the
/// transaction and its row count and checksum compared with the reader's before committing.
async fn load(
    db: &mut Database,
    mut reader: Reader,
    tables: &[String],
    (replace, verify): (bool, bool),
    mut high_water: Vec<(String, i64)>,
) -> Result<()> {
    let counts = db.row_counts(tables).await?;
    let occupied: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    if !occupied.is_empty() && !replace {
        return Err(Error::data(format!(
            "the target already holds rows ({}); pass --replace to delete them first, in the same transaction",
            occupied.join(", ")
        )));
    }
    let start = std::time::Instant::now();
    let mut sink = write::Sink::begin(db, tables, !occupied.is_empty()).await?;
    let mut summary: Vec<(String, u64)> = Vec::new();
    let mut current: Option<(TableSpec, TableProgress)> = None;
    loop {
        match reader.next().await? {
            Event::Header { .. } => {}
            Event::HighWater(marks) => high_water.extend(marks),
            Event::Table(spec) => {
                sink.start_table(&spec).await?;
                let progress = TableProgress::start(&spec.name, None);
                current = Some((spec, progress));
            }
            Event::Rows(rows) => {
                let Some((spec, progress)) = current.as_mut() else {
                    continue;
                };
                progress.add(rows.len() as u64);
                sink.write_rows(spec, rows).await?;
            }
            Event::TableDone { rows, checksum } => {
                let Some((spec, progress)) = current.take() else {
                    continue;
                };
                sink.finish_table(&spec).await?;
                let (n, _) = progress.finish();
                if verify {
                    let (back, sum) = sink.checksum(&spec).await?;
                    compare(&spec.name, rows, checksum, back, sum)?;
                }
                summary.push((spec.name.clone(), n));
            }
            Event::Failed(e) => return Err(e),
            Event::End => break,
        }
    }
    if current.is_some() {
        return Err(Error::internal(
            "the reader stopped in the middle of a table",
        ));
    }
    sink.commit(tables, &high_water).await?;
    let total: u64 = summary.iter().map(|s| s.1).sum();
    log::info!(
        "loaded {total} rows into {} tables in {:.2} s{}",
        summary.len(),
        start.elapsed().as_secs_f64(),
        if verify {
            " (row counts and checksums match the source)"
        } else {
            ""
        }
    );
    Ok(())
}

fn compare(table: &str, rows: u64, checksum: u64, back: u64, sum: u64) -> Result<()> {
    if rows != back {
        return Err(Error::data(format!(
            "table {table}: {rows} rows read from the source, {back} in the target; nothing was written"
        )));
    }
    if checksum != sum {
        return Err(Error::data(format!(
            "table {table}: the content checksum differs between source and target; nothing was written"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_version_at_the_start() {
        assert_eq!(peek_version(br#"{"format":"yogaflow-export","format_version":1,"schema_version": 5,"tables":{}}"#), Some(5));
        assert_eq!(peek_version(br#"{"tables":{}}"#), None);
    }
}
