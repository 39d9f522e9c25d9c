//! The PostgreSQL side of the seam: a session (its connection task runs on the runtime), its
//! history, and each [`Step`] run in one transaction with its history change, giving way to
//! the app's traffic when a table lock does not come within `lock_timeout` and retrying. The
//! catalog readers are `catalog`, the migration lock in both modes `lock`, adoption `adopt`,
//! error description `error`, connecting `connect`, whether the connection is one server
//! session `session`, and `watch`, which bounds every wait for the server's answer (telling a
//! slow statement from a link that is gone).

mod adopt;
pub mod catalog;
pub mod connect;
pub mod error;
pub mod lock;
mod outside;
mod session;
pub mod watch;

use self::error::{give_way_or, is_undefined_table, migration_error, StepError};
use self::watch::{pg, SharedWatch, Waited, Watch};
use super::retry::Backoff;
use super::{AdoptMode, LockMode, OpenOptions, Outcome, Step};
use crate::error::{Error, Kind, Result};
use crate::migrations::{self, Applied, Deployment, Migration, HISTORY_DDL};
use crate::schema::Schema;
use crate::script;
use crate::url::PgUrl;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage, Transaction};

/// An open PostgreSQL session.
pub struct Postgres {
    client: Client,
    /// Whether this session holds the advisory lock.
    locked: bool,
    /// `lock_timeout` of each migration attempt.
    ddl_lock_timeout: Duration,
    /// How long a migration keeps retrying table-lock waits in all.
    lock_wait: Duration,
    /// How long the connection may go without a sign of life from the other side.
    net_timeout: Duration,
    /// Whether the server was told about `net_timeout` (see `watch_for_silence`).
    watched: bool,
    /// How migrators keep out of each other's way.
    lock_mode: LockMode,
    /// Bounds every wait for an answer (`MIGRATE_NET_TIMEOUT`).
    watch: SharedWatch,
}

impl Postgres {
    /// Connects, waiting up to `options.wait` for the server (see `connect`).
    pub async fn connect(url: &PgUrl, options: OpenOptions) -> Result<Postgres> {
        let lock_mode = options.lock_mode.for_url(url);
        let client = connect::connect_pg(url, options.wait, options.net_timeout).await?;
        // In memory, no round trip: the no-op start pays nothing for it.
        let announced = match lock_mode {
            LockMode::Auto => session::announced_pid(&client).await,
            _ => None,
        };
        // Unknown in `Auto` until a pid is seen; without an announced pid, assume a pooler.
        let pooled = match lock_mode {
            LockMode::Transaction => true,
            LockMode::Session => false,
            LockMode::Auto => announced.is_none(),
        };
        let watch = Watch::new(url, options.net_timeout, pooled, announced);
        Ok(Postgres {
            client,
            locked: false,
            ddl_lock_timeout: options.ddl_lock_timeout,
            lock_wait: options.lock_wait.unwrap_or(options.ddl_lock_timeout),
            net_timeout: options.net_timeout,
            watched: false,
            lock_mode,
            watch: std::sync::Arc::new(watch),
        })
    }

    /// The watch over this session, for work that holds its transaction (a load).
    pub fn watch(&self) -> SharedWatch {
        self.watch.clone()
    }

