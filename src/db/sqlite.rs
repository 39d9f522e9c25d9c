//! The SQLite side of the seam. The connection lives on a worker thread of its own (as in
//! sqlx-sqlite): every call is a job sent to it, and the async side only awaits the answer,
//! so signals and timeouts keep running while SQLite blocks (a lock wait, a long statement).
//! An interrupt handle ends whatever the worker is running; open transactions roll back.
//! One migrator at a time is SQLite's own write lock: `BEGIN IMMEDIATE` per step, waiting up
//! to `busy_timeout`, with the history re-checked inside it.

use super::{OpenOptions, Outcome, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, Migration, HISTORY_DDL, HISTORY_TABLE};
use crate::schema::{self, Schema};
use crate::url::SqliteUrl;
use rusqlite::{Connection, InterruptHandle, OpenFlags, TransactionBehavior};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Instant;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Interrupt handles of every open SQLite connection, for [`interrupt_all`].
static OPEN: Mutex<Vec<Weak<InterruptHandle>>> = Mutex::new(Vec::new());

/// Interrupts whatever every open SQLite connection is running (on SIGINT/SIGTERM): the
/// statement fails with SQLITE_INTERRUPT and its transaction rolls back.
pub fn interrupt_all() {
    let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    for handle in open.iter().filter_map(Weak::upgrade) {
        handle.interrupt();
    }
}

/// A SQLite database, reached through its worker thread.
pub struct Sqlite {
    jobs: mpsc::Sender<Job>,
    interrupt: Arc<InterruptHandle>,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        // Closing the channel ends the worker after its current job; the connection closes
        // there, rolling back anything left open. Never joined: a stuck job must not keep the
        // process from exiting with its error.
        OPEN.lock().unwrap_or_else(|e| e.into_inner()).retain(|w| {
            w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.interrupt))
        });
    }
}

impl Sqlite {
    /// Opens the file on a new worker thread. A missing file is created only with
    /// `options.create`; its directory must exist.
    pub async fn open(url: &SqliteUrl, options: OpenOptions) -> Result<Sqlite> {
        let path = url.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(Error::config(format!(
                    "SQLite database {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                )));
            }
        }
        if !options.create && !path.exists() {
            return Err(Error::config(format!(
                "SQLite database {} does not exist",
                path.display()
            )));
        }
        // A reader (status, verify, a source) opens the file read-only: it is never written,
        // not even by accident.
        let mut flags = if options.lock_wait.is_none() && !options.create {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if options.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (opened, ready) = tokio::sync::oneshot::channel();
        let at = path.clone();
        std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || {
                let conn = Connection::open_with_flags(&at, flags)
                    .and_then(|c| {
                        // Readers keep rusqlite's default (5 s).
                        if let Some(t) = options.lock_wait {
                            c.busy_timeout(t)?;
                        }
                        Ok(c)
                    })
                    .map_err(|e| {
                        Error::new(
                            Kind::Rejected,
                            format!("cannot open SQLite database {}", at.display()),
                        )
                        .with_source(e)
                    });
                let mut conn = match conn {
                    Ok(c) => {
                        let _ = opened.send(Ok(Arc::new(c.get_interrupt_handle())));
                        c
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = inbox.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| Error::internal("cannot start the SQLite worker").with_source(e))?;
        let interrupt = ready.await.map_err(|_| stopped())??;
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&interrupt));
        Ok(Sqlite { jobs, interrupt })
    }

    /// Runs `f` on the worker and waits for its answer. A panic in `f` ends the worker and
    /// comes back as an error, never as a result.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |c| {
                let _ = answer.send(f(c));
            }))
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// Queues `f` without waiting for it (rolling back a transaction whose owner went away).
    pub fn post(&self, f: impl FnOnce(&mut Connection) + Send + 'static) {
        let _ = self.jobs.send(Box::new(f));
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>> {
        self.call(|c| table_names(c)).await
    }

    pub(super) async fn read_history(&self) -> Result<Option<Vec<Applied>>> {
        self.call(|c| {
            if !has_table(c, HISTORY_TABLE)? {
                return Ok(None);
            }
            let mut stmt = c.prepare(migrate::HISTORY_SELECT)?;
            let rows = stmt.query_map([], |r| {
                Ok([
                    Some(r.get::<_, i64>(0)?.to_string()),
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ])
            })?;
            let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(migrate::parse_history_row)
                .collect::<Result<_>>()
                .map(Some)
        })
        .await
    }

    pub(super) async fn ensure_history(&self) -> Result<()> {
        Ok(())
    }

    pub(super) async fn lock(&mut self, _timeout: std::time::Duration) -> Result<()> {
        Ok(())
    }

    pub(super) async fn unlock(&mut self) -> Result<()> {
        Ok(())
    }

    pub(super) async fn run_step(&mut self, step: Step<'_>) -> Result<Outcome> {
        let step = match step {
            Step::Apply(m) => Owned::Apply(m.clone()),
            Step::Undo {
                migration,
                allow_loss,
            } => Owned::Undo(migration.clone(), allow_loss),
            Step::Record {
                migrations,
                dry_run,
                repair,
                plan_only,
            } => Owned::Record(migrations.to_vec(), dry_run || plan_only, repair, plan_only),
        };
        self.call(move |c| {
            // A table rebuild drops a table: with foreign keys on (this build's default) that
            // deletes, and cascades into, the rows of the tables that refer to it. SQLite's
            // 12-step procedure turns them off around the transaction (they cannot change
            // inside one) and checks them with `PRAGMA foreign_key_check` before the commit.
            // Only a baseline rebuilds: the migrations' own steps pay nothing for this.
            let fk_off = matches!(step, Owned::Record(..))
                && c.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, bool>(0))?;
            if fk_off {
                c.execute_batch("PRAGMA foreign_keys = OFF")?;
            }
            let result = run_owned(c, &step);
            if fk_off {
                // The transaction has ended (committed or rolled back) whatever `result` is;
                // a failure to turn them on again must not hide what happened.
                if let Err(e) = c.execute_batch("PRAGMA foreign_keys = ON") {
                    log::warn!("could not turn SQLite's foreign keys on again: {e}");
                }
            }
            result
        })
        .await
    }
}

