//! The on-call commands: `status` (where the database stands), `verify` (does its schema look
//! as it should), `down` (step back) and `baseline` (adopt a database made before this tool).

use crate::cli::{BaselineArgs, DownArgs, StatusArgs, VerifyArgs};
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, Migration, HISTORY_TABLE};
use crate::url::Target;
use crate::{connect, lock, schema, up};
use serde::Serialize;

/// One line of `status`.
#[derive(Debug, Serialize)]
pub struct MigrationStatus {
    /// Version number.
    pub version: i32,
    /// Name.
    pub name: String,
    /// `applied`, `pending`, `changed` (applied, but this binary's text differs) or `ahead`
    /// (applied, unknown to this binary).
    pub state: &'static str,
    /// When it was applied (RFC 3339), if it was.
    pub applied_on: Option<String>,
}

/// `status --json` output (stable: fields are only ever added).
#[derive(Debug, Serialize)]
pub struct Status {
    /// Redacted database URL.
    pub database: String,
    /// `postgres` or `sqlite`.
    pub dialect: &'static str,
    /// Highest applied version (0 when none).
    pub current_version: i32,
    /// Newest version this binary carries.
    pub latest_version: i32,
    /// Whether the history table exists.
    pub history_table: bool,
    /// Number of pending migrations.
    pub pending: usize,
    /// Every known migration plus unknown applied ones.
    pub migrations: Vec<MigrationStatus>,
}

/// Builds the status from the history without judging it (pure).
pub fn build_status(
    known: &[Migration],
    history: Option<&[Applied]>,
) -> (i32, Vec<MigrationStatus>) {
    let applied = history.unwrap_or_default();
    let mut out: Vec<MigrationStatus> = known
        .iter()
        .map(|m| {
            let row = applied.iter().find(|a| a.version == m.version);
            MigrationStatus {
                version: m.version,
                name: m.name.clone(),
                state: match row {
                    None => "pending",
                    Some(a) if a.checksum != m.checksum || a.name != m.name => "changed",
                    Some(_) => "applied",
                },
                applied_on: row.map(|a| a.applied_on.clone()),
            }
        })
        .collect();
    for a in applied
        .iter()
        .filter(|a| !known.iter().any(|m| m.version == a.version))
    {
        out.push(MigrationStatus {
            version: a.version,
            name: a.name.clone(),
            state: "ahead",
            applied_on: Some(a.applied_on.clone()),
        });
    }
    out.sort_by_key(|s| s.version);
    (applied.iter().map(|a| a.version).max().unwrap_or(0), out)
}

/// Runs `status`: read-only, no lock, never creates a SQLite file.
pub async fn status(config: &Config, target: &Target, args: &StatusArgs) -> Result<()> {
    let db = connect::open(target, config.wait_timeout, false).await?;
    let known = migrate::migrations(db.dialect());
    let history = migrate::read_history(&db).await?;
    let (current, migrations) = build_status(&known, history.as_deref());
    let pending = migrations.iter().filter(|m| m.state == "pending").count();
    let status = Status {
        database: target.to_string(),
        dialect: db.dialect().name(),
        current_version: current,
        latest_version: known.last().map_or(0, |m| m.version),
        history_table: history.is_some(),
        pending,
        migrations,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serialises")
        );
    } else {
        println!("database: {}", status.database);
        println!(
            "schema version: {} (this binary: {}){}",
            status.current_version,
            status.latest_version,
            if status.history_table {
                ""
            } else {
                "; no history table"
            }
        );
        for m in &status.migrations {
            let label = format!("V{}__{}", m.version, m.name);
            let note = match m.state {
                "changed" => " (applied, but this binary's file differs: up will refuse)",
                "ahead" => " (unknown to this binary: a newer image applied it)",
                _ => "",
            };
            println!(
                "  {label:<24} {:<8} {}{note}",
                m.state,
                m.applied_on.as_deref().unwrap_or("")
            );
        }
        println!("{pending} pending");
    }
    if args.exit_code && pending > 0 {
        return Err(Error::new(
            Kind::Pending,
            format!("{pending} migration(s) pending"),
        ));
    }
    Ok(())
}

