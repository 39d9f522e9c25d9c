//! `status`: where the database stands. Reads the history without the lock and never
//! creates a SQLite file.

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Kind, Result};
use crate::migrate::{self, Applied, Migration};
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
}

impl MigrationState {
    fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => "changed",
            MigrationState::Ahead => "ahead",
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
                    None => MigrationState::Pending,
                    Some(a) if !m.recorded_as(a) => MigrationState::Changed,
                    Some(_) => MigrationState::Applied,
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
            state: MigrationState::Ahead,
            applied_on: Some(a.applied_on.clone()),
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
    let (current, migrations) = build_status(&known, history.as_deref());
    let pending = migrations
        .iter()
        .filter(|m| m.state == MigrationState::Pending)
        .count();
    let status = Status {
        database: url.to_string(),
        dialect: db.dialect().name(),
        current_version: current,
        latest_version: known.last().map_or(0, |m| m.version),
        history_table: history.is_some(),
        pending,
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
                _ => "",
            };
            crate::outln!(
                "  {label:<24} {:<8} {}{note}",
                m.state.as_str(),
                m.applied_on.as_deref().unwrap_or("")
            )?;
        }
        crate::outln!("{pending} pending")?;
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
        let (current, list) = build_status(&known, Some(&history));
        assert_eq!(current, 99);
        let states: Vec<_> = list.iter().map(|m| m.state.as_str()).collect();
        assert_eq!(
            states,
            vec!["applied", "changed", "pending", "pending", "pending", "ahead"]
        );
    }
}