/// A [`Step`] the worker owns.
enum Owned {
    Apply(Migration),
    Undo(Migration, bool),
    /// Migrations, roll back at the end, repair, plan only.
    Record(Vec<Migration>, bool, bool, bool),
}

/// The work of [`Sqlite::run_step`], on the worker.
fn run_owned(c: &mut Connection, step: &Owned) -> Result<Outcome> {
    {
        {
            let start = Instant::now();
            let tx = immediate(c)?;
            let recorded = |version: i32| -> Result<bool> {
                if !has_table(&tx, HISTORY_TABLE)? {
                    return Ok(false);
                }
                Ok(tx
                    .prepare(&format!("SELECT 1 FROM {HISTORY_TABLE} WHERE version = ?1"))?
                    .exists([version])?)
            };
            match step {
                Owned::Apply(m) => {
                    if recorded(m.version)? {
                        return Ok(Outcome::AlreadyDone);
                    }
                    tx.execute_batch(HISTORY_DDL)?;
                    tx.execute_batch(m.up)
                        .map_err(|e| migration_error(m, "failed", e))?;
                    tx.execute_batch(&migrate::record_sql(m))?;
                }
                Owned::Undo(m, allow_loss) => {
                    if !recorded(m.version)? {
                        return Ok(Outcome::AlreadyDone);
                    }
                    // Under the write lock: nobody inserts between this count and the drop.
                    for table in m.dropped_tables().into_iter().filter(|_| !allow_loss) {
                        if !has_table(&tx, &table)? {
                            continue;
                        }
                        let sql = format!("SELECT count(*) FROM {}", super::quote_ident(&table));
                        let n: i64 = tx.query_row(&sql, [], |r| r.get(0))?;
                        if n > 0 {
                            return Err(migrate::refused_loss(m, &table, &n.to_string()));
                        }
                    }
                    tx.execute_batch(m.down)
                        .map_err(|e| migration_error(m, "could not be undone", e))?;
                    tx.execute_batch(&migrate::delete_sql(m))?;
                }
                Owned::Record(ms, dry_run, repair, plan_only) => {
                    rebuild_tables(&tx, ms, *repair, *plan_only)?;
                    tx.execute_batch(&migrate::record_all_sql(ms))?;
                    if *dry_run {
                        tx.rollback()?;
                        return Ok(Outcome::Done(start.elapsed()));
                    }
                }
            }
            tx.commit()?;
            Ok(Outcome::Done(start.elapsed()))
        }
    }
}

impl Sqlite {
    pub(super) async fn live_schema(&self) -> Result<Schema> {
        self.call(|c| schema::read_sqlite(c)).await
    }

