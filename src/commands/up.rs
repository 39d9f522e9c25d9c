//! `up` (and the bare command): bring the database to the latest (or `--target`) version,
//! contract steps deferred on PostgreSQL (`complete` applies them). The common case, nothing
//! to apply, is one connection and one query, without the lock.

use crate::cli::UpArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Kind, Result};
use crate::migrate::{self, Contracts, State};
use crate::url::DbUrl;
use std::time::Instant;

/// Runs `up`.
pub async fn run(config: &Config, url: &DbUrl, args: &UpArgs) -> Result<()> {
    let start = Instant::now();
    log::info!("database: {url}");
    let mut db = Database::open(url, config.for_writing()).await?;
    let state = match migrate::current_state(&db, args.to_version).await {
        Err(e)
            if e.kind() == Kind::Diverged
                && config.baseline_on_migrate
                && db.read_history().await?.is_none() =>
        {
            crate::adopt::adopt_on_deploy(&mut db, config.lock_timeout).await?;
            migrate::current_state(&db, args.to_version).await?
        }
        other => other?,
    };
    migrate::report_ahead(&state, config.strict)?;
    let contracts = Contracts::for_up(db.dialect());
    state.refuse_out_of_order(contracts)?;
    if state.to_apply(contracts).is_empty() && !args.dry_run {
        if contracts == Contracts::Defer {
            migrate::log_deferred(&state);
        }
        log::info!(
            "schema is current at version {} (nothing to apply, {} ms)",
            state.current,
            start.elapsed().as_millis()
        );
        return Ok(());
    }
    if args.dry_run {
        return db
            .with_lock(config.lock_timeout, async |db: &mut Database| {
                print_dry_run(
                    &migrate::current_state(db, args.to_version).await?,
                    contracts,
                )
            })
            .await;
    }
    migrate::upgrade(&mut db, args.to_version, config.lock_timeout, contracts).await?;
    migrate::warn_drift(&db).await;
    log::info!("done in {} ms", start.elapsed().as_millis());
    Ok(())
}

fn print_dry_run(state: &State, contracts: Contracts) -> Result<()> {
    if state.to_apply(contracts).is_empty() {
        crate::outln!(
            "-- nothing to apply: schema is at version {}",
            state.current
        )?;
    }
    for m in &state.pending {
        if contracts == Contracts::Defer && m.is_contract() {
            crate::outln!("-- {m} (deferred: a contract step, applied by `complete`)")?;
            continue;
        }
        crate::outln!("-- {m} (would apply)\n{}", m.up.trim_end())?;
    }
    Ok(())
}
