//! Scripts marked `-- no-transaction`, statement by statement: under our session lock,
//! outside any transaction (what CONCURRENTLY needs), an index an interrupted build left
//! INVALID dropped first; without one (behind a pooler, `MIGRATE_LOCK=transaction`), each
//! statement in a transaction of its own that takes the transaction lock, when none refuses a
//! transaction block. A backfill (`script::BACKFILL`) runs in batches either way.

use super::error::{self, give_way_or, StepError};
use super::lock;
use super::watch::{pg, Waited};
use super::{LockMode, Outcome, Postgres};
use crate::error::{Error, Kind};
use crate::migrations::{Migration, HISTORY_TABLE};
use crate::progress::TableProgress;
use crate::script;
use std::time::{Duration, Instant};
use tokio_postgres::SimpleQueryMessage;

impl Postgres {
    /// A script marked `-- no-transaction`: its statements one at a time, outside a
    /// transaction (what `CREATE INDEX CONCURRENTLY` needs), then the history change. An
    /// index such a build left INVALID when it was interrupted is dropped first, as
    /// PostgreSQL's documentation advises; the statements themselves should be idempotent
    /// (`IF NOT EXISTS`), since a retry runs them again. Only under our own session lock:
    /// a transaction-level lock cannot keep such migrations apart, nor can anything behind a
    /// pooler in transaction mode.
    pub(super) async fn run_outside(
        &mut self,
        m: &Migration,
        sql: &str,
        verb: &str,
        history: &str,
    ) -> std::result::Result<Outcome, StepError> {
        let statements = script::statements(sql);
        // Without our session lock because there is no one session to hold it (`lock` found
        // a pooler), or told to use the transaction lock: a script none of whose statements
        // refuses a transaction block runs each in a transaction of its own that takes the
        // transaction lock. (A caller that never asked for the lock has opted out of it.)
        let sessionless = (self.lock_mode == LockMode::Auto && !self.locked && self.watch.pooled())
            || self.lock_mode == LockMode::Transaction;
        if sessionless && !statements.iter().any(|s| script::refuses_transaction(s)) {
            return self.run_guarded(m, &statements, verb, history).await;
        }
        if self.lock_mode == LockMode::Auto && !self.locked && self.watch.pooled() {
            return Err(Error::new(
                Kind::Migration,
                format!(
                    "{m} runs outside a transaction, which needs the migration lock held by one \
                     server session, and this connection does not keep one (a connection \
                     pooler?): run it with a direct connection (MIGRATE_LOCK=session forces the \
                     session lock); nothing was changed"
                ),
            )
            .into());
        }
        if self.lock_mode == LockMode::Transaction {
            return Err(Error::new(
                Kind::Migration,
                format!(
                    "{m} runs outside a transaction, which MIGRATE_LOCK=transaction cannot keep \
                     apart from other migrators: run it with a direct connection and \
                     MIGRATE_LOCK=session; nothing was changed"
                ),
            )
            .into());
        }
        let start = Instant::now();
        let what = format!("migration {m}");
        // Before the cleanup too: DROP INDEX CONCURRENTLY waits for the app's open
        // transactions on the table just as the build does.
        let set = format!(
            "SET lock_timeout = '{}ms'",
            self.ddl_lock_timeout.as_millis().max(1)
        );
        self.watch
            .short(&what, pg(self.client.batch_execute(&set)))
            .await
            .map_err(Error::from)?;
        // Every way out of these resets the session's lock_timeout below.
        let result = async {
            self.drop_invalid_indexes(m, &statements).await?;
            self.statements_outside(m, &statements, verb, None).await?;
            let record = pg(self.client.batch_execute(history));
            self.watch.short(&what, record).await?;
            Ok::<(), StepError>(())
        }
        .await;
        let reset = pg(self.client.batch_execute("RESET lock_timeout"));
        let reset = self.watch.short(&what, reset).await;
        result?;
        reset.map_err(Error::from)?;
        Ok(Outcome::Done(start.elapsed()))
    }

