//! The SQLite side of the seam. The connection lives on a worker thread of its own (as in
//! sqlx-sqlite): every call is a job sent to it, and the async side only awaits the answer,
//! so signals and timeouts keep running while SQLite blocks (a lock wait, a long statement).
//! An interrupt handle ends whatever the worker is running; open transactions roll back.
//! One migrator at a time is SQLite's own write lock: `BEGIN IMMEDIATE` per step, waiting up
//! to `busy_timeout`, with the history re-checked inside it. The catalog readers are
//! `catalog`, adoption's table rebuilds `rebuild`, error description `error`.

pub mod catalog;
pub mod error;
mod rebuild;

use self::catalog::has_table;
use self::error::{busy_error, migration_error, stopped};
use super::{AdoptMode, Adoption, OpenOptions, Outcome, Step};
use crate::error::{Error, Kind, Result};
use crate::migrations::{self, Applied, Migration, HISTORY_DDL, HISTORY_TABLE};
use crate::schema::Schema;
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

    /// Starts the write transaction a bulk write runs in (`BEGIN IMMEDIATE`), waiting for
    /// other writers up to `busy_timeout`; the caller ends it.
    pub async fn begin_immediate(&self) -> Result<()> {
        self.call(|c| c.execute_batch("BEGIN IMMEDIATE").map_err(busy_error))
            .await
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>> {
        self.call(|c| catalog::table_names(c)).await
    }

    pub(super) async fn read_history(&self) -> Result<Option<Vec<Applied>>> {
        self.call(|c| {
            if !has_table(c, HISTORY_TABLE)? {
                return Ok(None);
            }
            let mut stmt = c.prepare(migrations::HISTORY_SELECT)?;
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
                .map(migrations::parse_history_row)
                .collect::<Result<_>>()
                .map(Some)
        })
        .await
    }

    pub(super) async fn read_deployments(
        &self,
    ) -> Result<std::collections::BTreeMap<i32, migrations::Deployment>> {
        self.call(|c| {
            let mut out = std::collections::BTreeMap::new();
            if !has_table(c, HISTORY_TABLE)? {
                return Ok(out);
            }
            let columns = catalog::column_names(c, HISTORY_TABLE)?;
            let pick = |name: &str| {
                if columns.iter().any(|c| c == name) {
                    name.to_string()
                } else {
                    "NULL".to_string()
                }
            };
            let sql = format!(
                "SELECT version, {}, {} FROM {HISTORY_TABLE}",
                pick("deployment_id"),
                pick("git_commit_sha")
            );
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let d = migrations::Deployment {
                    id: r.get(1)?,
                    commit: r.get(2)?,
                };
                out.insert(r.get(0)?, d);
            }
            Ok(out)
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
            Step::Adopt(a) => Owned::Adopt {
                migrations: a.migrations.to_vec(),
                repair: a.repair,
                mode: a.mode,
            },
        };
        self.call(move |c| {
            // A table rebuild drops a table: with foreign keys on (this build's default) that
            // deletes, and cascades into, the rows of the tables that refer to it. SQLite's
            // 12-step procedure turns them off around the transaction (they cannot change
            // inside one) and checks them with `PRAGMA foreign_key_check` before the commit.
            // A baseline rebuilds, and so may a migration that drops a table (`new --from`
            // writes rebuilds); other steps pay nothing for this.
            let fk_off = step.drops_tables()
                && c.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, bool>(0))?;
            if fk_off {
                c.execute_batch("PRAGMA foreign_keys = OFF")?;
            }
            let result = run_owned(c, &step, fk_off);
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
    Adopt {
        migrations: Vec<Migration>,
        repair: bool,
        mode: AdoptMode,
    },
}

impl Owned {
    /// Whether the step may drop a table (and so, with foreign keys on, cascade into others).
    fn drops_tables(&self) -> bool {
        match self {
            Owned::Adopt { .. } => true,
            Owned::Apply(m) => migrations::drops_tables(m.up),
            Owned::Undo(m, _) => migrations::drops_tables(m.down),
        }
    }
}

/// Adds the deployment columns to a history table made before they existed.
fn deployment_columns(tx: &Connection) -> Result<()> {
    let have = catalog::column_names(tx, HISTORY_TABLE)?;
    for column in ["deployment_id", "git_commit_sha"] {
        if !have.iter().any(|c| c == column) {
            tx.execute_batch(&format!(
                "ALTER TABLE {HISTORY_TABLE} ADD COLUMN {column} VARCHAR(255)"
            ))?;
        }
    }
    Ok(())
}

/// The script of a migration run with foreign keys off: what it leaves must still hold them.
fn run_checked(tx: &Connection, m: &Migration, sql: &str, verb: &str, checked: bool) -> Result<()> {
    let before = if checked {
        rebuild::orphans(tx)?
    } else {
        Vec::new()
    };
    tx.execute_batch(sql)
        .map_err(|e| migration_error(m, verb, e))?;
    if checked {
        rebuild::refuse_new_orphans(tx, &before).map_err(|e| e.context(format!("{m}")))?;
    }
    Ok(())
}

/// The work of [`Sqlite::run_step`], on the worker. `fk_off`: foreign keys are off, so the
/// step's result is checked against them before the commit.
fn run_owned(c: &mut Connection, step: &Owned, fk_off: bool) -> Result<Outcome> {
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
            deployment_columns(&tx)?;
            run_checked(&tx, m, m.up, "failed", fk_off)?;
            tx.execute_batch(&migrations::record_sql(m))?;
        }
        Owned::Undo(m, allow_loss) => {
            if !recorded(m.version)? {
                return Ok(Outcome::AlreadyDone);
            }
            undo(&tx, m, *allow_loss, fk_off)?;
        }
        Owned::Adopt {
            migrations: ms,
            repair,
            mode,
        } => {
            // SQLite's timestamps have no zone type to become: nothing is assumed there.
            let adoption = Adoption {
                migrations: ms,
                repair: *repair,
                mode: *mode,
                time_zone: None,
            };
            rebuild::adopt(&tx, &adoption)?;
            tx.execute_batch(&migrations::record_all_sql(ms))?;
            if *mode != AdoptMode::Commit {
                tx.rollback()?;
                return Ok(Outcome::Done(start.elapsed()));
            }
        }
    }
    tx.commit()?;
    Ok(Outcome::Done(start.elapsed()))
}

