//! `down`: undo applied migrations, newest first, each undo script and the removal of its
//! history row in one transaction, under the same lock as `up`. A step that would drop a table
//! holding rows is refused before anything changes, unless confirmed.

use crate::cli::DownArgs;
use crate::config::Config;
use crate::db::{Database, Step};
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, Migration};
use crate::url::DbUrl;

/// Which applied migrations `down` undoes, newest first (pure).
pub fn down_plan<'a>(
    known: &'a [Migration],
    applied: &[Applied],
    args: &DownArgs,
) -> Result<Vec<&'a Migration>> {
    let mut versions: Vec<i32> = applied.iter().map(|a| a.version).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let chosen: Vec<i32> = if args.all {
        versions
    } else if let Some(to) = args.to {
        if to < 0 {
            return Err(Error::config(format!("--to {to}: versions are 0 or more")));
        }
        versions.into_iter().filter(|v| *v > to).collect()
    } else {
        let n = args.steps.unwrap_or(1) as usize;
        versions.into_iter().take(n).collect()
    };
    chosen
        .iter()
        .map(|v| {
            known.iter().find(|m| m.version == *v).ok_or_else(|| {
                Error::new(
                    Kind::Diverged,
                    format!("version {v} is applied but unknown to this binary: it cannot undo it (use the image that applied it)"),
                )
            })
        })
        .collect()
}

/// Runs `down`.
pub async fn run(config: &Config, url: &DbUrl, args: &DownArgs) -> Result<()> {
    log::info!("database: {url}");
    let mut db = Database::open(url, config.for_writing()).await?;
    db.with_lock(config.lock_timeout, async |db: &mut Database| {
        down_locked(db, config, args).await
    })
    .await
}

async fn down_locked(db: &mut Database, config: &Config, args: &DownArgs) -> Result<()> {
    let known = migrate::migrations(db.dialect());
    let state = migrate::current_state(db, None).await?;
    let all_applied: Vec<Applied> = state.applied.iter().chain(&state.ahead).cloned().collect();
    let plan = down_plan(&known, &all_applied, args)?;
    if plan.is_empty() {
        log::info!("nothing to undo: schema is at version {}", state.current);
        return Ok(());
    }
    // Refuse before changing anything: count what every step would delete.
    let existing = db.table_names().await?;
    let mut losses = Vec::new();
    for m in &plan {
        let tables: Vec<String> = m
            .dropped_tables()
            .into_iter()
            .filter(|t| existing.contains(t))
            .collect();
        for (t, n) in db.row_counts(&tables).await? {
            if n > 0 {
                losses.push(format!("{m} drops {t} with {n} row(s)"));
            }
        }
    }
    let confirmed = args.yes || config.allow_data_loss;
    if !losses.is_empty() && !confirmed {
        return Err(Error::new(
            Kind::DataLoss,
            format!(
                "refusing to delete data: {}; nothing was changed. Pass --yes (or MIGRATE_ALLOW_DATA_LOSS=true) to confirm",
                losses.join(", ")
            ),
        ));
    }
    let before = state.current;
    for m in &plan {
        let start = std::time::Instant::now();
        db.run_step(Step::Undo {
            migration: m,
            allow_loss: confirmed,
        })
        .await?;
        log::info!(
            "undid {m} in {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    let after = migrate::highest(db.read_history().await?.as_deref().unwrap_or_default());
    log::info!("schema version {before} -> {after}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Dialect;

    #[test]
    fn plans_down_steps_newest_first() {
        let known = migrate::migrations(Dialect::Sqlite);
        let all: Vec<Applied> = known.iter().map(|m| m.as_applied("")).collect();
        let v = |args: DownArgs| {
            down_plan(&known, &all, &args)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        };
        let steps = |n| DownArgs {
            steps: Some(n),
            ..Default::default()
        };
        let to = |n| DownArgs {
            to: Some(n),
            ..Default::default()
        };
        assert_eq!(v(steps(2)), vec![5, 4]);
        assert_eq!(v(to(3)), vec![5, 4]);
        assert_eq!(v(to(0)), vec![5, 4, 3, 2, 1]);
        assert_eq!(
            v(DownArgs {
                all: true,
                ..Default::default()
            }),
            vec![5, 4, 3, 2, 1]
        );
        assert_eq!(v(steps(9)).len(), 5);
    }
}