    /// Applies the migrations to an in-memory database.
    pub(super) async fn expected_schema(&self, version: i32) -> Result<Schema> {
        self.call(move |_| {
            let scratch = Connection::open_in_memory()?;
            for m in migrate::migrations(super::Dialect::Sqlite)
                .iter()
                .filter(|m| m.version <= version)
            {
                scratch
                    .execute_batch(m.up)
                    .map_err(|e| migration_error(m, "failed on a scratch database", e))?;
            }
            schema::read_sqlite(&scratch)
        })
        .await
    }

    pub(super) async fn row_counts(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        let tables = tables.to_vec();
        self.call(move |c| {
            let mut out = Vec::new();
            for t in tables {
                let sql = format!("SELECT count(*) FROM {}", super::quote_ident(&t));
                let n = c.query_row(&sql, [], |r| r.get(0))?;
                out.push((t, n));
            }
            Ok(out)
        })
        .await
    }
}

fn stopped() -> Error {
    Error::internal("the SQLite worker stopped (a panic there; see the message above)")
}

fn table_names(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut names = rows.collect::<rusqlite::Result<Vec<String>>>()?;
    names.sort();
    Ok(names)
}

/// Whether the database has a table of that name.
/// `CREATE TABLE name (...)` made into `CREATE TABLE "new_name" (...)`.
fn renamed_create(sql: &str, new_name: &str) -> Option<String> {
    let rest = sql.trim_start();
    let head = rest.get(..12)?;
    if !head.eq_ignore_ascii_case("create table") {
        return None;
    }
    let after = rest[12..].trim_start();
    let name_len = match after.chars().next()? {
        q @ ('"' | '`' | '[') => {
            let close = if q == '[' { ']' } else { q };
            after[1..].find(close)? + 2
        }
        _ => after.find(|c: char| c.is_whitespace() || c == '(')?,
    };
    Some(format!(
        "CREATE TABLE {} {}",
        super::quote_ident(new_name),
        after[name_len..].trim_start()
    ))
}

/// Column names of `table`, in order.
fn column_names(c: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare(&format!("PRAGMA table_info({})", super::quote_ident(table)))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(names)
}

/// The first row of `table` that the table as the migrations make it (`expected`, the
/// scratch database holding it) would reject, named with the values it holds there: NULL in
/// a NOT NULL column, or a CHECK broken. Reads only.
fn rejected_row(
    c: &Connection,
    expected: &Connection,
    table: &str,
    create_sql: &str,
) -> Result<Option<String>> {
    let t = super::quote_ident(table);
    let first = |condition: &str| -> Option<String> {
        c.query_row(
            &format!("SELECT CAST(id AS TEXT) FROM {t} WHERE {condition} ORDER BY id LIMIT 1"),
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
    };
    let mut stmt = expected.prepare(&format!("PRAGMA table_info({t})"))?;
    let not_null: Vec<String> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, bool>(3)?)))?
        .filter_map(|r| r.ok())
        .filter(|(_, nn)| *nn)
        .map(|(name, _)| name)
        .collect();
    for column in &not_null {
        if let Some(id) = first(&format!("{} IS NULL", super::quote_ident(column))) {
            return Ok(Some(format!(
                "{table} row id={id}: {column} is NULL, which the contract rejects"
            )));
        }
    }
    let columns = column_names(c, table)?;
    for check in schema::sqlite_checks(create_sql) {
        let Some(id) = first(&format!("NOT ({check})")) else {
            continue;
        };
        // The values of the columns the check reads.
        let words: Vec<&str> = check
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .collect();
        let values: Vec<String> = columns
            .iter()
            .filter(|col| words.contains(&col.as_str()))
            .filter_map(|col| {
                let sql = format!(
                    "SELECT quote({}) FROM {t} WHERE id = ?1",
                    super::quote_ident(col)
                );
                let v: String = c.query_row(&sql, [&id], |r| r.get(0)).ok()?;
                Some(format!("{col} = {v}"))
            })
            .collect();
        return Ok(Some(format!(
            "{table} row id={id} ({}) breaks the contract's check ({check})",
            values.join(", ")
        )));
    }
    Ok(None)
}

/// Whether `have` (a live table) holds nothing `want` (the table as the migrations make it)
/// lacks: no extra column, unique constraint, foreign key or check. A rebuild to `want`
/// loses none of them then; extra indexes are made again by the rebuild.
fn only_lacks(want: &schema::Table, have: &schema::Table) -> bool {
    have.columns.keys().all(|c| want.columns.contains_key(c))
        && have.uniques.is_subset(&want.uniques)
        && have.foreign_keys.is_subset(&want.foreign_keys)
        && have.checks.is_subset(&want.checks)
}