    /// Drops each index that one of `statements` builds CONCURRENTLY and that an interrupted
    /// earlier build left INVALID.
    async fn drop_invalid_indexes(
        &self,
        m: &Migration,
        statements: &[String],
    ) -> std::result::Result<(), StepError> {
        for index in statements
            .iter()
            .filter_map(|s| script::concurrent_index(s))
        {
            let params = [(&index as _, tokio_postgres::types::Type::TEXT)];
            let invalid = self.client.query_typed(
                "SELECT 1 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace \
                 AND NOT x.indisvalid",
                &params,
            );
            let rows = self
                .watch
                .short(&format!("migration {m}"), pg(invalid))
                .await
                .map_err(Error::from)?;
            if !rows.is_empty() {
                log::warn!(
                    "{m}: index {index} is INVALID (an earlier build was interrupted); dropping \
                     it before building it again"
                );
                let drop = format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    crate::db::quote_ident(&index)
                );
                let what = format!("migration {m}: dropping the INVALID index {index}");
                self.watch
                    .long(&what, false, pg(self.client.batch_execute(&drop)))
                    .await?;
            }
        }
        Ok(())
    }

    /// `statements` one at a time; a failure names the statement and what stays applied.
    async fn statements_outside(
        &self,
        m: &Migration,
        statements: &[String],
        verb: &str,
        guard: Option<&Guard>,
    ) -> std::result::Result<(), StepError> {
        for (i, statement) in statements.iter().enumerate() {
            let what = format!("migration {m}, statement {} of {}", i + 1, statements.len());
            if let Some(b) = script::backfill(statement) {
                self.backfill(&what, &b, guard).await.map_err(|e| match e {
                    StepError::Fail(e) => StepError::Fail(e.context(format!(
                        "migration {m} {verb} at statement {} of {} (a backfill; the batches \
                         done stay done, and the next run goes on from there)",
                        i + 1,
                        statements.len()
                    ))),
                    give_way => give_way,
                })?;
                continue;
            }
            let sql = guard.map_or_else(|| statement.clone(), |g| g.wrap(statement));
            let result = self.simple(&what, &sql, guard.is_some()).await;
            result.map_err(|w| {
                let Waited::Pg(e) = w else {
                    return StepError::from(w);
                };
                if recorded(&e) {
                    return StepError::Done;
                }
                give_way_or(e, |e| {
                    Error::new(
                        Kind::Migration,
                        format!(
                            "migration {m} {verb} at statement {} of {} ({}): {}; it ran \
                             outside a transaction, so the statements before it stay applied; \
                             it is not recorded, and runs again from its first statement next \
                             time",
                            i + 1,
                            statements.len(),
                            crate::error::excerpt(statement),
                            error::describe(&e)
                        ),
                    )
                })
            })?;
        }
        Ok(())
    }

    /// A statement (or, `guarded`, a guarded transaction holding one) as a simple query:
    /// its rows and command completions. A guarded one that fails is rolled back, so that a
    /// transaction-mode pooler gets its server connection back.
    async fn simple(
        &self,
        what: &str,
        sql: &str,
        guarded: bool,
    ) -> std::result::Result<Vec<SimpleQueryMessage>, Waited> {
        let result = self
            .watch
            .long(what, false, pg(self.client.simple_query(sql)))
            .await;
        if guarded && result.is_err() {
            let _ = self
                .watch
                .short(what, pg(self.client.batch_execute("ROLLBACK")))
                .await;
        }
        result
    }

    /// A `-- no-transaction` script none of whose statements refuses a transaction block,
    /// without a session lock (behind a pooler, or `MIGRATE_LOCK=transaction`): each
    /// statement, each backfill batch and the history change in a transaction of its own
    /// that takes the transaction lock first. Such a script is idempotent (it may run again
    /// after an interruption), so another migrator running it too changes nothing; the
    /// history row is written once (a second one would break the version's key: then the
    /// other migrator recorded it).
    async fn run_guarded(
        &mut self,
        m: &Migration,
        statements: &[String],
        verb: &str,
        history: &str,
    ) -> std::result::Result<Outcome, StepError> {
        let start = Instant::now();
        let guard = Guard {
            version: m.version,
            lock_wait: self.lock_wait,
            ddl: self.ddl_lock_timeout,
        };
        self.statements_outside(m, statements, verb, Some(&guard))
            .await?;
        let what = format!("recording {m}");
        match self.simple(&what, &guard.wrap(history), true).await {
            Err(Waited::Pg(e))
                if recorded(&e)
                    || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                Ok(Outcome::AlreadyDone)
            }
            Err(w) => Err(StepError::from(w)),
            Ok(_) => Ok(Outcome::Done(start.elapsed())),
        }
    }

    /// Runs a [`script::Backfill`] in batches of [`BACKFILL_BATCH`] rows, each its own
    /// transaction (under the session's lock timeout, or `guard`'s), logging progress, until
    /// no row is left: an interrupted one goes on where it stopped.
    async fn backfill(
        &self,
        what: &str,
        b: &script::Backfill,
        guard: Option<&Guard>,
    ) -> std::result::Result<(), StepError> {
        let count = |sql: String| async move {
            let rows = self.simple(what, &sql, false).await?;
            Ok::<i64, Waited>(first_value(&rows).and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        let total = count(b.count_sql())
            .await
            .map_err(|w| self.backfill_error(w))?;
        log::info!(
            "{what}: backfilling {total} row(s) of {}, {BACKFILL_BATCH} at a time",
            b.table
        );
        let batch = b.batch_sql(BACKFILL_BATCH);
        let sql = guard.map_or_else(|| batch.clone(), |g| g.wrap(&batch));
        let mut report = TableProgress::start(&format!("backfill {}", b.table), Some(total as u64));
        let (mut done, mut progress) = (0u64, Instant::now());
        let mut pause = Duration::from_millis(100);
        loop {
            let n = match self.simple(what, &sql, guard.is_some()).await {
                Ok(rows) => updated(&rows, guard.is_some()),
                // A row the app holds longer than the table-lock bound: this batch gives way
                // and is tried again; the batches before stay done. Only a backfill that makes
                // no progress for MIGRATE_LOCK_TIMEOUT fails.
                Err(Waited::Pg(e)) if error::is_lock_timeout(&e) => {
                    if progress.elapsed() >= self.lock_wait {
                        return Err(self.stalled(what, b, done));
                    }
                    log::warn!(
                        "{what}: a batch waited for rows the app holds and gave way; retrying in \
                         {} ms",
                        pause.as_millis()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(w) => return Err(self.backfill_error(w)),
            };
            progress = Instant::now();
            pause = Duration::from_millis(100);
            done += n;
            report.add(n);
            // None updated: done, unless the app moved the rows found meanwhile.
            if n == 0
                && count(b.count_sql())
                    .await
                    .map_err(|w| self.backfill_error(w))?
                    == 0
            {
                break;
            }
        }
        report.finish();
        Ok(())
    }

    fn backfill_error(&self, w: Waited) -> StepError {
        match w {
            Waited::Pg(e) if recorded(&e) => StepError::Done,
            Waited::Pg(e) => give_way_or(e, Error::from),
            other => StepError::from(other),
        }
    }

    /// A backfill whose batches kept giving way for MIGRATE_LOCK_TIMEOUT.
    fn stalled(&self, what: &str, b: &script::Backfill, done: u64) -> StepError {
        StepError::Fail(Error::new(
            Kind::Lock,
            format!(
                "{what}: the backfill of {} made no progress for {:.0} s (MIGRATE_LOCK_TIMEOUT): \
                 the app holds the rows it needs; the {done} row(s) done stay done, and the next \
                 run goes on from there",
                b.table,
                self.lock_wait.as_secs_f64()
            ),
        ))
    }
}

/// Rows per backfill batch: pgroll's figure; a batch holds its rows' locks for milliseconds.
const BACKFILL_BATCH: u32 = 1000;

/// A transaction that takes the transaction-level migration lock before a statement (waiting
/// up to `lock_wait`), stops if another migrator has recorded the step meanwhile (SQLSTATE
/// [`RECORDED`]), then gives the statement the table-lock bound (`ddl`).
struct Guard {
    version: i32,
    lock_wait: Duration,
    ddl: Duration,
}

/// The SQLSTATE a guarded statement's transaction raises when its step is recorded already.
const RECORDED: &str = "YF001";

impl Guard {
    /// `statement` in its guarded transaction. The statement ends on a line of its own, so a
    /// trailing `--` comment cannot swallow the COMMIT.
    fn wrap(&self, statement: &str) -> String {
        format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{}ms'; \
             SELECT pg_advisory_xact_lock({}); \
             DO $$ BEGIN IF EXISTS (SELECT 1 FROM {HISTORY_TABLE} WHERE version = {}) THEN \
             RAISE EXCEPTION 'recorded by another migrator' USING ERRCODE = '{RECORDED}'; \
             END IF; END $$; SET LOCAL lock_timeout = '{}ms';\n{}\n; COMMIT",
            self.lock_wait.as_millis().max(1),
            lock::LOCK_KEY,
            self.version,
            self.ddl.as_millis().max(1),
            statement.trim().trim_end_matches(';')
        )
    }
}

/// Whether a guarded statement found its step recorded by another migrator.
fn recorded(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == RECORDED)
}

/// The first value of the first row of a simple query's answer.
fn first_value(rows: &[SimpleQueryMessage]) -> Option<&str> {
    rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0),
        _ => None,
    })
}

/// The rows a batch updated: the UPDATE's completion, the only one, or (guarded: BEGIN, SET,
/// SELECT, DO, SET, UPDATE, COMMIT) the sixth.
fn updated(rows: &[SimpleQueryMessage], guarded: bool) -> u64 {
    let done: Vec<u64> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    let at = if guarded { 5 } else { 0 };
    done.get(at).copied().unwrap_or(0)
}
