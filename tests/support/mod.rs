//! Shared integration-test support, one module per concern; everything a test uses is
//! re-exported here, so a test file needs only `mod support; use support::*;`.
//!
//! - [`pg`]: throwaway PostgreSQL clusters (initdb on a free port, trust or password auth,
//!   plaintext allowed or not) and their URLs.
//! - [`certs`]: the clusters' TLS (off, self-signed or CA-signed).
//! - [`checkout`]: a copy of the sources to add migrations to and build.
//! - [`net`]: a silent port, PgBouncer and a cutting proxy in front of a cluster.
//! - [`sqlite`]: temporary SQLite files.
//! - [`run`]: runs of the real binary and the assertions on their outcome.
//! - [`host`]: commands as the server user, free ports, waiting.
//! - [`python`]: the Python backend's real client (SQLAlchemy), for adoption and transfers.
//! - [`wedge`]: a proxy that wedges a connection at a chosen message.
#![allow(dead_code)]

mod certs;
mod checkout;
mod host;
mod net;
mod pg;
mod python;
mod run;
mod sqlite;
mod wedge;

// Each test binary uses only some of these; an unused re-export is not a mistake here.
#[allow(unused_imports)]
pub use certs::Tls;
#[allow(unused_imports)]
pub use checkout::{copy_tree, Checkout};
#[allow(unused_imports)]
pub use host::{free_port, wait_until};
#[allow(unused_imports)]
pub use net::{BlackHole, CutProxy, PgBouncer};
#[allow(unused_imports)]
pub use pg::{cluster, password_cluster, percent, PgCluster, PgOptions, PASSWORD};
#[allow(unused_imports)]
pub use python::{backend, backend_with, python};
#[allow(unused_imports)]
pub use run::{
    assert_no_secret, bin, program, race, run, run_bounded, run_in, spawn, spawn_command, Run,
    Spawned,
};
#[allow(unused_imports)]
pub use sqlite::TempSqlite;
#[allow(unused_imports)]
pub use wedge::{Trigger, WedgeProxy};