    /// The session, mutably (transactions borrow it).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>> {
        let names = catalog::table_names(&self.client);
        self.watch.short("listing the tables", names).await
    }

    pub(super) async fn read_history(&self) -> Result<Option<Vec<Applied>>> {
        // The simple protocol: no prepared statement to clash with a pooler's.
        let read = pg(self.client.simple_query(migrations::HISTORY_SELECT));
        let rows = match self
            .watch
            .short("reading the migration history", read)
            .await
        {
            Ok(msgs) => msgs
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => {
                        Some([0, 1, 2, 3].map(|i| r.get(i).map(str::to_string)))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(Waited::Pg(e)) if is_undefined_table(&e) => return Ok(None),
            Err(Waited::Pg(e)) => {
                return Err(Error::from(e).context("reading the migration history"))
            }
            Err(Waited::Lost(e)) => return Err(e),
        };
        rows.into_iter()
            .map(migrations::parse_history_row)
            .collect::<Result<_>>()
            .map(Some)
    }

    pub(super) async fn ensure_history(&self) -> Result<()> {
        // Without our own session lock, concurrent `CREATE TABLE IF NOT EXISTS` can collide:
        // created under the transaction lock instead.
        if self.guarded() && !self.locked {
            let label = lock::label(self.lock_mode);
            return lock::ensure_history_locked(&self.client, &self.watch, self.lock_wait, label)
                .await;
        }
        let create = pg(self.client.batch_execute(HISTORY_DDL));
        Ok(self
            .watch
            .short("creating the history table", create)
            .await?)
    }

    /// Before this session takes locks the app may wait for: have the server, too, notice
    /// within `MIGRATE_NET_TIMEOUT` when we vanish without a word (a node or proxy gone), and
    /// end the session and its locks instead of keeping them for its default two hours. One
    /// round trip, once per session, and never on the path that has nothing to do.
    pub async fn watch_for_silence(&mut self) -> Result<()> {
        // Behind a transaction-mode pooler a session SET would leak to other clients, and the
        // server's socket is the pooler's anyway: in `Auto` it is made only on the backend we
        // logged in to (one server session), and the pid it returns says whether it was.
        let only_on = match (self.lock_mode, self.watch.announced()) {
            (LockMode::Transaction, _) | (LockMode::Auto, None) => return Ok(()),
            (LockMode::Auto, Some(pid)) => format!("IF pg_backend_pid() = {pid} THEN"),
            (LockMode::Session, _) => "IF true THEN".to_string(),
        };
        if self.watched || self.watch.pooled() {
            return Ok(());
        }
        let (idle, interval, count) = connect::keepalive(self.net_timeout);
        // One statement, and a server without one of the settings (tcp_user_timeout came in
        // PostgreSQL 12) keeps the others instead of failing the run; in the same round trip,
        // our backend's pid, for the watch.
        let sql = format!(
            "DO $yogaflow$ DECLARE s text[]; BEGIN {only_on} \
                   FOREACH s SLICE 1 IN ARRAY ARRAY[['tcp_keepalives_idle', '{}'], \
                     ['tcp_keepalives_interval', '{}'], ['tcp_keepalives_count', '{count}'], \
                     ['tcp_user_timeout', '{}']] LOOP \
                     BEGIN PERFORM set_config(s[1], s[2], false); \
                     EXCEPTION WHEN undefined_object THEN NULL; END; \
                   END LOOP; \
                 END IF; END $yogaflow$; SELECT pg_backend_pid()",
            idle.as_secs(),
            interval.as_secs(),
            self.net_timeout.as_millis()
        );
        let rows = self
            .watch
            .short(
                "setting the session's keepalives",
                pg(self.client.simple_query(&sql)),
            )
            .await?;
        self.watch.learn_pid(&rows);
        self.watched = true;
        Ok(())
    }

    /// Takes the session lock where it is kept: always with `Session`, never with
    /// `Transaction`, and with `Auto` only on the backend we logged in to (each step is
    /// guarded in its own transaction anyway: see `try_step`).
    pub(super) async fn lock(&mut self, timeout: Duration) -> Result<()> {
        if self.lock_mode == LockMode::Transaction {
            // Each step's transaction takes the lock itself (see `lock::lock_in`).
            return Ok(());
        }
        self.watch_for_silence().await?;
        let only_on = match self.lock_mode {
            LockMode::Auto => self.watch.announced().filter(|_| !self.watch.pooled()),
            _ => None,
        };
        if self.lock_mode == LockMode::Auto && only_on.is_none() {
            self.not_one_session();
            return Ok(());
        }
        self.locked = lock::acquire(&self.client, &self.watch, timeout, only_on).await?;
        if !self.locked {
            self.not_one_session();
        }
        Ok(())
    }

    /// `Auto` found no one server session (a pooler): says so.
    fn not_one_session(&self) {
        log::info!(
            "the connection does not keep one server session (a connection pooler?): each \
             migration takes the migration lock inside its own transaction"
        );
    }

    /// Whether each step takes the transaction lock and reads its history row again under it
    /// (`Auto` and `Transaction`): correct behind any pooler, whatever the session lock did.
    fn guarded(&self) -> bool {
        self.lock_mode != LockMode::Session
    }

    pub(super) async fn unlock(&mut self) -> Result<()> {
        if std::mem::take(&mut self.locked) {
            lock::release(&self.client, &self.watch).await?;
        }
        Ok(())
    }

    /// Runs `step` in one transaction whose statements wait at most `ddl_lock_timeout` for a
    /// table lock. A waiting DDL statement queues every later lock request on its table behind
    /// it (PostgreSQL's lock queue), so one slow app transaction would otherwise stall all of
    /// the app's writes for as long as the migration waits. On a lock timeout the attempt
    /// rolls back (the app's queued traffic goes on), the open transactions that may hold the
    /// lock are logged, and the step is tried again with backoff until `lock_wait` has passed.
    pub(super) async fn run_step(&mut self, step: Step<'_>) -> Result<Outcome> {
        let mut wait = Backoff::new(
            Duration::from_millis(250),
            Duration::from_secs(5),
            self.lock_wait,
        );
        for attempt in 1.. {
            let tried = self.try_step(step).await;
            self.watch.transaction_ended();
            match tried {
                Ok(outcome) => return Ok(outcome),
                Err(StepError::Fail(e)) => return Err(e),
                Err(StepError::Done) => return Ok(Outcome::AlreadyDone),
                Err(StepError::GiveWay) => {}
            }
            let blockers = catalog::open_transactions(&self.client);
            let blockers = self
                .watch
                .short("reading the open transactions", async {
                    Ok::<_, Error>(blockers.await)
                })
                .await?;
            let what = match step {
                Step::Apply(m) => format!("migration {m}"),
                Step::Undo { migration: m, .. } => format!("undoing {m}"),
                Step::Adopt(_) => "recording the baseline".to_string(),
            };
            if wait.expired() {
                return Err(Error::new(
                    Kind::Lock,
                    format!(
                        "{what} could not lock its tables: {attempt} attempt(s) in {:.1} s \
                         (MIGRATE_LOCK_TIMEOUT={}), each giving way after {} \
                         (MIGRATE_DDL_LOCK_TIMEOUT); nothing of it was applied; open \
                         transactions that may hold the lock: {blockers}",
                        wait.elapsed().as_secs_f64(),
                        self.lock_wait.as_secs_f64(),
                        seconds(self.ddl_lock_timeout)
                    ),
                ));
            }
            let pause = wait.next_pause();
            log::warn!(
                "{what} waited {} for a table lock (MIGRATE_DDL_LOCK_TIMEOUT) and gave way to \
                 the app's traffic; retrying in {} ms; open transactions that may hold it: \
                 {blockers}",
                seconds(self.ddl_lock_timeout),
                pause.as_millis()
            );
            tokio::time::sleep(pause).await;
        }
        unreachable!("the loop returns")
    }

    /// One attempt at `step`: in one transaction, or statement by statement for a script
    /// marked `-- no-transaction`.
    async fn try_step(&mut self, step: Step<'_>) -> std::result::Result<Outcome, StepError> {
        match step {
            Step::Apply(m) if script::outside_transaction(m.up) => {
                return self
                    .run_outside(m, m.up, "failed", &migrations::record_sql_pg(m))
                    .await;
            }
            Step::Undo { migration: m, .. } if script::outside_transaction(m.down) => {
                let history = migrations::delete_sql(m);
                return self
                    .run_outside(m, m.down, "could not be undone", &history)
                    .await;
            }
            Step::Undo { migration: m, .. } if script::outside_transaction(m.up) => {
                return Err(Error::new(
                    Kind::Migration,
                    format!(
                        "{m} ran outside a transaction (`{}`); its undo script must be marked \
                         the same way to be undone: nothing was changed",
                        script::NO_TRANSACTION
                    ),
                )
                .into());
            }
            _ => {}
        }
        let start = Instant::now();
        let (guarded, lock_wait, ddl) = (self.guarded(), self.lock_wait, self.ddl_lock_timeout);
        let label = lock::label(self.lock_mode);
        let watch = self.watch.clone();
        let what = match step {
            Step::Apply(m) => format!("migration {m}"),
            Step::Undo { migration: m, .. } => format!("undoing {m}"),
            Step::Adopt(_) => "recording the baseline".to_string(),
        };
        // READ COMMITTED even where the database's default is stricter: the history read
        // under the lock must see what the migrator before us committed, which a snapshot
        // taken before the lock wait (REPEATABLE READ) would not.
        let mut begin = self.client.build_transaction();
        if guarded {
            begin = begin.isolation_level(tokio_postgres::IsolationLevel::ReadCommitted);
        }
        let tx = watch
            .short("starting a transaction", pg(begin.start()))
            .await?;
        watch.learn_pid_in(&tx).await?;
        if guarded {
            // With our own session lock (`Auto` on one session) this is granted at once.
            let waiting = format!("waiting for the migration lock{label}");
            if watch
                .long(&waiting, false, lock::lock_in(&tx, lock_wait, step, label))
                .await?
            {
                return Ok(Outcome::AlreadyDone);
            }
        }
        let set = format!("SET LOCAL lock_timeout = '{}ms'", ddl.as_millis().max(1));
        watch.short(&what, pg(tx.batch_execute(&set))).await?;
        let commit = watch.long(&what, false, step_in(&tx, step)).await?;
        let end = format!("COMMIT of {what}");
        if commit {
            watch.long(&end, true, pg(tx.commit())).await?;
        } else {
            watch.short(&what, pg(tx.rollback())).await?;
        }
        Ok(Outcome::Done(start.elapsed()))
    }

    pub(super) async fn live_schema(&self) -> Result<Schema> {
        let what = "reading the live schema";
        let name: String = self
            .watch
            .short(
                what,
                pg(self
                    .client
                    .query_typed_one("SELECT current_schema()::text", &[])),
            )
            .await?
            .get(0);
        let read = catalog::read_schema(&self.client, &name);
        self.watch.long(what, false, read).await
    }

    /// Opens a transaction on the session with `BEGIN` (its pid learnt in the same round
    /// trip), for reads that a watch can follow behind any pooler.
    async fn begin(&self, what: &str, begin: &str) -> Result<()> {
        let sql = format!("{begin}; SELECT pg_backend_pid()");
        let rows = self
            .watch
            .short(what, pg(self.client.simple_query(&sql)))
            .await?;
        self.watch.learn_pid(&rows);
        Ok(())
    }

    /// Ends what [`Postgres::begin`] opened with `end` (`ROLLBACK`, `COMMIT`).
    async fn end(&self, what: &str, end: &str) -> Result<()> {
        let result = self
            .watch
            .short(what, pg(self.client.batch_execute(end)))
            .await;
        self.watch.transaction_ended();
        Ok(result?)
    }

    /// Applies `ms` to a scratch schema inside a transaction that is rolled back
    /// (so it needs CREATE on the database, and leaves nothing behind).
    pub(super) async fn schema_of(&self, ms: &[Migration]) -> Result<Schema> {
        let c = &self.client;
        let what = "building the expected schema";
        self.begin(what, "BEGIN").await?;
        let scratch = format!("yogaflow_expected_{}", std::process::id());
        let build = async {
            build_scratch(c, &scratch, ms, "failed on a scratch schema").await?;
            catalog::read_schema(c, &scratch).await
        };
        let result = self.watch.long(what, false, build).await;
        self.end(what, "ROLLBACK").await?;
        result
    }

    pub(super) async fn read_deployments(&self) -> Result<BTreeMap<i32, Deployment>> {
        let read = catalog::read_deployments(&self.client);
        self.watch.short("reading the history", read).await
    }

    pub(super) async fn sessions_before(&self, below: i32) -> Result<Vec<String>> {
        let read = catalog::sessions_before(&self.client, below);
        self.watch.short("reading the sessions", read).await
    }

    pub(super) async fn id_high_water(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        let read = catalog::id_high_water(&self.client, tables);
        self.watch.short("reading the id sequences", read).await
    }

    /// `count(*)` of each table, in one read-only transaction (so that behind any pooler the
    /// watch knows which backend is counting: big tables take long).
    pub(super) async fn row_counts(&self, tables: &[String]) -> Result<Vec<(String, i64)>> {
        let what = "counting rows";
        self.begin(what, "BEGIN READ ONLY").await?;
        let count = async {
            let mut out = Vec::new();
            for t in tables {
                let sql = format!("SELECT count(*) FROM {}", super::quote_ident(t));
                out.push((
                    t.clone(),
                    self.client.query_typed_one(&sql, &[]).await?.get(0),
                ));
            }
            Ok::<_, Error>(out)
        };
        let result = self.watch.long(what, false, count).await;
        self.end(what, "COMMIT").await?;
        result
    }
}

