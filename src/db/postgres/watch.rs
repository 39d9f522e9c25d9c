//! Telling "slow" from "gone" while waiting for PostgreSQL's answer. A middlebox that accepts
//! every byte and never answers (a wedged proxy, a pooler whose pool is exhausted, a server
//! frozen by storage) is invisible to TCP keepalives: the only sign is the silence. So every
//! wait for an answer is bounded by `MIGRATE_NET_TIMEOUT`, in one of two ways:
//!
//! - a **short** query (history, catalog, a lock attempt, a check) must answer within the
//!   bound;
//! - a **long** statement (a migration, an index build, COPY, VALIDATE, row counts, a lock wait,
//!   COMMIT) is watched instead of cut: from a third of the bound on, a side connection asks
//!   `pg_stat_activity` whether the server is running our statement (our backend `active`, and
//!   not waiting to read from us). While it is, the wait goes on, however long; once the server
//!   has shown no sign of it for the whole bound (the backend idle, gone, waiting on us, or the
//!   server unreachable), the link is declared lost.
//!
//! Our backend is known by its pid, `pg_backend_pid()`, asked in a round trip the work makes
//! anyway (the migration lock, the transaction a step or a load opens): on a direct or
//! session-pooled connection it holds for the session; behind a transaction pooler, only for
//! the transaction it was asked in (and it is forgotten when that ends). With
//! `MIGRATE_LOCK=auto` a pooler is learnt from the first pid that is not the one announced at
//! login. A long wait whose
//! backend is not known is bounded like a short one. When a wait is declared lost, the side connection ends
//! our server session (`pg_terminate_backend`), so what it had not committed rolls back and
//! the locks it held (the migration lock among them) go at once, not when a proxy lets go.

use super::error::describe;
use crate::error::{Error, Kind};
use crate::url::PgUrl;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How a watched driver call ended badly: the server's own error (kept, so the caller can
/// read its SQLSTATE), or the link declared lost.
#[derive(Debug)]
pub enum Waited {
    /// PostgreSQL answered with an error (or the connection failed on its own).
    Pg(tokio_postgres::Error),
    /// No sign of an answer within the bound: exit 3, named.
    Lost(Error),
}

impl From<tokio_postgres::Error> for Waited {
    fn from(e: tokio_postgres::Error) -> Waited {
        Waited::Pg(e)
    }
}

impl From<Error> for Waited {
    fn from(e: Error) -> Waited {
        Waited::Lost(e)
    }
}

impl From<Waited> for Error {
    fn from(w: Waited) -> Error {
        match w {
            Waited::Pg(e) => Error::from(e),
            Waited::Lost(e) => e,
        }
    }
}

impl From<Waited> for super::error::StepError {
    fn from(w: Waited) -> super::error::StepError {
        match w {
            Waited::Pg(e) => e.into(),
            Waited::Lost(e) => e.into(),
        }
    }
}

/// A driver call as a watched future: its error kept as [`Waited::Pg`].
pub async fn pg<T>(
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Waited> {
    fut.await.map_err(Waited::Pg)
}

/// The watch over one session: its bound, its backend, and a side connection for probes.
pub struct Watch {
    url: PgUrl,
    net_timeout: Duration,
    /// Our backend's pid, -1 when unknown.
    pid: AtomicI64,
    /// Behind a transaction pooler: a pid holds for one transaction only. Learnt, when it is
    /// not known from the start, from a pid that is not the announced one.
    pooled: AtomicBool,
    /// The backend pid announced at login, when it is to tell a pooler (`MIGRATE_LOCK=auto`).
    announced: Option<i32>,
    side: Mutex<Option<Client>>,
    /// Once a wait was declared lost: its message.
    dead: std::sync::Mutex<Option<String>>,
}

/// What a probe saw of our backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Running our statement (or waiting for a lock, a sleep, I/O): slow, not gone.
    Running,
    /// Idle, gone, or waiting for us to send: it is not working on what we wait for.
    NotRunning,
    /// The side connection answered nothing (a pooler holding queries, a wedged link).
    Silent,
    /// The server could not be reached at all.
    Unreachable,
}

