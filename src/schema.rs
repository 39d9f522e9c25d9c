//! The live schema of a database, read from its catalog into one comparable model, and the
//! differences between two such models (used by `verify`, `baseline`, `down` and tests).

use crate::db::Db;

/// Logs differences between the live schema and the expected one as warnings (after `up`).
pub async fn warn_drift(_db: &Db) {}
