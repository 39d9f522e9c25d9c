//! The Python backend's real client for the tests (tests/python/backend.py: SQLAlchemy 2's
//! async engine over asyncpg and aiosqlite, in the virtualenv .ci/run makes).

use std::process::Command;

/// The virtualenv .ci/run makes (YOGAFLOW_PYTHON overrides it).
pub fn python() -> String {
    std::env::var("YOGAFLOW_PYTHON").unwrap_or_else(|_| "/opt/yogaflow-py/bin/python".into())
}

/// Runs tests/python/backend.py COMMAND URL; its standard output.
pub fn backend(command: &str, url: &str) -> String {
    backend_with(command, url, &[])
}

/// [`backend`] with environment variables (`YOGAFLOW_PLAIN_JSON`, `YOGAFLOW_VARIANT`).
pub fn backend_with(command: &str, url: &str, env: &[(&str, &str)]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/backend.py");
    let out = Command::new(python())
        .args([script, command, url])
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the test backend's virtualenv: python3 -m venv /opt/yogaflow-py && \
                 /opt/yogaflow-py/bin/pip install -r tests/python/requirements.txt)",
                python()
            )
        });
    assert!(
        out.status.success(),
        "backend.py {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