impl Watch {
    /// A watch over a session of `url`, bounded by `net_timeout`; `pooled`: behind a
    /// transaction pooler; `announced`: the pid announced at login, where any other pid seen
    /// is to mean a pooler (see `session`).
    pub fn new(url: &PgUrl, net_timeout: Duration, pooled: bool, announced: Option<i32>) -> Watch {
        // The side connection says what it is in pg_stat_activity.
        let mut side_url = url.clone();
        let name = url
            .application_name
            .as_deref()
            .unwrap_or("yogaflow-migrate");
        side_url.application_name = Some(format!("{name} (watch)"));
        Watch {
            url: side_url,
            net_timeout,
            pid: AtomicI64::new(-1),
            pooled: AtomicBool::new(pooled),
            announced,
            side: Mutex::new(None),
            dead: std::sync::Mutex::new(None),
        }
    }

    /// Records our backend's pid, as `pg_backend_pid()` gave it. A pid other than the one
    /// announced at login means a pooler: from then on a pid holds for one transaction.
    pub fn set_pid(&self, pid: i32) {
        if self.announced.is_some_and(|a| a != pid) {
            self.pooled.store(true, Ordering::Relaxed);
        }
        self.pid.store(i64::from(pid), Ordering::Relaxed);
    }

    /// The backend pid announced at login, where it is to tell a pooler (`MIGRATE_LOCK=auto`).
    pub fn announced(&self) -> Option<i32> {
        self.announced
    }

    /// Whether a pid holds for one transaction only (behind a pooler, known or learnt).
    pub fn pooled(&self) -> bool {
        self.pooled.load(Ordering::Relaxed)
    }

    /// A transaction ended: behind a transaction pooler its server connection is no longer
    /// ours, so its pid is forgotten.
    pub fn transaction_ended(&self) {
        if self.pooled() {
            self.pid.store(-1, Ordering::Relaxed);
        }
    }

    /// Behind a transaction pooler: asks, inside the transaction just begun, which server
    /// connection holds it, so that long waits in it can be watched. (Elsewhere the pid is
    /// the session's, learnt with the migration lock or the keepalive settings.)
    pub async fn learn_pid_in(
        &self,
        tx: &impl tokio_postgres::GenericClient,
    ) -> Result<(), Waited> {
        if self.pooled() {
            let rows = self
                .short(
                    "starting a transaction",
                    pg(tx.simple_query("SELECT pg_backend_pid()")),
                )
                .await?;
            self.learn_pid(&rows);
        }
        Ok(())
    }

