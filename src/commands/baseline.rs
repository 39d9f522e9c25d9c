//! `baseline`: adopt a database made before this tool (the Python backend's Alembic setup):
//! check that its schema is the one version N should have, then record 1..=N in the history
//! without running them, in one transaction under the lock.

use crate::cli::BaselineArgs;
use crate::config::Config;
use crate::db::{Database, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate;
use crate::schema;
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
    if let Some(history) = db.read_history().await? {
        if !history.is_empty() {
            return Err(Error::new(
                Kind::Diverged,
                format!(
                    "the database already has a migration history (version {}): baseline is only for databases without one",
                    history.iter().map(|a| a.version).max().unwrap_or(0)
                ),
            ));
        }
    }
    let expected = db.expected_schema(version).await?;
    let live = db.live_schema().await?;
    let others: Vec<&str> = live
        .tables
        .keys()
        .filter(|t| !expected.tables.contains_key(*t))
        .map(|s| s.as_str())
        .collect();
    if !others.is_empty() {
        log::info!(
            "tables outside the YogaFlow schema are left alone: {}",
            others.join(", ")
        );
    }
    let diffs = schema::diff(&expected, &live, true);
    if !diffs.is_empty() {
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "refusing to baseline at version {version}: the schema differs in {} place(s): {}",
                diffs.len(),
                diffs.join("; ")
            ),
        ));
    }
    let adopted: Vec<_> = known.into_iter().filter(|m| m.version <= version).collect();
    db.run_step(Step::Record(&adopted)).await?;
    log::info!("baselined: migrations 1 to {version} recorded as applied without running them");
    Ok(())
}
