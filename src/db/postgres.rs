//! The PostgreSQL side of the seam: a session (its connection task runs on the runtime), the
//! migration lock on it, history, steps in one transaction each, the catalog, and the one
//! place that turns a PostgreSQL error into a message.

use super::{LockMode, OpenOptions, Outcome, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, HISTORY_DDL, HISTORY_TABLE};
use crate::schema::{self, Schema};
use crate::script;
use crate::url::PgUrl;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::{Client, SimpleQueryMessage};

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
}

/// How one attempt at a step ended.
enum Attempt {
    Done(Outcome),
    /// A table lock was not granted within `lock_timeout`: the attempt gave way.
    LockTimeout,
}

impl Postgres {
    /// Connects, waiting up to `options.wait` for the server (see `connect`).
    pub async fn connect(url: &PgUrl, options: OpenOptions) -> Result<Postgres> {
        Ok(Postgres {
            client: crate::connect::connect_pg(url, options.wait, options.net_timeout).await?,
            locked: false,
            ddl_lock_timeout: options.ddl_lock_timeout,
            lock_wait: options.lock_wait.unwrap_or(options.ddl_lock_timeout),
            net_timeout: options.net_timeout,
            watched: false,
            lock_mode: options.lock_mode.for_url(url),
        })
    }

    /// The session, mutably (transactions borrow it).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .client
            .query_typed(
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
        if self.lock_mode == LockMode::Transaction {
            // Concurrent CREATE TABLE IF NOT EXISTS can still collide: under the lock.
            self.client
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({}); \
                     {HISTORY_DDL}; COMMIT",
                    self.lock_wait.as_millis().max(1),
                    crate::lock::LOCK_KEY
                ))
                .await
                .map_err(|e| self.lock_error(e))?;
            return Ok(());
        }
        self.client.batch_execute(HISTORY_DDL).await?;
        Ok(())
    }

    fn lock_error(&self, e: tokio_postgres::Error) -> Error {
        lock_error(e, self.lock_wait)
    }
    /// Before this session takes locks the app may wait for: have the server, too, notice
    /// within `MIGRATE_NET_TIMEOUT` when we vanish without a word (a node or proxy gone), and
    /// end the session and its locks instead of keeping them for its default two hours. One
    /// round trip, once per session, and never on the path that has nothing to do.
    pub async fn watch_for_silence(&mut self) -> Result<()> {
        // Behind a transaction-mode pooler a session SET would leak to other clients, and the
        // server's socket is the pooler's anyway.
        if self.watched || self.lock_mode == LockMode::Transaction {
            return Ok(());
        }
        let (idle, interval, count) = crate::connect::keepalive(self.net_timeout);
        self.client
            // One statement, and a server without one of the settings (tcp_user_timeout came
            // in PostgreSQL 12) keeps the others instead of failing the run.
            .batch_execute(&format!(
                "DO $yogaflow$ DECLARE s text[]; BEGIN \
                   FOREACH s SLICE 1 IN ARRAY ARRAY[['tcp_keepalives_idle', '{}'], \
                     ['tcp_keepalives_interval', '{}'], ['tcp_keepalives_count', '{count}'], \
                     ['tcp_user_timeout', '{}']] LOOP \
                     BEGIN PERFORM set_config(s[1], s[2], false); \
                     EXCEPTION WHEN undefined_object THEN NULL; END; \
                   END LOOP; \
                 END $yogaflow$",
                idle.as_secs(),
                interval.as_secs(),
                self.net_timeout.as_millis()
            ))
            .await?;
        self.watched = true;
        Ok(())
    }

    pub(super) async fn lock(&mut self, timeout: Duration) -> Result<()> {
        if self.lock_mode == LockMode::Transaction {
            // Each step's transaction takes the lock itself (see `lock_in`).
            return Ok(());
        }
        self.watch_for_silence().await?;
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

    /// Runs `step` in one transaction whose statements wait at most `ddl_lock_timeout` for a
    /// table lock. A waiting DDL statement queues every later lock request on its table behind
    /// it (PostgreSQL's lock queue), so one slow app transaction would otherwise stall all of
    /// the app's writes for as long as the migration waits. On a lock timeout the attempt
    /// rolls back (the app's queued traffic goes on), the open transactions that may hold the
    /// lock are logged, and the step is tried again with backoff until `lock_wait` has passed.
    pub(super) async fn run_step(&mut self, step: Step<'_>) -> Result<Outcome> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(250);
        for attempt in 1.. {
            if let Attempt::Done(outcome) = self.try_step(step).await? {
                return Ok(outcome);
            }
            let blockers = self.open_transactions().await;
            let what = match step {
                Step::Apply(m) => format!("migration {m}"),
                Step::Undo { migration: m, .. } => format!("undoing {m}"),
                Step::Record { .. } => "recording the baseline".to_string(),
            };
            if start.elapsed() >= self.lock_wait {
                return Err(Error::new(
                    Kind::Lock,
                    format!(
                        "{what} could not lock its tables: {attempt} attempt(s) in {:.1} s \
                         (MIGRATE_LOCK_TIMEOUT={}), each giving way after {} \
                         (MIGRATE_DDL_LOCK_TIMEOUT); nothing of it was applied; open \
                         transactions that may hold the lock: {blockers}",
                        start.elapsed().as_secs_f64(),
                        self.lock_wait.as_secs_f64(),
                        seconds(self.ddl_lock_timeout)
                    ),
                ));
            }
            log::warn!(
                "{what} waited {} for a table lock (MIGRATE_DDL_LOCK_TIMEOUT) and gave way to \
                 the app's traffic; retrying in {} ms; open transactions that may hold it: \
                 {blockers}",
                seconds(self.ddl_lock_timeout),
                delay.as_millis()
            );
            tokio::time::sleep(delay.min(self.lock_wait.saturating_sub(start.elapsed()))).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        unreachable!("the loop returns")
    }

    async fn try_step(&mut self, step: Step<'_>) -> Result<Attempt> {
        match step {
            Step::Apply(m) if script::outside_transaction(m.up) => {
                return self
                    .run_outside(m, m.up, "failed", &migrate::record_sql(m))
                    .await;
            }
            Step::Undo { migration: m, .. } if script::outside_transaction(m.down) => {
                return self
                    .run_outside(m, m.down, "could not be undone", &migrate::delete_sql(m))
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
                ));
            }
            _ => {}
        }
        let start = Instant::now();
        let tx = self.client.transaction().await?;
        if self.lock_mode == LockMode::Transaction && lock_in(&tx, self.lock_wait, step).await? {
            return Ok(Attempt::Done(Outcome::AlreadyDone));
        }
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.ddl_lock_timeout.as_millis().max(1)
        ))
        .await?;
        let result = match step {
            Step::Apply(m) => match tx.batch_execute(m.up).await {
                Err(e) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                Err(e) => Err(migration_error(m, m.up, "failed", e)),
                Ok(()) => tx
                    .batch_execute(&migrate::record_sql(m))
                    .await
                    .map_err(Error::from),
            },
            Step::Undo {
                migration: m,
                allow_loss,
            } => {
                if !allow_loss {
                    for table in m.dropped_tables() {
                        let t = super::quote_ident(&table);
                        let sql = format!(
                            "LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE; \
                             SELECT count(*)::text FROM {t}"
                        );
                        let rows = match tx.simple_query(&sql).await {
                            Err(e) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => continue,
                            Err(e) => return Err(e.into()),
                            Ok(rows) => rows,
                        };
                        let n = rows.iter().find_map(|m| match m {
                            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                            _ => None,
                        });
                        if let Some(n) = n.filter(|n| n != "0") {
                            return Err(migrate::refused_loss(m, &table, &n));
                        }
                    }
                }
                match tx.batch_execute(m.down).await {
                    Err(e) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                    Err(e) => Err(migration_error(m, m.down, "could not be undone", e)),
                    Ok(()) => tx
                        .batch_execute(&migrate::delete_sql(m))
                        .await
                        .map_err(Error::from),
                }
            }
            Step::Record {
                migrations: ms,
                repair,
                plan_only,
                ..
            } => {
                match serial_to_identity(&tx, plan_only).await {
                    Err(e) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                    other => other?,
                }
                match reconcile(&tx, ms, repair, plan_only).await {
                    Err(Stop::Pg(e)) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                    Err(Stop::Pg(e)) => return Err(e.into()),
                    Err(Stop::Refused(e)) => return Err(e),
                    Ok(()) => {}
                }
                match tx.batch_execute(&migrate::record_all_sql(ms)).await {
                    Err(e) if is_lock_timeout(&e) => return Ok(Attempt::LockTimeout),
                    other => other.map_err(Error::from),
                }
            }
        };
        result?;
        if let Step::Record { dry_run: true, .. }
        | Step::Record {
            plan_only: true, ..
        } = step
        {
            tx.rollback().await?;
            return Ok(Attempt::Done(Outcome::Done(start.elapsed())));
        }
        tx.commit().await?;
        Ok(Attempt::Done(Outcome::Done(start.elapsed())))
    }

    /// A script marked `-- no-transaction`: its statements one at a time, outside a
    /// transaction (what `CREATE INDEX CONCURRENTLY` needs), then the history change. An
    /// index such a build left INVALID when it was interrupted is dropped first, as
    /// PostgreSQL's documentation advises; the statements themselves should be idempotent
    /// (`IF NOT EXISTS`), since a retry runs them again. Not under a transaction-level lock:
    /// a pooler in transaction mode cannot keep such migrations apart.
    async fn run_outside(
        &mut self,
        m: &migrate::Migration,
        sql: &str,
        verb: &str,
        history: &str,
    ) -> Result<Attempt> {
        if self.lock_mode == LockMode::Transaction {
            return Err(Error::new(
                Kind::Migration,
                format!(
                    "{m} runs outside a transaction, which MIGRATE_LOCK=transaction cannot keep \
                     apart from other migrators: run it with a direct connection and \
                     MIGRATE_LOCK=session; nothing was changed"
                ),
            ));
        }
        let start = Instant::now();
        let statements = script::statements(sql);
        // Before the cleanup too: DROP INDEX CONCURRENTLY waits for the app's open
        // transactions on the table just as the build does.
        self.client
            .batch_execute(&format!(
                "SET lock_timeout = '{}ms'",
                self.ddl_lock_timeout.as_millis().max(1)
            ))
            .await?;
        // The clean-up in a block of its own, so that every way out of it resets the
        // session's lock_timeout below.
        let cleanup: Result<bool> = async {
            for index in statements
                .iter()
                .filter_map(|s| script::concurrent_index(s))
            {
                let rows = self
                    .client
                    .query_typed(
                        "SELECT 1 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
                     WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace \
                     AND NOT x.indisvalid",
                        &[(&index, tokio_postgres::types::Type::TEXT)],
                    )
                    .await?;
                if !rows.is_empty() {
                    log::warn!(
                    "{m}: index {index} is INVALID (an earlier build was interrupted); dropping \
                     it before building it again"
                );
                    let drop = format!(
                        "DROP INDEX CONCURRENTLY IF EXISTS {}",
                        super::quote_ident(&index)
                    );
                    match self.client.batch_execute(&drop).await {
                        Err(e) if is_lock_timeout(&e) => return Ok(false),
                        other => other?,
                    }
                }
            }
            Ok(true)
        }
        .await;
        match cleanup {
            Ok(true) => {}
            other => {
                let _ = self.client.batch_execute("RESET lock_timeout").await;
                other?;
                return Ok(Attempt::LockTimeout);
            }
        }
        let mut result = Ok(Attempt::Done(Outcome::Done(Duration::ZERO)));
        for (i, statement) in statements.iter().enumerate() {
            if let Err(e) = self.client.batch_execute(statement).await {
                result = if is_lock_timeout(&e) {
                    Ok(Attempt::LockTimeout)
                } else {
                    Err(Error::new(
                        Kind::Migration,
                        format!(
                            "migration {m} {verb} at statement {} of {} ({}): {}; it ran \
                             outside a transaction, so the statements before it stay applied; \
                             it is not recorded, and runs again from its first statement next \
                             time",
                            i + 1,
                            statements.len(),
                            crate::error::excerpt(statement),
                            describe(&e)
                        ),
                    ))
                };
                break;
            }
        }
        if matches!(result, Ok(Attempt::Done(_))) {
            result = self
                .client
                .batch_execute(history)
                .await
                .map(|()| Attempt::Done(Outcome::Done(start.elapsed())))
                .map_err(Error::from);
        }
        let reset = self.client.batch_execute("RESET lock_timeout").await;
        let attempt = result?;
        reset?;
        Ok(attempt)
    }

    /// The oldest open transactions of other sessions in this database, for the log: the app
    /// transaction holding a lock a migration waits for is among them.
    async fn open_transactions(&self) -> String {
        let sql = "SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                   coalesce(floor(extract(epoch FROM now() - a.xact_start))::bigint::text, '?'), \
                   left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) \
                   FROM pg_stat_activity a WHERE a.datname = current_database() \
                   AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL \
                   ORDER BY a.xact_start LIMIT 3";
        let rows = match self.client.simple_query(sql).await {
            Ok(msgs) => msgs,
            Err(e) => return format!("(could not be read: {})", describe(&e)),
        };
        let found: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(format!(
                    "pid {} ({}, {}, transaction open {} s): {}",
                    r.get(0).unwrap_or("?"),
                    non_empty(r.get(1), "no application name"),
                    non_empty(r.get(2), "unknown state"),
                    r.get(3).unwrap_or("?"),
                    non_empty(r.get(4), "no query")
                )),
                _ => None,
            })
            .collect();
        if found.is_empty() {
            "none now (the holder just let go)".into()
        } else {
            found.join("; ")
        }
    }

    pub(super) async fn live_schema(&self) -> Result<Schema> {
        let name: String = self
            .client
            .query_typed_one("SELECT current_schema()::text", &[])
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
                c.batch_execute(&script::in_transaction(m.up))
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
            out.push((
                t.clone(),
                self.client.query_typed_one(&sql, &[]).await?.get(0),
            ));
        }
        Ok(out)
    }
}