    /// Records the pid in the last row of a simple query's answer whose last statement was
    /// `SELECT pg_backend_pid()`.
    pub fn learn_pid(&self, rows: &[SimpleQueryMessage]) {
        let pid = rows.iter().rev().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        });
        if let Some(pid) = pid {
            self.set_pid(pid);
        }
    }

    fn pid(&self) -> Option<i32> {
        i32::try_from(self.pid.load(Ordering::Relaxed)).ok()
    }

    /// Waits for `fut`, a short query of the phase `what`, at most the bound.
    pub async fn short<T, E: From<Error>>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if let Some(e) = self.dead() {
            return Err(e.into());
        }
        let start = Instant::now();
        match tokio::time::timeout(self.net_timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(self.lost(what, start, None, false).await.into()),
        }
    }

    /// Waits for `fut`, a long statement of the phase `what`, as long as the server is running
    /// it (see the module's comment). `commit`: the phase is a COMMIT, whose outcome a lost
    /// link leaves unknown.
    pub async fn long<T, E: From<Error>>(
        &self,
        what: &str,
        commit: bool,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let Some(pid) = self.pid() else {
            return self.short(what, fut).await;
        };
        if let Some(e) = self.dead() {
            return Err(e.into());
        }
        let start = Instant::now();
        let tick = self.tick();
        let mut last_sign = start;
        tokio::pin!(fut);
        loop {
            tokio::select! {
                result = &mut fut => return result,
                () = tokio::time::sleep(tick) => {}
            }
            let seen = tokio::select! {
                result = &mut fut => return result,
                seen = self.probe(pid, tick) => seen,
            };
            if seen == Seen::Running {
                last_sign = Instant::now();
            } else if last_sign.elapsed() >= self.net_timeout {
                return Err(self.lost(what, start, Some(seen), commit).await.into());
            }
        }
    }

    /// One look at our backend through the side connection, within `within`.
    async fn probe(&self, pid: i32, within: Duration) -> Seen {
        let mut side = self.side.lock().await;
        if side.is_none() {
            let connect = super::connect::side_connection(&self.url, self.net_timeout);
            match tokio::time::timeout(within, connect).await {
                Ok(Some(c)) => *side = Some(c),
                _ => return Seen::Unreachable,
            }
        }
        let client = side.as_ref().expect("connected above");
        let sql = format!(
            "SELECT coalesce(state, ''), coalesce(wait_event, '') FROM pg_stat_activity \
             WHERE pid = {pid}"
        );
        match tokio::time::timeout(within, client.simple_query(&sql)).await {
            Ok(Ok(rows)) => {
                let row = rows.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some((
                        r.get(0).unwrap_or("").to_string(),
                        r.get(1).unwrap_or("").to_string(),
                    )),
                    _ => None,
                });
                match row {
                    Some((state, wait)) if state == "active" && wait != "ClientRead" => {
                        Seen::Running
                    }
                    _ => Seen::NotRunning,
                }
            }
            Ok(Err(_)) => {
                *side = None;
                Seen::Unreachable
            }
            Err(_) => {
                *side = None;
                Seen::Silent
            }
        }
    }

    /// The error of a wait declared lost (`seen`: `None` for a short query that got no
    /// answer), after ending our server session where the server can be reached. The watch
    /// is dead from then on: every later wait fails at once with the same error.
    async fn lost(&self, what: &str, start: Instant, seen: Option<Seen>, commit: bool) -> Error {
        let ended = match self.pid() {
            Some(pid) => self.terminate(pid).await,
            None => false,
        };
        let bound = self.net_timeout.as_secs_f64();
        let why = match seen {
            None => format!("{what} got no answer within {bound:.0} s (MIGRATE_NET_TIMEOUT)"),
            Some(seen) => {
                let sign = match seen {
                    Seen::Running | Seen::NotRunning => {
                        "the server was not working on it (our session idle, or waiting for us)"
                    }
                    Seen::Silent => "the server answered nothing",
                    Seen::Unreachable => "the server could not be reached",
                };
                format!(
                    "{what} waited {:.1} s, and for {bound:.0} s (MIGRATE_NET_TIMEOUT) {sign}",
                    start.elapsed().as_secs_f64()
                )
            }
        };
        let pooler = if self.pooled() && seen != Some(Seen::NotRunning) {
            "; behind a connection pooler this is how an exhausted pool looks (PgBouncer holds \
             queries up to its query_wait_timeout, 120 s by default)"
        } else {
            ""
        };
        let cleanup = if ended {
            "our server session was ended, so what it had not committed was rolled back"
        } else {
            "what was not committed is rolled back when the server ends the session"
        };
        let outcome = if commit {
            "; whether the COMMIT took effect is unknown: `yogaflow-migrate status` shows what \
             is recorded"
        } else {
            ""
        };
        let message =
            format!("the connection to the database was lost: {why}{pooler}; {cleanup}{outcome}");
        *self.dead.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.clone());
        Error::new(Kind::Unreachable, message)
    }

    /// The error every wait fails with once the link was declared lost.
    fn dead(&self) -> Option<Error> {
        let dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        dead.as_ref()
            .map(|m| Error::new(Kind::Unreachable, m.clone()))
    }

    /// How often a long wait looks at the server: a third of the bound, at least a second.
    fn tick(&self) -> Duration {
        (self.net_timeout / 3).max(Duration::from_secs(1))
    }

    /// Ends our server session from the side, within a [`Watch::tick`]. Whether it was ended.
    async fn terminate(&self, pid: i32) -> bool {
        let work = async {
            let mut side = self.side.lock().await;
            if side.is_none() {
                *side = super::connect::side_connection(&self.url, self.net_timeout).await;
            }
            let client = side.as_ref()?;
            let sql = format!("SELECT pg_terminate_backend({pid})");
            match client.simple_query(&sql).await {
                Ok(_) => Some(()),
                Err(e) => {
                    log::debug!("could not end the lost session {pid}: {}", describe(&e));
                    None
                }
            }
        };
        matches!(tokio::time::timeout(self.tick(), work).await, Ok(Some(())))
    }
}

/// A shared watch, for the transfer sink that holds the session's transaction.
pub type SharedWatch = Arc<Watch>;
