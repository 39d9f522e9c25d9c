//! One migrator at a time on PostgreSQL: a session advisory lock on the connection that does
//! the work, held for the whole run, with a bounded, logged wait. (SQLite's counterpart is the
//! database's own write lock, taken per step: see `db/sqlite.rs`.)

use crate::error::{Error, Kind, Result};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// The advisory lock key: the ASCII bytes of "yogaflow" read as a big-endian `i64`
/// (8750326269032034167). Shipped binaries depend on it: never change it, or an old and a new
/// image could migrate at the same time.
pub const LOCK_KEY: i64 = i64::from_be_bytes(*b"yogaflow");

/// Releases the advisory lock. Not releasing is safe too: the lock dies with the session
/// when the client closes.
pub async fn release(client: &Client) -> Result<()> {
    client
        .simple_query(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
        .await
        .map_err(|e| Error::from(e).context("releasing the migration lock"))?;
    Ok(())
}

/// Takes the migration lock, waiting up to `timeout` and logging who holds it meanwhile.
pub async fn acquire(client: &Client, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(20);
    let mut next_report = start;
    loop {
        let rows = client
            .simple_query(&format!("SELECT pg_try_advisory_lock({LOCK_KEY})"))
            .await
            .map_err(|e| Error::from(e).context("taking the migration lock"))?;
        let got = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v == "t"),
            _ => None,
        });
        if got == Some(true) {
            if start.elapsed() > Duration::from_millis(100) {
                log::info!(
                    "migration lock obtained after {:.1} s",
                    start.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        let holder = holder(client).await;
        if start.elapsed() >= timeout {
            return Err(Error::new(
                Kind::Lock,
                format!(
                    "migration lock not obtained within {:.0} s (MIGRATE_LOCK_TIMEOUT); held by {holder}",
                    timeout.as_secs_f64()
                ),
            ));
        }
        if Instant::now() >= next_report {
            log::info!("waiting for the migration lock, held by {holder}");
            next_report = Instant::now() + Duration::from_secs(5);
        }
        // The last pause ends at the bound: the wait is the whole MIGRATE_LOCK_TIMEOUT.
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(Duration::from_millis(500));
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
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(format!(
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_never_changes() {
        assert_eq!(super::LOCK_KEY, 8_750_326_269_032_034_167);
    }
}
