//! The history we write is refinery's: refinery's own runner, pointed at a database migrated by
//! yogaflow-migrate, sees every migration applied with matching checksums and finds nothing
//! to do.

mod support;

use support::*;

mod embedded {
    refinery::embed_migrations!("sql/sqlite");
}

#[test]
fn refinery_reads_our_history_as_its_own() {
    let f = TempSqlite::new();
    run(&["up"], &[("DATABASE_URL", &f.url())]).assert_code(0);

    let mut conn = rusqlite::Connection::open(f.path()).unwrap();
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
