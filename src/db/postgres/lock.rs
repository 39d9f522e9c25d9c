//! One migrator at a time on PostgreSQL, both ways it is kept (`MIGRATE_LOCK`): a session
//! advisory lock on the connection that does the work, held for the whole run, with a bounded,
//! logged wait; and a transaction advisory lock taken inside each step's transaction, with the
//! history read again under it, which holds behind any pooler (`auto` takes it always, and the
//! session lock too where the connection is one server session). (SQLite's counterpart is
//! the database's own write lock, taken per step: see `db/sqlite`.)

use super::error::is_lock_timeout;
use super::watch::{pg, Watch};
use crate::db::retry::Backoff;
use crate::db::{LockMode, Step};
use crate::error::{Error, Kind, Result};
use crate::migrations::{HISTORY_DDL, HISTORY_TABLE};
use std::time::Duration;
use tokio_postgres::{Client, SimpleQueryMessage, Transaction};

/// The advisory lock key: the ASCII bytes of "yogaflow" read as a big-endian `i64`
/// (8750326269032034167). Shipped binaries depend on it: never change it, or an old and a new
/// image could migrate at the same time.
pub const LOCK_KEY: i64 = i64::from_be_bytes(*b"yogaflow");

/// Releases the advisory lock. Not releasing is safe too: the lock dies with the session
/// when the client closes.
pub async fn release(client: &Client, watch: &Watch) -> Result<()> {
    let sql = format!("SELECT pg_advisory_unlock({LOCK_KEY})");
    watch
        .short(
            "releasing the migration lock",
            pg(client.simple_query(&sql)),
        )
        .await
        .map_err(|e| Error::from(e).context("releasing the migration lock"))?;
    Ok(())
}

/// What the messages of the transaction lock add to name the mode that chose it.
pub fn label(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Transaction => " (MIGRATE_LOCK=transaction)",
        _ => "",
    }
}

/// Takes the migration lock, waiting up to `timeout` and logging who holds it meanwhile. Each
/// attempt also learns our backend's pid, for the watch. With `only_on`, the lock is taken
/// only by a statement that runs on that backend (the one we logged in to): elsewhere (a
/// pooler) it would stay behind on a pooled server connection, so nothing is taken and the
/// answer is `false`.
pub async fn acquire(
    client: &Client,
    watch: &Watch,
    timeout: Duration,
    only_on: Option<i32>,
) -> Result<bool> {
    // One statement runs on one server connection, pooler or not: the test and the lock
    // cannot be split.
    let take = match only_on {
        Some(pid) => {
            format!("CASE WHEN pg_backend_pid() = {pid} THEN pg_try_advisory_lock({LOCK_KEY}) END")
        }
        None => format!("pg_try_advisory_lock({LOCK_KEY})"),
    };
    let mut wait = Backoff::new(
        Duration::from_millis(20),
        Duration::from_millis(500),
        timeout,
    );
    let mut next_report = std::time::Instant::now();
    loop {
        let sql = format!("SELECT {take}, pg_backend_pid()");
        let rows = watch
            .short("taking the migration lock", pg(client.simple_query(&sql)))
            .await
            .map_err(|e| Error::from(e).context("taking the migration lock"))?;
        let row = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((r.get(0), r.get(1))),
            _ => None,
        });
        if let Some(pid) = row.and_then(|(_, pid)| pid?.parse().ok()) {
            watch.set_pid(pid);
        }
        let got = row.map(|(got, _)| got);
        if got == Some(None) {
            return Ok(false);
        }
        if got == Some(Some("t")) {
            if wait.elapsed() > Duration::from_millis(100) {
                log::info!(
                    "migration lock obtained after {:.1} s",
                    wait.elapsed().as_secs_f64()
                );
            }
            return Ok(true);
        }
        let holder = watch
            .short("waiting for the migration lock", async {
                Ok::<_, Error>(holder(client).await)
            })
            .await?;
        if wait.expired() {
            return Err(Error::new(
                Kind::Lock,
                format!(
                    "migration lock not obtained within {:.0} s (MIGRATE_LOCK_TIMEOUT); held by {holder}",
                    timeout.as_secs_f64()
                ),
            ));
        }
        if std::time::Instant::now() >= next_report {
            log::info!("waiting for the migration lock, held by {holder}");
            next_report = std::time::Instant::now() + Duration::from_secs(5);
        }
        // The last pause ends at the bound: the wait is the whole MIGRATE_LOCK_TIMEOUT.
        wait.sleep().await;
    }
}