/// Makes each table whose SQL is not what the migrations make (SQLAlchemy's DDL, `FLOAT` for
/// `REAL`, a check spelled otherwise, unnamed constraints; with `repair`, a missing check,
/// NOT NULL, default or foreign key) exactly that, by SQLite's documented 12-step procedure
/// inside the Record transaction (foreign keys are off around it, see `run_step`): the
/// views dropped, the table created as the migrations create it under a new name, the rows
/// copied by column name, the old table dropped, the new one renamed, its indexes (the
/// migrations' and any others it had) and triggers made again, the views made again, and
/// `PRAGMA foreign_key_check` on the rebuilt tables before the commit (orphans that were
/// there before are left as they were). A table holding anything the migrations' lacks (a
/// column, constraint) is not rebuilt: that would lose it. A row the new table would reject
/// stops it, named. With `plan_only`, nothing changes: each rebuild is logged and the rows
/// checked. With `repair`, the result is compared with the migrations' schema: what no
/// rebuild covers is refused.
fn rebuild_tables(tx: &Connection, ms: &[Migration], repair: bool, plan_only: bool) -> Result<()> {
    let scratch = Connection::open_in_memory()?;
    for m in ms {
        scratch
            .execute_batch(m.up)
            .map_err(|e| migration_error(m, "failed on a scratch database", e))?;
    }
    let objects = |c: &Connection, kind: &str| -> Result<Vec<(String, String, String)>> {
        let mut stmt = c.prepare(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = ?1 AND sql IS NOT NULL \
             AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    let expected_schema = schema::read_sqlite(&scratch)?;
    let live_schema = schema::read_sqlite(tx)?;
    let expected_tables = objects(&scratch, "table")?;
    let expected_indexes = objects(&scratch, "index")?;
    // The same statement, whatever quoting of the table's name SQLite's RENAME left.
    let same = |a: &str, b: &str| {
        let words = |s: &str| {
            renamed_create(s, "t")
                .unwrap_or_else(|| s.to_string())
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        words(a) == words(b)
    };
    let live_tables = objects(tx, "table")?;
    let mut plan = Vec::new();
    for (table, _, sql) in expected_tables
        .iter()
        .filter(|(t, _, _)| t != HISTORY_TABLE)
    {
        let Some((_, _, live_sql)) = live_tables.iter().find(|(t, _, _)| t == table) else {
            continue;
        };
        if same(live_sql, sql) {
            continue;
        }
        let (Some(want), Some(have)) = (
            expected_schema.tables.get(table),
            live_schema.tables.get(table),
        ) else {
            continue;
        };
        if !only_lacks(want, have) || want.columns.keys().any(|c| !have.columns.contains_key(c)) {
            // Something to lose, or a column to make up: no rebuild (refused as a
            // difference, by `adopt` or below).
            continue;
        }
        if let Some(why) = rejected_row(tx, &scratch, table, sql)? {
            return Err(Error::new(
                Kind::SchemaDiffers,
                format!("repair refused: {why}; nothing was changed"),
            ));
        }
        plan.push((table.clone(), sql.clone()));
    }
    if plan_only {
        for (table, _) in &plan {
            log::info!("{table}: rebuilt as the migrations make it (SQLite's 12-step table change; rows kept)");
        }
        return Ok(());
    }
    let views = objects(tx, "view")?;
    let before_orphans = orphans(tx)?;
    if !plan.is_empty() {
        for (name, _, _) in &views {
            tx.execute_batch(&format!("DROP VIEW {}", super::quote_ident(name)))?;
        }
    }
    for (table, sql) in &plan {
        let columns = column_names(&scratch, table)?;
        let new_name = format!("yogaflow_new_{table}");
        let create = renamed_create(sql, &new_name).ok_or_else(|| {
            Error::internal(format!("cannot read the migrations' SQL of {table}"))
        })?;
        // The table's other indexes (not the migrations') and its triggers, made again.
        let again: Vec<String> = objects(tx, "index")?
            .into_iter()
            .filter(|(name, t, _)| {
                t == table && !expected_indexes.iter().any(|(n, _, _)| n == name)
            })
            .chain(
                objects(tx, "trigger")?
                    .into_iter()
                    .filter(|(_, t, _)| t == table),
            )
            .map(|(_, _, sql)| sql)
            .collect();
        let (t, n) = (super::quote_ident(table), super::quote_ident(&new_name));
        let list = columns
            .iter()
            .map(|c| super::quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        tx.execute_batch(&create)?;
        tx.execute_batch(&format!("INSERT INTO {n} ({list}) SELECT {list} FROM {t}"))
            .map_err(|e| {
                Error::new(
                    Kind::SchemaDiffers,
                    format!("repair refused: {table}: {e}; nothing was changed"),
                )
            })?;
        tx.execute_batch(&format!("DROP TABLE {t}; ALTER TABLE {n} RENAME TO {t}"))?;
        for (_, _, index) in expected_indexes.iter().filter(|(_, it, _)| it == table) {
            tx.execute_batch(index)?;
        }
        for sql in &again {
            tx.execute_batch(sql)?;
        }
        log::info!(
            "{table}: rebuilt as the migrations make it (SQLite's 12-step table change; rows kept)"
        );
    }
    if !plan.is_empty() {
        for (_, _, sql) in &views {
            tx.execute_batch(sql)?;
        }
    }
    if repair {
        let live: Vec<String> = objects(tx, "index")?
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        for (name, _, sql) in &expected_indexes {
            if !live.contains(name) {
                log::info!("repair: {sql}");
                tx.execute_batch(sql).map_err(|e| {
                    Error::new(
                        Kind::SchemaDiffers,
                        format!("repair refused: {sql}: {e}; nothing was changed"),
                    )
                })?;
            }
        }
    }
    if let Some((table, rowid, parent)) = orphans(tx)?
        .into_iter()
        .find(|o| !before_orphans.contains(o))
    {
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "refused: {table} row rowid={rowid} refers to a row {parent} does not have; \
                 nothing was changed"
            ),
        ));
    }
    if repair {
        let left = schema::diff(&expected_schema, &schema::read_sqlite(tx)?, true);
        if !left.is_empty() {
            return Err(Error::new(
                Kind::SchemaDiffers,
                format!(
                    "--repair cannot bring the schema to the contract without losing or \
                     guessing: {} difference(s) no rebuild covers: {}; nothing was changed",
                    left.len(),
                    left.join("; ")
                ),
            ));
        }
    }
    Ok(())
}

/// Rows whose foreign key finds no parent: (table, rowid, parent table).
fn orphans(c: &Connection) -> Result<Vec<(String, i64, String)>> {
    let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get(2)?,
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn has_table(c: &Connection, name: &str) -> Result<bool> {
    Ok(
        c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([name])?,
    )
}

/// Starts a write transaction, waiting for other writers up to the connection's
/// `busy_timeout` (`MIGRATE_LOCK_TIMEOUT`).
pub fn immediate(c: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    c.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(busy_error)
}

/// A failure to take the write lock, named as such.
pub fn busy_error(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            Error::new(
                Kind::Lock,
                "SQLite database stayed locked by another process past MIGRATE_LOCK_TIMEOUT",
            )
            .with_source(e)
        }
        _ => Error::from(e),
    }
}