/// Runs `verify`: every difference between the live schema and the one the recorded version
/// should have, plus row counts; exit 9 on any difference.
pub async fn verify(config: &Config, target: &Target, args: &VerifyArgs) -> Result<()> {
    let db = connect::open(target, config.wait_timeout, false).await?;
    let known = migrate::migrations(db.dialect());
    let state = up::current_state(&db, &known, None).await?;
    let version = state.applied.iter().map(|a| a.version).max().unwrap_or(0);
    let expected = schema::expected(&db, version).await?;
    let live = schema::live(&db).await?;
    let diffs = schema::diff(&expected, &live, false);
    let tables: Vec<String> = live.tables.keys().cloned().collect();
    let counts = schema::row_counts(&db, &tables).await?;
    if args.json {
        let out = serde_json::json!({
            "database": target.to_string(),
            "version": version,
            "differences": diffs,
            "row_counts": counts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serialises")
        );
    } else {
        println!("database: {target}");
        println!("schema version: {version}");
        for (t, n) in &counts {
            println!("  {t:<20} {n:>10} rows");
        }
        if diffs.is_empty() {
            println!("schema matches version {version}");
        }
        for d in &diffs {
            println!("difference: {d}");
        }
    }
    if !diffs.is_empty() {
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "the schema differs from version {version} in {} place(s): {}",
                diffs.len(),
                diffs.join("; ")
            ),
        ));
    }
    Ok(())
}

/// The tables an undo script drops (`DROP TABLE [IF EXISTS] name`), in order.
pub fn dropped_tables(down_sql: &str) -> Vec<String> {
    let words: Vec<String> = down_sql
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('"').to_string())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i].eq_ignore_ascii_case("drop")
            && words
                .get(i + 1)
                .is_some_and(|w| w.eq_ignore_ascii_case("table"))
        {
            let mut j = i + 2;
            if words.get(j).is_some_and(|w| w.eq_ignore_ascii_case("if")) {
                j += 2;
            }
            if let Some(name) = words.get(j) {
                out.push(name.clone());
            }
            i = j;
        }
        i += 1;
    }
    out
}

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
pub async fn down(config: &Config, target: &Target, args: &DownArgs) -> Result<()> {
    log::info!("database: {target}");
    let mut db = up::open_for_writing(config, target).await?;
    let guard = lock::acquire(&db, config.lock_timeout).await?;
    let result = down_locked(&mut db, config, args).await;
    let released = guard.release(&db).await;
    result.and(released)
}

