//! `baseline`: adopt a database made before this tool (the Python backend's Alembic setup):
//! check that its schema is the one version N should have, then record 1..=N in the history
//! without running them, in one transaction under the lock.

use crate::cli::BaselineArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::migrate;
use crate::url::DbUrl;

/// Runs `baseline`.
pub async fn run(config: &Config, url: &DbUrl, args: &BaselineArgs) -> Result<()> {
    log::info!("database: {url}");
    let mut db = Database::open(url, config.for_writing()).await?;
    db.with_lock(config.lock_timeout, async |db: &mut Database| {
        baseline_locked(db, args).await
    })
    .await
}

async fn baseline_locked(db: &mut Database, args: &BaselineArgs) -> Result<()> {
    let known = migrate::migrations(db.dialect());
    let latest = known.last().map_or(0, |m| m.version);
    let version = args.version.unwrap_or(latest);
    if !known.iter().any(|m| m.version == version) {
        return Err(Error::config(format!(
            "--version {version} is not a migration version of this binary (1 to {latest})"
        )));
    }
    let time_zone = args.assume_time_zone.as_deref();
    crate::adopt::adopt(db, version, args.dry_run, args.repair, time_zone).await?;
    Ok(())
}