/// A migration's failure: the migration, SQLite's message and code, and the position in the
/// file when SQLite gives one.
fn migration_error(m: &Migration, verb: &str, e: rusqlite::Error) -> Error {
    let mut msg = format!("migration {m} {verb} and was rolled back: ");
    match &e {
        rusqlite::Error::SqliteFailure(f, text) => msg.push_str(&format!(
            "{} (SQLite error {})",
            text.as_deref().unwrap_or("error"),
            f.extended_code
        )),
        rusqlite::Error::SqlInputError {
            msg: text,
            sql,
            offset,
            ..
        } => {
            let (line, col) = migrate::line_col(sql, *offset as usize + 1);
            msg.push_str(&format!("{text} at line {line}, column {col}"));
        }
        other => msg.push_str(&other.to_string()),
    }
    Error::new(Kind::Migration, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_table_statement_takes_a_new_name() {
        for (sql, want) in [
            (
                "CREATE TABLE poses (id INTEGER)",
                "CREATE TABLE \"n\" (id INTEGER)",
            ),
            (
                "create table \"poses\"(id INTEGER)",
                "CREATE TABLE \"n\" (id INTEGER)",
            ),
            ("CREATE TABLE [po ses] (id)", "CREATE TABLE \"n\" (id)"),
        ] {
            assert_eq!(renamed_create(sql, "n").as_deref(), Some(want), "{sql}");
        }
        assert_eq!(renamed_create("CREATE INDEX x ON t (a)", "n"), None);
    }
}