/// Who holds the lock, for the log: backend pid, application name and since when.
async fn holder(client: &Client) -> String {
    let (hi, lo) = ((LOCK_KEY >> 32) as u32, LOCK_KEY as u32);
    let sql = format!(
        "SELECT a.pid::text, coalesce(nullif(a.application_name, ''), 'no application name'), \
         coalesce(a.client_addr::text, 'a local socket'), \
         coalesce(to_char(a.backend_start, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), 'at an unknown time') \
         FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {hi} AND l.objid = {lo} AND l.objsubid = 1"
    );
    match client.simple_query(&sql).await {
        Ok(msgs) => msgs
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(format!(
                    "backend pid {} ({} from {}, connected {})",
                    r.get(0).unwrap_or("?"),
                    r.get(1).unwrap_or(""),
                    r.get(2).unwrap_or(""),
                    r.get(3).unwrap_or("")
                )),
                _ => None,
            })
            .unwrap_or_else(|| "another session (it just let go)".into()),
        Err(_) => "another session".into(),
    }
}

/// The history table created under the transaction-level lock: concurrent `CREATE TABLE IF
/// NOT EXISTS` can still collide.
pub async fn ensure_history_locked(
    client: &Client,
    watch: &Watch,
    lock_wait: Duration,
    label: &str,
) -> Result<()> {
    let what = format!("creating the history table under the migration lock{label}");
    let what = what.as_str();
    // The pid first, in the transaction, so that the lock wait can be watched.
    let begin = pg(client.simple_query("BEGIN; SELECT pg_backend_pid()"));
    watch.learn_pid(&watch.short(what, begin).await?);
    let sql = format!(
        "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({LOCK_KEY}); \
         {HISTORY_DDL}; COMMIT",
        lock_wait.as_millis().max(1),
    );
    let result = watch
        .long(what, true, async {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| lock_error(e, lock_wait, label))
        })
        .await;
    if result.is_err() {
        // A failed statement left the transaction aborted: end it (the connection may be
        // lost already; then the server ends it).
        let _ = watch
            .short(what, pg(client.batch_execute("ROLLBACK")))
            .await;
    }
    watch.transaction_ended();
    result
}

/// A lock wait that ran out is [`Kind::Lock`]; anything else keeps its own kind.
fn lock_error(e: tokio_postgres::Error, lock_wait: Duration, label: &str) -> Error {
    if is_lock_timeout(&e) {
        return Error::new(
            Kind::Lock,
            format!(
                "migration lock not obtained within {:.0} s (MIGRATE_LOCK_TIMEOUT){label}",
                lock_wait.as_secs_f64()
            ),
        );
    }
    Error::from(e).context("taking the migration lock")
}

/// With `MIGRATE_LOCK=transaction` or `auto`: takes the transaction-level advisory lock inside
/// `tx` (waiting up to `lock_wait`) and says whether `step` was done meanwhile by another
/// migrator (then nothing is to be done). The history is read in `tx`, after the lock is
/// granted: under READ COMMITTED that read sees every step another migrator committed before
/// it let go of the lock, and our step commits with its history row, before we let go.
pub async fn lock_in(
    tx: &Transaction<'_>,
    lock_wait: Duration,
    step: Step<'_>,
    label: &str,
) -> Result<bool> {
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({LOCK_KEY})",
        lock_wait.as_millis().max(1),
    ))
    .await
    .map_err(|e| lock_error(e, lock_wait, label))?;
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
        Step::Adopt(a) => match a.migrations.first() {
            Some(m) => recorded(m.version).await?,
            None => true,
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_never_changes() {
        assert_eq!(super::LOCK_KEY, 8_750_326_269_032_034_167);
    }
}