/// Creates schema `scratch` in the open transaction, makes it the search path for the rest of
/// the transaction, and applies `ms` there (each as one block: the no-transaction marker means
/// nothing inside a transaction that is rolled back or dropped anyway).
async fn build_scratch(
    c: &impl GenericClient,
    scratch: &str,
    ms: &[Migration],
    verb: &str,
) -> Result<()> {
    c.batch_execute(&format!(
        "CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}"
    ))
    .await
    .map_err(|e| {
        Error::from(e).context("building the expected schema needs CREATE on the database")
    })?;
    for m in ms {
        c.batch_execute(&script::in_transaction(m.up))
            .await
            .map_err(|e| migration_error(m, m.up, verb, e))?;
    }
    Ok(())
}

/// Undoes `m` inside `tx`. Unless `allow_loss`, each table its undo script drops is locked and
/// counted first: rows the app inserted since `down` counted are never dropped unconfirmed.
async fn undo(
    tx: &Transaction<'_>,
    m: &Migration,
    allow_loss: bool,
) -> std::result::Result<(), StepError> {
    for table in m.dropped_tables().into_iter().filter(|_| !allow_loss) {
        let t = super::quote_ident(&table);
        // Asked first: a LOCK of a table that is not there would abort the transaction.
        let exists = format!(
            "SELECT to_regclass({}) IS NOT NULL",
            catalog::quote_literal(&t)
        );
        let there = tx
            .simple_query(&exists)
            .await?
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")));
        if !there {
            continue;
        }
        let sql =
            format!("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE; SELECT count(*)::text FROM {t}");
        let rows = tx.simple_query(&sql).await?;
        let n = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        if let Some(n) = n.filter(|n| n != "0") {
            return Err(migrations::refused_loss(m, &table, &n).into());
        }
    }
    tx.batch_execute(m.down)
        .await
        .map_err(|e| give_way_or(e, |e| migration_error(m, m.down, "could not be undone", e)))?;
    tx.batch_execute(&migrations::delete_sql(m)).await?;
    Ok(())
}

/// The statements of `step` inside `tx`; whether the transaction is to commit.
async fn step_in(tx: &Transaction<'_>, step: Step<'_>) -> std::result::Result<bool, StepError> {
    Ok(match step {
        Step::Apply(m) => {
            tx.batch_execute(m.up)
                .await
                .map_err(|e| give_way_or(e, |e| migration_error(m, m.up, "failed", e)))?;
            tx.batch_execute(&migrations::record_sql_pg(m)).await?;
            true
        }
        Step::Undo {
            migration: m,
            allow_loss,
        } => {
            undo(tx, m, allow_loss).await?;
            true
        }
        Step::Adopt(adoption) => {
            adopt::adopt(tx, adoption).await?;
            tx.batch_execute(&migrations::record_all_sql(adoption.migrations))
                .await?;
            adoption.mode == AdoptMode::Commit
        }
    })
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
