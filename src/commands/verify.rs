//! `verify`: every difference between the live schema and the one the recorded version should
//! have, plus row counts; exit 9 on any difference.

use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Kind, Result};
use crate::migrate;
use crate::schema;
use crate::url::DbUrl;

/// Runs `verify`.
pub async fn run(config: &Config, url: &DbUrl, args: &VerifyArgs) -> Result<()> {
    let db = Database::open(url, config.for_reading()).await?;
    let state = migrate::current_state(&db, None).await?;
    let version = state.current.min(migrate::highest(&state.applied));
    let expected = migrate::expected_schema(&db, &state.applied).await?;
    let live = db.live_schema().await?;
    // Tables the migrations do not make (alembic_version, the app's own), and the app's own
    // columns it need not name and indexes, are not ours to judge: named, never a difference.
    let (own, diffs): (Vec<_>, Vec<_>) = schema::diff(&expected, &live, true)
        .into_iter()
        .partition(schema::Difference::tolerated);
    let unmanaged: Vec<&String> = live
        .tables
        .keys()
        .filter(|t| !expected.tables.contains_key(*t))
        .collect();
    let tables: Vec<String> = live.tables.keys().cloned().collect();
    let counts = db.row_counts(&tables).await?;
    if args.json {
        let out = serde_json::json!({
            "database": url.to_string(),
            "version": version,
            "differences": diffs,
            "not_managed": unmanaged,
            "not_managed_objects": own,
            "row_counts": counts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serialises")
        )?;
    } else {
        crate::outln!("database: {url}")?;
        crate::outln!("schema version: {version}")?;
        for (t, n) in &counts {
            crate::outln!("  {t:<20} {n:>10} rows")?;
        }
        for t in &unmanaged {
            crate::outln!("not managed: table {t} (not made by the migrations; left alone)")?;
        }
        for d in &own {
            crate::outln!("not managed: {d} (the app's own; left alone)")?;
        }
        if diffs.is_empty() {
            crate::outln!("schema matches version {version}")?;
        }
        for d in &diffs {
            crate::outln!("difference: {d}")?;
        }
    }
    if !diffs.is_empty() {
        return Err(Error::new(
            Kind::SchemaDiffers,
            format!(
                "the schema differs from version {version} in {} place(s): {}",
                diffs.len(),
                diffs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    Ok(())
}