/// An adopted database left as `up` would have made it: its `SERIAL` id columns (what
/// SQLAlchemy's `Integer, primary_key=True` makes) become identity columns generated by
/// default, continuing past both the largest id and the sequence's position; the old sequence
/// goes. Inside the baseline's transaction, so all or nothing; rows untouched.
async fn serial_to_identity(
    tx: &tokio_postgres::Transaction<'_>,
    plan_only: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let tables: Vec<&str> = migrate::APP_TABLES.to_vec();
    let serials = tx
        .query_typed(
            "SELECT c.relname::text, a.attname::text, \
                    pg_get_serial_sequence(quote_ident(c.relname), a.attname) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
               AND a.attidentity = '' AND NOT a.attisdropped \
               AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%' \
               AND c.relname = ANY($1)",
            &[(&tables, tokio_postgres::types::Type::TEXT_ARRAY)],
        )
        .await?;
    for row in serials {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let Some(sequence) = row.get::<_, Option<String>>(2) else {
            continue;
        };
        if plan_only {
            log::info!("{table}.{column}: SERIAL to an identity column, as `up` makes it");
            continue;
        }
        let (t, c) = (super::quote_ident(&table), super::quote_ident(&column));
        let seq = sequence.replace('\'', "''");
        tx.batch_execute(&format!(
            "DO $yogaflow$ DECLARE n bigint; BEGIN \
               SELECT greatest(coalesce((SELECT max({c}) FROM {t}), 0), \
                      (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
                       FROM {sequence})) + 1 INTO n; \
               ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT; \
               EXECUTE 'DROP SEQUENCE ' || '{seq}'; \
               EXECUTE format('ALTER TABLE %s ALTER COLUMN %s ADD GENERATED BY DEFAULT AS \
                               IDENTITY (START WITH %s)', '{tq}', '{cq}', n); \
             END $yogaflow$",
            tq = t.replace('\'', "''"),
            cq = c.replace('\'', "''"),
        ))
        .await?;
        log::info!("{table}.{column}: SERIAL to an identity column, as `up` makes it");
    }
    Ok(())
}

