//! `complete`: the deferred contract steps applied, once the app version that predates them is
//! gone. `up` on PostgreSQL applies expand steps only (the version still serving during a
//! deploy needs what a contract step removes); this is the second half, run after the deploy
//! succeeded (docs/migrations.md, "Changes without downtime"). Before it applies anything it
//! looks for what proves the old version is still there: sessions that connected before the
//! expand steps were applied.

use crate::cli::CompleteArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Contracts};
use crate::url::DbUrl;
use std::time::{Duration, Instant};

/// Runs `complete`.
pub async fn run(config: &Config, url: &DbUrl, args: &CompleteArgs) -> Result<()> {
    log::info!("database: {url}");
    let mut db = Database::open(url, config.for_writing()).await?;
    let state = migrate::current_state(&db, None).await?;
    let deferred = state.deferred();
    let Some(first) = deferred.first() else {
        log::info!(
            "nothing deferred: no contract step is pending (version {})",
            state.current
        );
        return Ok(());
    };
    // Sessions older than the newest step applied below the last deferred one were opened by
    // an app that started before it: the version its contract steps would break.
    let last = deferred.last().map_or(first.version, |m| m.version);
    if !args.force {
        wait_for_old_sessions(&db, last, Duration::from_secs(args.wait)).await?;
    }
    migrate::upgrade(&mut db, None, config.lock_timeout, Contracts::Apply).await?;
    migrate::warn_drift(&db).await;
    Ok(())
}

/// Waits up to `wait` for the sessions connected before the newest step applied below
/// version `below` to end; refuses if they remain.
async fn wait_for_old_sessions(db: &Database, below: i32, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let old = db.sessions_before(below).await?;
        if old.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= wait {
            return Err(Error::new(
                Kind::Lock,
                format!(
                    "{} session(s) connected before the expand steps were applied are still \
                     open: {}. The app version that predates them may still be serving, \
                     and the contract steps would break it; nothing was applied. Wait for it to \
                     stop (--wait SECONDS), or pass --force if these sessions are not its",
                    old.len(),
                    old.join("; ")
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500).min(wait)).await;
    }
}
