//! `status`: where the database stands. Reads the history without the lock and never
//! creates a SQLite file.

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, Contracts, Migration};
use crate::url::DbUrl;
use serde::Serialize;

/// Where one migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    /// Recorded with this binary's checksum.
    Applied,
    /// Not recorded yet.
    Pending,
    /// Recorded, but this binary's file differs (`up` will refuse).
    Changed,
    /// Recorded, unknown to this binary (a newer image applied it).
    Ahead,
    /// A contract step not applied yet, on PostgreSQL: `up` leaves it for `complete`.
    Deferred,
}

impl MigrationState {
    fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => "changed",
            MigrationState::Ahead => "ahead",
            MigrationState::Deferred => "deferred",
        }
    }
}

/// One line of `status`.
#[derive(Debug, Serialize)]
pub struct MigrationStatus {
    /// Version number.
    pub version: i32,
    /// Name.
    pub name: String,
    /// Where it stands.
    pub state: MigrationState,
    /// When it was applied (RFC 3339), if it was.
    pub applied_on: Option<String>,
    /// `expand` (applied by `up`) or `contract` (`-- phase: contract`; deferred by `up` on
    /// PostgreSQL until `complete`); none for a version this binary does not know.
    pub phase: Option<&'static str>,
    /// The Railway deployment that applied it (`RAILWAY_DEPLOYMENT_ID`), where recorded.
    pub deployment_id: Option<String>,
    /// The commit it was deployed from (`RAILWAY_GIT_COMMIT_SHA`), where recorded.
    pub git_commit_sha: Option<String>,
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
    /// Number of pending migrations (deferred ones included).
    pub pending: usize,
    /// Number of deferred contract steps (`complete` applies them).
    pub deferred: usize,
    /// Every known migration plus unknown applied ones.
    pub migrations: Vec<MigrationStatus>,
}

/// Builds the status from the history without judging it (pure). `defer`: pending contract
/// steps are deferred (PostgreSQL).
pub fn build_status(
    known: &[Migration],
    history: Option<&[Applied]>,
    defer: bool,
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
                    None if defer && m.is_contract() => MigrationState::Deferred,
                    None => MigrationState::Pending,
                    Some(a) if !m.recorded_as(a) => MigrationState::Changed,
                    Some(_) => MigrationState::Applied,
                },
                applied_on: row.map(|a| a.applied_on.clone()),
                phase: Some(if m.is_contract() {
                    "contract"
                } else {
                    "expand"
                }),
                deployment_id: None,
                git_commit_sha: None,
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
            state: MigrationState::Ahead,
            applied_on: Some(a.applied_on.clone()),
            phase: None,
            deployment_id: None,
            git_commit_sha: None,
        });
    }
    out.sort_by_key(|s| s.version);
    (migrate::highest(applied), out)
}

/// Runs `status`.
pub async fn run(config: &Config, url: &DbUrl, args: &StatusArgs) -> Result<()> {
    let db = Database::open(url, config.for_reading()).await?;
    let known = migrate::migrations(db.dialect());
    let history = db.read_history().await?;
    let defer = Contracts::for_up(db.dialect()) == Contracts::Defer;
    let (current, mut migrations) = build_status(&known, history.as_deref(), defer);
    if history.is_some() {
        let deployments = db.read_deployments().await?;
        for m in &mut migrations {
            if let Some(d) = deployments.get(&m.version) {
                m.deployment_id = d.id.clone();
                m.git_commit_sha = d.commit.clone();
            }
        }
    }
    let count = |s: MigrationState| migrations.iter().filter(|m| m.state == s).count();
    let deferred = count(MigrationState::Deferred);
    let pending = count(MigrationState::Pending) + deferred;
    let status = Status {
        database: url.to_string(),
        dialect: db.dialect().name(),
        current_version: current,
        latest_version: known.last().map_or(0, |m| m.version),
        history_table: history.is_some(),
        pending,
        deferred,
        migrations,
    };
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serialises")
        )?;
    } else {
        crate::outln!("database: {}", status.database)?;
        crate::outln!(
            "schema version: {} (this binary: {}){}",
            status.current_version,
            status.latest_version,
            if status.history_table {
                ""
            } else {
                "; no history table"
            }
        )?;
        for m in &status.migrations {
            let label = format!("V{}__{}", m.version, m.name);
            let note = match m.state {
                MigrationState::Changed => {
                    " (applied, but this binary's file differs: up will refuse)"
                }
                MigrationState::Ahead => " (unknown to this binary: a newer image applied it)",
                MigrationState::Deferred => {
                    " (a contract step: `complete` applies it once the previous app version is gone)"
                }
                _ => "",
            };
            let by = match (&m.deployment_id, &m.git_commit_sha) {
                (None, None) => String::new(),
                (id, sha) => format!(
                    " by deployment {} (commit {})",
                    id.as_deref().unwrap_or("?"),
                    sha.as_deref().unwrap_or("?")
                ),
            };
            crate::outln!(
                "  {label:<24} {:<8} {}{by}{note}",
                m.state.as_str(),
                m.applied_on.as_deref().unwrap_or("")
            )?;
        }
        crate::outln!("{pending} pending ({deferred} deferred)")?;
    }
    if args.exit_code && pending > 0 {
        return Err(Error::new(
            Kind::Pending,
            format!("{pending} migration(s) pending"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Dialect;

    #[test]
    fn status_marks_each_state() {
        let known = migrate::migrations(Dialect::Sqlite);
        let mut history: Vec<Applied> = known[..2].iter().map(|m| m.as_applied("")).collect();
        history[1].checksum ^= 1;
        history.push(Applied {
            version: 99,
            name: "future".into(),
            applied_on: String::new(),
            checksum: 0,
        });
        let (current, list) = build_status(&known, Some(&history), true);
        assert_eq!(current, 99);
        let states: Vec<_> = list.iter().map(|m| m.state.as_str()).collect();
        assert_eq!(
            states,
            vec!["applied", "changed", "pending", "pending", "pending", "ahead"]
        );
    }
}
