//! The on-call commands: `status`, `verify`, `down` and `baseline`.

use crate::cli::{BaselineArgs, DownArgs, StatusArgs, VerifyArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::url::Target;

/// Runs `status`.
pub async fn status(_config: &Config, _target: &Target, _args: &StatusArgs) -> Result<()> {
    Err(Error::internal("status is not built yet"))
}

/// Runs `verify`.
pub async fn verify(_config: &Config, _target: &Target, _args: &VerifyArgs) -> Result<()> {
    Err(Error::internal("verify is not built yet"))
}

/// Runs `down`.
pub async fn down(_config: &Config, _target: &Target, _args: &DownArgs) -> Result<()> {
    Err(Error::internal("down is not built yet"))
}

/// Runs `baseline`.
pub async fn baseline(_config: &Config, _target: &Target, _args: &BaselineArgs) -> Result<()> {
    Err(Error::internal("baseline is not built yet"))
}
