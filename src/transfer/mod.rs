//! Moving data: `export` to JSON, `import` from JSON, and `copy` between databases.

use crate::cli::{CopyArgs, ExportArgs, ImportArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::url::Target;

/// Runs `export`.
pub async fn export(_config: &Config, _target: &Target, _args: &ExportArgs) -> Result<()> {
    Err(Error::internal("export is not built yet"))
}

/// Runs `import`.
pub async fn import(_config: &Config, _target: &Target, _args: &ImportArgs) -> Result<()> {
    Err(Error::internal("import is not built yet"))
}

/// Runs `copy`; `target` is `--to` or `DATABASE_URL`.
pub async fn copy(_config: &Config, _target: &Target, _args: &CopyArgs) -> Result<()> {
    Err(Error::internal("copy is not built yet"))
}