/// Undoes `m` inside `tx` (under the write lock: nobody inserts between the count of a table
/// its undo drops and the drop, so rows are never dropped unconfirmed).
fn undo(tx: &Connection, m: &Migration, allow_loss: bool, fk_off: bool) -> Result<()> {
    for table in m.dropped_tables().into_iter().filter(|_| !allow_loss) {
        if !has_table(tx, &table)? {
            continue;
        }
        let sql = format!("SELECT count(*) FROM {}", super::quote_ident(&table));
        let n: i64 = tx.query_row(&sql, [], |r| r.get(0))?;
        if n > 0 {
            return Err(migrations::refused_loss(m, &table, &n.to_string()));
        }
    }
    run_checked(tx, m, m.down, "could not be undone", fk_off)?;
    tx.execute_batch(&migrations::delete_sql(m))?;
    Ok(())
}

/// The schema `ms` make on a new in-memory database (no file, no connection needed: what
/// `new --from` compares with when the models' database is PostgreSQL).
pub fn scratch_schema(ms: &[Migration]) -> Result<Schema> {
    catalog::read_schema(&scratch_db(ms)?)
}

/// The migrations `ms` applied to a new in-memory database.
fn scratch_db(ms: &[Migration]) -> Result<Connection> {
    let scratch = Connection::open_in_memory()?;
    for m in ms {
        scratch
            .execute_batch(m.up)
            .map_err(|e| migration_error(m, "failed on a scratch database", e))?;
    }
    Ok(scratch)
}

/// Starts a write transaction, waiting for other writers up to the connection's
/// `busy_timeout` (`MIGRATE_LOCK_TIMEOUT`).
fn immediate(c: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    c.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(busy_error)
}

impl Sqlite {
    pub(super) async fn live_schema(&self) -> Result<Schema> {
        self.call(|c| catalog::read_schema(c)).await
    }

    /// Applies `ms` to an in-memory database.
    pub(super) async fn schema_of(&self, ms: &[Migration]) -> Result<Schema> {
        let ms = ms.to_vec();
        self.call(move |_| scratch_schema(&ms)).await
    }

    pub(super) async fn id_high_water(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        let tables = tables.to_vec();
        self.call(move |c| {
            if !has_table(c, "sqlite_sequence")? {
                return Ok(Vec::new());
            }
            let mut stmt = c.prepare("SELECT name, seq FROM sqlite_sequence WHERE seq > 0")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter(|(t, _)| tables.contains(t))
                .collect())
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