/// One constraint or index: its name, whether it is a constraint (or a plain index), and the
/// catalog's definition of it (`pg_get_constraintdef`, or `pg_get_indexdef`).
struct Named {
    name: String,
    constraint: bool,
    def: String,
}

/// The constraints and indexes of the tables in `schema` (a namespace name), each under a key
/// that says what it is regardless of its name: (table, key). The key is the catalog's own
/// definition (the index definition after its name), with CHECK expressions by meaning.
async fn named_objects(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> std::result::Result<BTreeMap<(String, String), Named>, tokio_postgres::Error> {
    let rows = tx
        .query_typed(
            "SELECT t.relname::text, c.contype::text, \
                    pg_get_constraintdef(c.oid), c.conname::text, true \
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             WHERE c.connamespace = $1::regnamespace AND c.contype IN ('p', 'u', 'f', 'c') \
             UNION ALL \
             SELECT t.relname::text, 'i', pg_get_indexdef(x.indexrelid), \
                    i.relname::text, false \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             WHERE i.relnamespace = $1::regnamespace \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid \
                               AND c.contype IN ('p', 'u', 'x'))",
            &[(&schema, tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let kind: String = row.get(1);
        let def: String = row.get(2);
        let key = match kind.as_str() {
            "c" => crate::schema::check_meaning(def.trim_start_matches("CHECK ")),
            "i" => format!(
                "{} {}",
                def.starts_with("CREATE UNIQUE"),
                def.split_once(" USING ").map_or("", |(_, rest)| rest)
            ),
            _ => def.clone(),
        };
        let named = Named {
            name: row.get(3),
            constraint: row.get(4),
            def,
        };
        out.insert((table, format!("{kind} {key}")), named);
    }
    Ok(out)
}

/// One column as the catalog has it: type, NOT NULL, default expression.
type ColumnDef = (String, bool, Option<String>);

/// The columns of the tables in `schema`: (table, column) → definition.
async fn column_defs(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> std::result::Result<BTreeMap<(String, String), ColumnDef>, tokio_postgres::Error> {
    let rows = tx
        .query_typed(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull, pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 \
               AND NOT a.attisdropped AND a.attidentity = ''",
            &[(&schema, tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4))))
        .collect())
}

/// Why [`reconcile`] stopped: a PostgreSQL error (a lock timeout is retried by the caller), or
/// a refusal that names what is wrong.
enum Stop {
    Pg(tokio_postgres::Error),
    Refused(Error),
}

impl From<tokio_postgres::Error> for Stop {
    fn from(e: tokio_postgres::Error) -> Stop {
        Stop::Pg(e)
    }
}

/// The first row of `table` for which `condition` holds, if any: its id, and `columns` with
/// their values (`rating = 7`, text cut at 60 characters).
async fn first_row(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    condition: &str,
    columns: &[&str],
) -> std::result::Result<Option<(String, String)>, tokio_postgres::Error> {
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} || ' = ' || coalesce(quote_literal(left({}::text, 60)), 'NULL')",
                quote_literal(c),
                super::quote_ident(c)
            )
        })
        .collect();
    let values = if values.is_empty() {
        "''".to_string()
    } else {
        format!("concat_ws(', ', {})", values.join(", "))
    };
    let sql = format!(
        "SELECT id::text, {values} FROM {} WHERE {condition} ORDER BY id LIMIT 1",
        super::quote_ident(table)
    );
    Ok(tx.query_opt(&sql, &[]).await?.map(|r| (r.get(0), r.get(1))))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Brings an adopted database to what the migrations make, in the Record transaction:
