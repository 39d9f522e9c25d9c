//! The history we write is refinery's: refinery's own runner, pointed at a database migrated by
//! yogaflow-migrate, sees every migration applied with matching checksums and finds nothing
//! to do.

use std::process::Command;

mod embedded {
    refinery::embed_migrations!("sql/sqlite");
}

#[test]
fn refinery_reads_our_history_as_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("y.db");
    let out = Command::new(env!("CARGO_BIN_EXE_yogaflow-migrate"))
        .arg("up")
        .env("DATABASE_URL", format!("sqlite:///{}", path.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let runner = embedded::migrations::runner();
    let applied = runner.get_applied_migrations(&mut conn).unwrap();
    assert_eq!(applied.len(), 5);
    for (ours, theirs) in applied.iter().zip(runner.get_migrations()) {
        assert_eq!(ours.version(), theirs.version());
        assert_eq!(ours.checksum(), theirs.checksum(), "{theirs}");
    }
    let report = runner.run(&mut conn).unwrap();
    assert!(report.applied_migrations().is_empty());
}