async fn down_locked(db: &mut Db, config: &Config, args: &DownArgs) -> Result<()> {
    let known = migrate::migrations(db.dialect());
    let state = up::current_state(db, &known, None).await?;
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
        let tables: Vec<String> = dropped_tables(m.down)
            .into_iter()
            .filter(|t| existing.contains(t))
            .collect();
        for (t, n) in schema::row_counts(db, &tables).await? {
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
        undo(db, m).await?;
        log::info!(
            "undid {m} in {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    let after = migrate::read_history(db)
        .await?
        .and_then(|h| h.iter().map(|a| a.version).max())
        .unwrap_or(0);
    log::info!("schema version {before} -> {after}");
    Ok(())
}

/// Runs `m`'s undo script and deletes its history row, in one transaction.
async fn undo(db: &mut Db, m: &Migration) -> Result<()> {
    let delete = format!("DELETE FROM {HISTORY_TABLE} WHERE version = {}", m.version);
    match db {
        Db::Postgres(c) => {
            let tx = c.transaction().await?;
            tx.batch_execute(m.down)
                .await
                .map_err(|e| migrate::migration_error(m, m.down, "could not be undone", e))?;
            tx.batch_execute(&delete).await?;
            tx.commit().await?;
        }
        Db::Sqlite(c) => {
            let tx = migrate::immediate(c)?;
            let still_there = tx
                .prepare(&format!("SELECT 1 FROM {HISTORY_TABLE} WHERE version = ?1"))?
                .exists([m.version])?;
            if !still_there {
                return Ok(());
            }
            tx.execute_batch(m.down)
                .map_err(|e| migrate::sqlite_migration_error(m, "could not be undone", e))?;
            tx.execute_batch(&delete)?;
            tx.commit()?;
        }
    }
    Ok(())
}

/// Runs `baseline`.
pub async fn baseline(config: &Config, target: &Target, args: &BaselineArgs) -> Result<()> {
    log::info!("database: {target}");
    let mut db = up::open_for_writing(config, target).await?;
    let guard = lock::acquire(&db, config.lock_timeout).await?;
    let result = baseline_locked(&mut db, args).await;
    let released = guard.release(&db).await;
    result.and(released)
}

async fn baseline_locked(db: &mut Db, args: &BaselineArgs) -> Result<()> {
    let known = migrate::migrations(db.dialect());
    let latest = known.last().map_or(0, |m| m.version);
    let version = args.version.unwrap_or(latest);
    if !known.iter().any(|m| m.version == version) {
        return Err(Error::config(format!(
            "--version {version} is not a migration version of this binary (1 to {latest})"
        )));
    }
    if let Some(history) = migrate::read_history(db).await? {
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
    let expected = schema::expected(db, version).await?;
    let live = schema::live(db).await?;
    let others: Vec<&String> = live
        .tables
        .keys()
        .filter(|t| !expected.tables.contains_key(*t))
        .collect();
    if !others.is_empty() {
        log::info!(
            "tables outside the YogaFlow schema are left alone: {}",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
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
    let mut sql = format!("{};\n", migrate::HISTORY_DDL);
    for m in known.iter().filter(|m| m.version <= version) {
        sql.push_str(&migrate::record_sql(m));
        sql.push_str(";\n");
    }
    match db {
        Db::Postgres(c) => {
            let tx = c.transaction().await?;
            tx.batch_execute(&sql).await?;
            tx.commit().await?;
        }
        Db::Sqlite(c) => {
            let tx = migrate::immediate(c)?;
            tx.execute_batch(&sql)?;
            tx.commit()?;
        }
    }
    log::info!("baselined: migrations 1 to {version} recorded as applied without running them");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Dialect;

    #[test]
    fn finds_dropped_tables() {
        assert_eq!(
            dropped_tables("DROP TABLE sequence_poses;\nDROP TABLE sequences;\n"),
            vec!["sequence_poses", "sequences"]
        );
        assert_eq!(
            dropped_tables("drop table if exists \"users\";"),
            vec!["users"]
        );
        assert!(dropped_tables("DROP INDEX ix_a;").is_empty());
    }

    fn applied(known: &[Migration], n: usize) -> Vec<Applied> {
        known[..n]
            .iter()
            .map(|m| Applied {
                version: m.version,
                name: m.name.clone(),
                applied_on: String::new(),
                checksum: m.checksum,
            })
            .collect()
    }

    #[test]
    fn plans_down_steps_newest_first() {
        let known = migrate::migrations(Dialect::Sqlite);
        let all = applied(&known, 5);
        let v = |args: DownArgs| {
            down_plan(&known, &all, &args)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v(DownArgs {
                steps: Some(2),
                ..Default::default()
            }),
            vec![5, 4]
        );
        assert_eq!(
            v(DownArgs {
                to: Some(3),
                ..Default::default()
            }),
            vec![5, 4]
        );
        assert_eq!(
            v(DownArgs {
                to: Some(0),
                ..Default::default()
            }),
            vec![5, 4, 3, 2, 1]
        );
        assert_eq!(
            v(DownArgs {
                all: true,
                ..Default::default()
            }),
            vec![5, 4, 3, 2, 1]
        );
        assert_eq!(
            v(DownArgs {
                steps: Some(9),
                ..Default::default()
            })
            .len(),
            5
        );
    }

    #[test]
    fn status_marks_each_state() {
        let known = migrate::migrations(Dialect::Sqlite);
        let mut history = applied(&known, 2);
        history[1].checksum ^= 1;
        history.push(Applied {
            version: 99,
            name: "future".into(),
            applied_on: String::new(),
            checksum: 0,
        });
        let (current, list) = build_status(&known, Some(&history));
        assert_eq!(current, 99);
        let states: Vec<_> = list.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            vec!["applied", "changed", "pending", "pending", "pending", "ahead"]
        );
    }
}