/// constraints and indexes renamed to the migrations' names (SQLAlchemy's `poses_name_key`
/// to `uq_poses_name`, so that a later migration naming them works), and with `repair`, what
/// differs for real but loses nothing (a missing index, check, foreign key, unique
/// constraint or default; `json` to `jsonb`; a `varchar` to the contract's length; NOT NULL
/// where no row is NULL). A row a repair would reject stops it, named. The expected names
/// and definitions are read from the migrations applied to a scratch schema inside this
/// transaction (dropped again before it ends). With `repair`, the result is compared with
/// the expected schema: what no repair covers is refused.
async fn reconcile(
    tx: &tokio_postgres::Transaction<'_>,
    ms: &[migrate::Migration],
    repair: bool,
    plan_only: bool,
) -> std::result::Result<(), Stop> {
    let row = tx
        .query_one(
            "SELECT current_schema()::text, current_setting('search_path')",
            &[],
        )
        .await?;
    let (live_schema, search_path): (String, String) = (row.get(0), row.get(1));
    // Each change to the live tables: logged, and made unless this is the plan only.
    let change =
        async |sql: String, what: String| -> std::result::Result<(), tokio_postgres::Error> {
            log::info!("{what}");
            if !plan_only {
                tx.batch_execute(&sql).await?;
            }
            Ok(())
        };
    let scratch = format!("yogaflow_names_{}", std::process::id());
    tx.batch_execute(&format!(
        "CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}"
    ))
    .await?;
    for m in ms {
        // The same scripts built the expected schema already: they apply.
        tx.batch_execute(&script::in_transaction(m.up)).await?;
    }
    let expected = named_objects(tx, &scratch).await?;
    let expected_columns = column_defs(tx, &scratch).await?;
    let expected_schema = crate::schema::read_pg(tx, &scratch)
        .await
        .map_err(Stop::Refused)?;
    // The search path as it was, all of it (`"$user", public`, extensions).
    tx.query_typed(
        "SELECT set_config('search_path', $1, true)",
        &[(&search_path, tokio_postgres::types::Type::TEXT)],
    )
    .await?;
    tx.batch_execute(&format!("DROP SCHEMA {scratch} CASCADE"))
        .await?;
    let q = super::quote_ident;
    if repair {
        let live_columns = column_defs(tx, &live_schema).await?;
        for ((table, column), (want_type, want_not_null, want_default)) in &expected_columns {
            let Some((have_type, have_not_null, have_default)) =
                live_columns.get(&(table.clone(), column.clone()))
            else {
                continue;
            };
            let (t, c) = (q(table), q(column));
            if want_type != have_type {
                let length = |ty: &str| {
                    ty.strip_prefix("character varying(")
                        .and_then(|n| n.strip_suffix(')'))
                        .and_then(|n| n.parse::<u32>().ok())
                };
                let sql = match (want_type.as_str(), have_type.as_str()) {
                    // A default keeps its old type through ALTER TYPE ('{}'::json): it is
                    // set again as the migrations spell it.
                    ("jsonb", "json") => Some(match want_default {
                        Some(default) => format!(
                            "ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT, ALTER COLUMN {c} \
                             TYPE jsonb USING {c}::jsonb, ALTER COLUMN {c} SET DEFAULT {default}"
                        ),
                        None => {
                            format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE jsonb USING {c}::jsonb")
                        }
                    }),
                    (w, h) => match (length(w), length(h)) {
                        (Some(want), Some(have)) => {
                            if have > want {
                                let cond = format!("length({c}) > {want}");
                                if let Some((id, value)) =
                                    first_row(tx, table, &cond, &[column]).await?
                                {
                                    return Err(Stop::Refused(Error::new(
                                        Kind::SchemaDiffers,
                                        format!(
                                            "repair refused: {table} row id={id}: {value} is \
                                             longer than the contract's {want} characters; \
                                             nothing was changed"
                                        ),
                                    )));
                                }
                            }
                            Some(format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {w}"))
                        }
                        _ => None,
                    },
                };
                if let Some(sql) = sql {
                    change(sql.clone(), format!("repair: {sql}")).await?;
                }
            }
            if *want_not_null && !have_not_null {
                if let Some((id, _)) = first_row(tx, table, &format!("{c} IS NULL"), &[]).await? {
                    return Err(Stop::Refused(Error::new(
                        Kind::SchemaDiffers,
                        format!(
                            "repair refused: {table} row id={id}: {column} is NULL, which the \
                             contract's NOT NULL rejects; nothing was changed"
                        ),
                    )));
                }
                let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL");
                change(sql.clone(), format!("repair: {sql}")).await?;
            }
            if let (Some(default), None) = (want_default, have_default) {
                let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default}");
                change(sql.clone(), format!("repair: {sql}")).await?;
            }
        }
    }
    let live = named_objects(tx, &live_schema).await?;
    let taken: std::collections::BTreeSet<&str> = live.values().map(|n| n.name.as_str()).collect();
    for ((table, key), want) in &expected {
        let Some(have) = live.get(&(table.clone(), key.clone())) else {
            if !repair || taken.contains(want.name.as_str()) {
                // Missing (a difference `adopt` reported), or another object holds its name.
                continue;
            }
            let t = q(table);
            if let Some(expr) = want.def.strip_prefix("CHECK ") {
                // The columns the check reads, to show their values.
                let words: std::collections::BTreeSet<&str> = expr
                    .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .collect();
                let columns: Vec<&str> = expected_columns
                    .keys()
                    .filter(|(t, c)| t == table && words.contains(c.as_str()))
                    .map(|(_, c)| c.as_str())
                    .collect();
                let cond = format!("NOT {expr}");
                if let Some((id, values)) = first_row(tx, table, &cond, &columns).await? {
                    return Err(Stop::Refused(Error::new(
                        Kind::SchemaDiffers,
                        format!(
                            "repair refused: {table} row id={id} ({values}) breaks the \
                             contract's check {} {expr}; nothing was changed",
                            want.name
                        ),
                    )));
                }
            }
            let sql = if want.constraint {
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {} {}",
                    q(&want.name),
                    want.def
                )
            } else {
                want.def.replace(&format!(" ON {scratch}."), " ON ")
            };
            if let Err(e) = change(sql.clone(), format!("repair: {sql}")).await {
                if is_lock_timeout(&e) {
                    return Err(Stop::Pg(e));
                }
                return Err(Stop::Refused(Error::new(
                    Kind::SchemaDiffers,
                    format!(
                        "repair refused: adding {} to {table}: {}; nothing was changed",
                        want.name,
                        describe(&e)
                    ),
                )));
            }
            continue;
        };
        if have.name == want.name {
            continue;
        }
        if taken.contains(want.name.as_str()) {
            log::warn!(
                "{table}: {} keeps its name: {} is taken by another object",
                have.name,
                want.name
            );
            continue;
        }
        let sql = if have.constraint {
            format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                q(table),
                q(&have.name),
                q(&want.name)
            )
        } else {
            format!("ALTER INDEX {} RENAME TO {}", q(&have.name), q(&want.name))
        };
        let what = format!(
            "{table}: {} {} renamed {}, as the migrations name it",
            if have.constraint {
                "constraint"
            } else {
                "index"
            },
            have.name,
            want.name
        );
        change(sql, what).await?;
    }
    if repair && !plan_only {
        let after = crate::schema::read_pg(tx, &live_schema)
            .await
            .map_err(Stop::Refused)?;
        let left = crate::schema::diff(&expected_schema, &after, true);
        if !left.is_empty() {
            return Err(Stop::Refused(Error::new(
                Kind::SchemaDiffers,
                format!(
                    "--repair cannot bring the schema to the contract without losing or \
                     guessing: {} difference(s) no repair covers: {}; nothing was changed",
                    left.len(),
                    left.join("; ")
                ),
            )));
        }
    }
    Ok(())
}

/// A lock wait that ran out is [`Kind::Lock`]; anything else keeps its own kind.
fn lock_error(e: tokio_postgres::Error, lock_wait: Duration) -> Error {
    if is_lock_timeout(&e) {
        return Error::new(
            Kind::Lock,
            format!(
                "migration lock not obtained within {:.0} s (MIGRATE_LOCK_TIMEOUT; \
                 MIGRATE_LOCK=transaction)",
                lock_wait.as_secs_f64()
            ),
        );
    }
    Error::from(e).context("taking the migration lock")
}

/// With `MIGRATE_LOCK=transaction`: takes the transaction-level advisory lock inside `tx`
/// (waiting up to `lock_wait`) and says whether `step` was done meanwhile by another migrator
/// (then nothing is to be done).
async fn lock_in(
    tx: &tokio_postgres::Transaction<'_>,
    lock_wait: Duration,
    step: Step<'_>,
) -> Result<bool> {
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({})",
        lock_wait.as_millis().max(1),
        crate::lock::LOCK_KEY
    ))
    .await
    .map_err(|e| lock_error(e, lock_wait))?;
    let exists = tx
        .simple_query(&format!(
            "SELECT to_regclass('{HISTORY_TABLE}') IS NOT NULL"
        ))
        .await?
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")));
    let recorded = |version: i32| async move {
        if !exists {
            return Ok::<bool, Error>(false);
        }
        let rows = tx
            .simple_query(&format!(
                "SELECT 1 FROM {HISTORY_TABLE} WHERE version = {version}"
            ))
            .await?;
        Ok(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))))
    };
    Ok(match step {
        Step::Apply(m) => recorded(m.version).await?,
        Step::Undo { migration: m, .. } => !recorded(m.version).await?,
        Step::Record { migrations: ms, .. } => match ms.first() {
            Some(m) => recorded(m.version).await?,
            None => true,
        },
    })
}

/// Whether `e` means the session is gone: the connection closed or failed, or the server
/// shut down (SQLSTATE 57P01/57P02, an administrator or a crash) under us.
pub fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => matches!(db.code().code(), "57P01" | "57P02" | "57P03"),
        None => e.is_closed() || e.to_string() == "error communicating with the server",
    }
}

/// SQLSTATE 55P03: `lock_timeout` ran out.
fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

fn non_empty<'a>(v: Option<&'a str>, otherwise: &'a str) -> &'a str {
    v.filter(|s| !s.is_empty()).unwrap_or(otherwise)
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
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
