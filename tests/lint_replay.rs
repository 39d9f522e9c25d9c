//! Replays each lint rule's blocking and safe forms on a real PostgreSQL table of 100,000 rows
//! and reads what the server did, so that a rule's `why` is what PostgreSQL does and what lint
//! lets through is safe: per statement, the strongest lock its transaction holds on the table
//! (`pg_locks`, read in the same session before COMMIT; for a statement that refuses a
//! transaction block, the lock it asks for while another session holds the table), whether it
//! read every row (`pg_stat_xact_user_tables.seq_scan`), and whether the table or its indexes
//! got new files (`pg_relation_filenode`); per file, whether ROLLBACK still undoes all of it.
//!
//! [`CASES`] is the data: for each form, the rule, whether lint flags it, and what PostgreSQL
//! does. The test asserts all three agree, that each flagged form's rule names the lock or the
//! rewrite PostgreSQL showed, and that no form lint lets through rewrites or scans under a lock
//! that blocks writes.

mod support;

use std::time::{Duration, Instant};
use support::cluster;
use tokio_postgres::{Client, NoTls};
use yogaflow_migrate::lint::{self, RuleId, Schema};
use yogaflow_migrate::script;

/// The table every case runs against, with the earlier migration the linter is told of.
const FIXTURE: &str = "
CREATE TABLE users (id int PRIMARY KEY);
INSERT INTO users SELECT generate_series(1, 1000);
CREATE TABLE s (id int PRIMARY KEY, a int, u int, name varchar(50), note text)
    WITH (autovacuum_enabled = off);
INSERT INTO s SELECT i, i % 100, i % 1000 + 1, 'name ' || i, 'note ' || i
    FROM generate_series(1, 100000) i;
CREATE INDEX ix_s_a ON s (a);
CREATE INDEX ix_s_name ON s (name);
-- PL/pgSQL: a SQL function this simple would be inlined to its constant.
CREATE FUNCTION my_default() RETURNS int LANGUAGE plpgsql VOLATILE AS 'BEGIN RETURN 1; END';
";

/// The relations whose locks and files are read: the table, its indexes, the referenced table.
const RELATIONS: [&str; 5] = ["s", "s_pkey", "ix_s_a", "ix_s_name", "users"];

/// PostgreSQL's table lock modes, weakest first, as `pg_locks.mode` names them.
const MODES: [&str; 9] = [
    "none",
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// A lock mode, by strength (an index into [`MODES`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Mode(usize);

const NONE: Mode = Mode(0);
const ROW_SHARE: Mode = Mode(2);
const ROW_EXCLUSIVE: Mode = Mode(3);
const SHARE_UPDATE_EXCLUSIVE: Mode = Mode(4);
const SHARE: Mode = Mode(5);
const SHARE_ROW_EXCLUSIVE: Mode = Mode(6);
const ACCESS_EXCLUSIVE: Mode = Mode(8);

impl Mode {
    fn parse(name: &str) -> Mode {
        Mode(MODES.iter().position(|m| *m == name).unwrap_or(0))
    }

    /// How the documentation (and the rules' `why`) spells it: `SHARE ROW EXCLUSIVE`.
    fn words(self) -> String {
        let name = MODES[self.0].trim_end_matches("Lock");
        let mut out = String::new();
        for c in name.chars() {
            if c.is_uppercase() && !out.is_empty() {
                out.push(' ');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MODES[self.0])
    }
}

/// Which files a form gave new storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rewrite {
    No,
    /// The table's indexes only (a rebuild).
    Indexes,
    /// The table itself (and so its indexes).
    Table,
}

/// One form of a rule and what PostgreSQL does with it.
#[derive(Clone, Copy)]
struct Case {
    /// The rule the form is about.
    rule: RuleId,
    /// Committed before the case, and told to the linter as an earlier migration.
    setup: &'static str,
    /// The migration file.
    sql: &'static str,
    /// Whether lint flags it with `rule` (a form not flagged must lint clean).
    flagged: bool,
    /// The SQLSTATE PostgreSQL refuses it with.
    error: Option<&'static str>,
    /// The strongest lock any of its statements holds (or asks for) on `s`.
    lock: Mode,
    /// The strongest lock held on `s` by a statement that read every row of it (`NONE`: none
    /// did); `None`: not checked (the plan may or may not scan).
    scan_under: Option<Mode>,
    rewrite: Rewrite,
    /// Whether a ROLLBACK at the end (a failure after the file) undoes all of it; only a
    /// file that runs in a transaction is checked.
    atomic: bool,
    /// The strongest lock on other relations.
    also: &'static [(&'static str, Mode)],
}

/// A form that takes no lock on `s` and changes nothing: each case says how it differs.
const BASE: Case = Case {
    rule: RuleId::Syntax,
    setup: "",
    sql: "",
    flagged: false,
    error: None,
    lock: NONE,
    scan_under: Some(NONE),
    rewrite: Rewrite::No,
    atomic: true,
    also: &[],
};

/// What [`BASE`] says plus: flagged by `rule`.
const fn flagged(rule: RuleId, sql: &'static str) -> Case {
    Case {
        rule,
        sql,
        flagged: true,
        ..BASE
    }
}

/// What [`BASE`] says plus: the safe form of `rule`.
const fn safe(rule: RuleId, sql: &'static str) -> Case {
    Case { rule, sql, ..BASE }
}

/// Each rule's blocking forms and safe forms, and what PostgreSQL does with them (checked on
/// PostgreSQL 15 and 18).
const CASES: &[Case] = &[
    Case {
        lock: SHARE,
        scan_under: Some(SHARE),
        ..flagged(RuleId::IndexBlocksWrites, "CREATE INDEX ix_s_note ON s (note);")
    },
    Case {
        lock: SHARE_UPDATE_EXCLUSIVE,
        ..safe(
            RuleId::IndexBlocksWrites,
            "-- no-transaction\nCREATE INDEX CONCURRENTLY ix_s_note ON s (note);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        also: &[("ix_s_a", ACCESS_EXCLUSIVE)],
        ..flagged(RuleId::DropIndexBlocks, "DROP INDEX ix_s_a;")
    },
    Case {
        lock: SHARE_UPDATE_EXCLUSIVE,
        ..safe(
            RuleId::DropIndexBlocks,
            "-- no-transaction\nDROP INDEX CONCURRENTLY ix_s_a;",
        )
    },
    Case {
        lock: SHARE,
        scan_under: Some(SHARE),
        rewrite: Rewrite::Indexes,
        also: &[("ix_s_a", ACCESS_EXCLUSIVE)],
        ..flagged(RuleId::ReindexBlocks, "REINDEX INDEX ix_s_a;")
    },
    Case {
        lock: SHARE,
        scan_under: Some(SHARE),
        rewrite: Rewrite::Indexes,
        also: &[("ix_s_a", ACCESS_EXCLUSIVE)],
        ..flagged(RuleId::ReindexBlocks, "REINDEX TABLE s;")
    },
    Case {
        lock: SHARE_UPDATE_EXCLUSIVE,
        rewrite: Rewrite::Indexes,
        ..safe(
            RuleId::ReindexBlocks,
            "-- no-transaction\nREINDEX INDEX CONCURRENTLY ix_s_a;",
        )
    },
    Case {
        error: Some("25001"),
        ..flagged(
            RuleId::ConcurrentlyInTransaction,
            "CREATE INDEX CONCURRENTLY ix_s_note ON s (note);",
        )
    },
    Case {
        error: Some("25001"),
        ..flagged(
            RuleId::ConcurrentlyInTransaction,
            "REINDEX INDEX CONCURRENTLY ix_s_a;",
        )
    },
    Case {
        error: Some("25001"),
        ..flagged(
            RuleId::ConcurrentlyInTransaction,
            "DROP INDEX CONCURRENTLY ix_s_a;",
        )
    },
    Case {
        error: Some("23502"),
        ..flagged(
            RuleId::NotNullColumnWithoutDefault,
            "ALTER TABLE s ADD COLUMN tag text NOT NULL;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::NotNullColumnWithoutDefault,
            "ALTER TABLE s ADD COLUMN tag text NOT NULL DEFAULT '';",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::AddColumnRewrites,
            "ALTER TABLE s ADD COLUMN r float8 DEFAULT random();",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::AddColumnRewrites,
            "ALTER TABLE s ADD COLUMN n int DEFAULT my_default();",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::AddColumnRewrites,
            "ALTER TABLE s ADD COLUMN g int GENERATED ALWAYS AS (a * 2) STORED;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(RuleId::AddColumnRewrites, "ALTER TABLE s ADD COLUMN k bigserial;")
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::AddColumnRewrites,
            "ALTER TABLE s ADD COLUMN t timestamptz DEFAULT now();",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::AddColumnRewrites,
            "ALTER TABLE s ADD COLUMN m jsonb NOT NULL DEFAULT '{}'::jsonb, \
             ADD COLUMN d date DEFAULT current_date, ADD COLUMN l text DEFAULT lower('X');",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN a TYPE bigint;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN name TYPE varchar(20);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN note TYPE varchar(100);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN name TYPE varchar(100);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN name TYPE text;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::ColumnTypeRewrites,
            "ALTER TABLE s ALTER COLUMN name TYPE varchar, ALTER COLUMN note TYPE varchar;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        rewrite: Rewrite::Table,
        ..flagged(RuleId::TableRewrite, "-- no-transaction\nVACUUM FULL s;")
    },
    Case {
        error: Some("25001"),
        ..flagged(RuleId::TableRewrite, "VACUUM FULL s;")
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: None,
        rewrite: Rewrite::Table,
        ..flagged(RuleId::TableRewrite, "CLUSTER s USING ix_s_a;")
    },
    Case {
        lock: SHARE_UPDATE_EXCLUSIVE,
        ..safe(RuleId::TableRewrite, "-- no-transaction\nVACUUM s;")
    },
    Case {
        lock: SHARE_ROW_EXCLUSIVE,
        scan_under: Some(SHARE_ROW_EXCLUSIVE),
        also: &[("users", SHARE_ROW_EXCLUSIVE)],
        ..flagged(
            RuleId::ForeignKeyValidates,
            "ALTER TABLE s ADD CONSTRAINT fk_s_u FOREIGN KEY (u) REFERENCES users (id);",
        )
    },
    Case {
        lock: SHARE_ROW_EXCLUSIVE,
        also: &[("users", SHARE_ROW_EXCLUSIVE)],
        ..safe(
            RuleId::ForeignKeyValidates,
            "ALTER TABLE s ADD CONSTRAINT fk_s_u FOREIGN KEY (u) REFERENCES users (id) NOT VALID;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        ..flagged(
            RuleId::CheckValidates,
            "ALTER TABLE s ADD CONSTRAINT ck_s_a CHECK (a >= 0);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::CheckValidates,
            "ALTER TABLE s ADD CONSTRAINT ck_s_a CHECK (a >= 0) NOT VALID;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        ..flagged(
            RuleId::ValidateInSameTransaction,
            "ALTER TABLE s ADD CONSTRAINT ck_s_a CHECK (a >= 0) NOT VALID;\n\
             ALTER TABLE s VALIDATE CONSTRAINT ck_s_a;",
        )
    },
    Case {
        lock: SHARE_ROW_EXCLUSIVE,
        scan_under: Some(SHARE_ROW_EXCLUSIVE),
        also: &[("users", SHARE_ROW_EXCLUSIVE)],
        ..flagged(
            RuleId::ValidateInSameTransaction,
            "ALTER TABLE s ADD CONSTRAINT fk_s_u FOREIGN KEY (u) REFERENCES users (id) NOT VALID;\n\
             ALTER TABLE s VALIDATE CONSTRAINT fk_s_u;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        ..flagged(
            RuleId::ValidateInSameTransaction,
            "ALTER TABLE s ADD CONSTRAINT ck_s_a_nn CHECK (a IS NOT NULL) NOT VALID;\n\
             ALTER TABLE s VALIDATE CONSTRAINT ck_s_a_nn;\n\
             ALTER TABLE s ALTER COLUMN a SET NOT NULL;\n\
             ALTER TABLE s DROP CONSTRAINT ck_s_a_nn;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(SHARE_UPDATE_EXCLUSIVE),
        ..safe(
            RuleId::ValidateInSameTransaction,
            "-- no-transaction\n\
             ALTER TABLE s ADD CONSTRAINT ck_s_a_nn CHECK (a IS NOT NULL) NOT VALID;\n\
             ALTER TABLE s VALIDATE CONSTRAINT ck_s_a_nn;\n\
             ALTER TABLE s ALTER COLUMN a SET NOT NULL;\n\
             ALTER TABLE s DROP CONSTRAINT ck_s_a_nn;",
        )
    },
    Case {
        setup: "ALTER TABLE s ADD CONSTRAINT fk_s_u FOREIGN KEY (u) REFERENCES users (id) NOT VALID;",
        lock: SHARE_UPDATE_EXCLUSIVE,
        scan_under: Some(SHARE_UPDATE_EXCLUSIVE),
        also: &[("users", ROW_SHARE)],
        ..safe(
            RuleId::ValidateInSameTransaction,
            "ALTER TABLE s VALIDATE CONSTRAINT fk_s_u;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        ..flagged(
            RuleId::SetNotNullScans,
            "ALTER TABLE s ALTER COLUMN a SET NOT NULL;",
        )
    },
    Case {
        setup: "ALTER TABLE s ADD CONSTRAINT ck_s_a_nn CHECK (a IS NOT NULL) NOT VALID;\n\
                ALTER TABLE s VALIDATE CONSTRAINT ck_s_a_nn;",
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::SetNotNullScans,
            "ALTER TABLE s ALTER COLUMN a SET NOT NULL;\nALTER TABLE s DROP CONSTRAINT ck_s_a_nn;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        ..flagged(
            RuleId::UniqueBuildsIndex,
            "ALTER TABLE s ADD CONSTRAINT uq_s_note UNIQUE (note);",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::UniqueBuildsIndex,
            "-- no-transaction\n\
             CREATE UNIQUE INDEX CONCURRENTLY uq_s_note ON s (note);\n\
             ALTER TABLE s ADD CONSTRAINT uq_s_note UNIQUE USING INDEX uq_s_note;",
        )
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        atomic: false,
        ..flagged(
            RuleId::TransactionControl,
            "ALTER TABLE s ADD COLUMN x int;\nCOMMIT;\nALTER TABLE s ADD COLUMN y int;",
        )
    },
    Case {
        error: Some("25P01"),
        ..flagged(RuleId::TransactionControl, "-- no-transaction\nSAVEPOINT a;")
    },
    Case {
        lock: ACCESS_EXCLUSIVE,
        ..safe(
            RuleId::TransactionControl,
            "ALTER TABLE s ADD COLUMN x int;\nALTER TABLE s ADD COLUMN y int;",
        )
    },
    // Its indexes are built again on the new, empty file: that "scan" reads no row.
    Case {
        lock: ACCESS_EXCLUSIVE,
        scan_under: Some(ACCESS_EXCLUSIVE),
        rewrite: Rewrite::Table,
        ..flagged(RuleId::Truncate, "TRUNCATE s;")
    },
    Case {
        lock: ROW_EXCLUSIVE,
        scan_under: None,
        ..safe(
            RuleId::Truncate,
            "DELETE FROM s WHERE id IN (SELECT id FROM s WHERE a = 1 LIMIT 1000);",
        )
    },
];

/// What one statement did.
#[derive(Debug, Default, Clone)]
struct Step {
    error: Option<String>,
    /// Strongest lock held on each of [`RELATIONS`] after it, in its transaction.
    locks: Vec<(String, Mode)>,
    /// Whether it read every row of `s`; `None`: not known (run from another session).
    scanned: Option<bool>,
    table_rewritten: bool,
    indexes_rewritten: bool,
}

/// What a whole case did, in the terms of [`Case`].
#[derive(Debug, PartialEq)]
struct Seen {
    error: Option<String>,
    lock: Mode,
    scan_under: Mode,
    rewrite: Rewrite,
    atomic: bool,
    also: Vec<(String, Mode)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The oid of each of [`RELATIONS`] that exists.
async fn oids(c: &Client) -> Vec<(String, u32)> {
    let rows = c
        .query(
            "SELECT relname::text, oid FROM pg_class WHERE relname::text = ANY($1)",
            &[&RELATIONS.to_vec()],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Each of [`RELATIONS`]' current file, by name (a rebuilt index keeps its name).
async fn filenodes(c: &Client) -> Vec<(String, Option<u32>)> {
    let rows = c
        .query(
            "SELECT relname::text, pg_relation_filenode(oid) FROM pg_class \
             WHERE relname::text = ANY($1)",
            &[&RELATIONS.to_vec()],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Whether files changed between two readings: (the table's, an index's).
fn rewritten(before: &[(String, Option<u32>)], after: &[(String, Option<u32>)]) -> (bool, bool) {
    let changed = |name: &str| {
        let find =
            |v: &[(String, Option<u32>)]| v.iter().find(|(n, _)| n == name).and_then(|x| x.1);
        matches!((find(before), find(after)), (Some(a), Some(b)) if a != b)
    };
    let indexes = ["s_pkey", "ix_s_a", "ix_s_name"].iter().any(|i| changed(i));
    (changed("s"), indexes)
}

/// The strongest lock this session's transaction holds on each of [`RELATIONS`].
async fn held_locks(c: &Client, oids: &[(String, u32)]) -> Vec<(String, Mode)> {
    let rows = c
        .query(
            "SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() \
             AND locktype = 'relation' AND granted",
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<(String, Mode)> = Vec::new();
    for r in rows {
        let (oid, mode): (Option<u32>, String) = (r.get(0), r.get(1));
        let Some((name, _)) = oids.iter().find(|(_, o)| Some(*o) == oid) else {
            continue;
        };
        let mode = Mode::parse(&mode);
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(held) => held.1 = held.1.max(mode),
            None => out.push((name.clone(), mode)),
        }
    }
    out
}

/// Sequential scans of `s` by this session's transaction so far.
async fn seq_scans(c: &Client) -> i64 {
    c.query_one(
        "SELECT coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 's'), 0)",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The shape of `s` (columns, constraints, indexes): whether a ROLLBACK undid a file.
async fn shape(c: &Client) -> String {
    c.query_one(
        "SELECT (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' \
                 ORDER BY attnum) FROM pg_attribute \
                 WHERE attrelid = 's'::regclass AND attnum > 0 AND NOT attisdropped) \
             || ' | ' || coalesce((SELECT string_agg(conname, ', ' ORDER BY conname) \
                 FROM pg_constraint WHERE conrelid = 's'::regclass), '') \
             || ' | ' || coalesce((SELECT string_agg(indexrelid::regclass::text, ', ' ORDER BY 1) \
                 FROM pg_index WHERE indrelid = 's'::regclass), '')",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Runs `stmt` in the open transaction and reads what it did.
async fn measured(c: &Client, stmt: &str, oids: &[(String, u32)]) -> Step {
    let (files, scans) = (filenodes(c).await, seq_scans(c).await);
    if let Err(e) = c.batch_execute(stmt).await {
        return Step {
            error: Some(sqlstate(&e)),
            ..Step::default()
        };
    }
    let (table_rewritten, indexes_rewritten) = rewritten(&files, &filenodes(c).await);
    let after = seq_scans(c).await;
    Step {
        error: None,
        locks: held_locks(c, oids).await,
        // After a COMMIT in the file the counts start again.
        scanned: Some(after > scans || after < scans && after > 0),
        table_rewritten,
        indexes_rewritten,
    }
}

/// Runs a file that runs in a transaction, as the migrator does, then rolls it back (a failure
/// after the file): its steps, and whether the rollback undid all of it.
async fn in_transaction(c: &Client, stmts: &[String], oids: &[(String, u32)]) -> (Vec<Step>, bool) {
    let before = shape(c).await;
    c.batch_execute("BEGIN").await.unwrap();
    let mut steps = Vec::new();
    for stmt in stmts {
        let step = measured(c, stmt, oids).await;
        let failed = step.error.is_some();
        steps.push(step);
        if failed {
            break;
        }
    }
    c.batch_execute("ROLLBACK").await.unwrap();
    (steps, shape(c).await == before)
}

/// Runs a `-- no-transaction` file, as the migrator does: each statement on its own (in a
/// transaction of its own, so its locks can be read before it commits; one that refuses a
/// transaction block is run by [`probe`], one that controls transactions bare).
async fn statement_by_statement(
    c: &Client,
    url: &str,
    stmts: &[String],
    oids: &[(String, u32)],
) -> Vec<Step> {
    let mut steps = Vec::new();
    for stmt in stmts {
        let controls = lint::lint(stmt, false)
            .iter()
            .any(|f| f.rule == RuleId::TransactionControl);
        let step = if controls {
            match c.batch_execute(stmt).await {
                Ok(()) => Step::default(),
                Err(e) => Step {
                    error: Some(sqlstate(&e)),
                    ..Step::default()
                },
            }
        } else {
            c.batch_execute("BEGIN").await.unwrap();
            let step = measured(c, stmt, oids).await;
            c.batch_execute(if step.error.is_some() {
                "ROLLBACK"
            } else {
                "COMMIT"
            })
            .await
            .unwrap();
            match step.error.as_deref() {
                // 25001: cannot run inside a transaction block.
                Some("25001") => probe(c, url, stmt, oids).await,
                _ => step,
            }
        };
        let failed = step.error.is_some();
        steps.push(step);
        if failed {
            break;
        }
    }
    steps
}

/// Runs a statement that refuses a transaction block while another session holds `s` in
/// SHARE UPDATE EXCLUSIVE mode (which every such statement's lock conflicts with), and reads
/// the lock it asks for on `s`; the holder then lets it through. Whether it scans is not known
/// from outside.
async fn probe(c: &Client, url: &str, stmt: &str, oids: &[(String, u32)]) -> Step {
    let s = oids.iter().find(|(n, _)| n == "s").unwrap().1;
    let holder = connect(url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE s IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .unwrap();
    let runner = connect(url).await;
    let pid: i32 = runner
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let files = filenodes(c).await;
    let stmt = stmt.to_string();
    let task =
        tokio::spawn(async move { runner.batch_execute(&stmt).await.map_err(|e| sqlstate(&e)) });
    let started = Instant::now();
    let asked = loop {
        let rows = c
            .query(
                "SELECT mode FROM pg_locks WHERE pid = $1 AND relation = $2 AND NOT granted",
                &[&pid, &s],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            break Mode::parse(r.get(0));
        }
        if task.is_finished() {
            break NONE;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{pid} never asked for s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    holder.batch_execute("COMMIT").await.unwrap();
    let error = task.await.unwrap().err();
    let (table_rewritten, indexes_rewritten) = rewritten(&files, &filenodes(c).await);
    Step {
        error,
        locks: vec![("s".to_string(), asked)],
        scanned: None,
        table_rewritten,
        indexes_rewritten,
    }
}

/// A fresh fixture: `s` and `users` made again.
async fn reset(c: &Client) {
    c.batch_execute("DROP TABLE IF EXISTS s, users CASCADE; DROP FUNCTION IF EXISTS my_default();")
        .await
        .unwrap();
    c.batch_execute(FIXTURE).await.unwrap();
}

/// Sums up a case's steps in the terms of [`Case`].
fn seen(steps: &[Step], atomic: bool) -> Seen {
    let lock_on = |step: &Step, name: &str| {
        step.locks
            .iter()
            .find(|(n, _)| n == name)
            .map_or(NONE, |l| l.1)
    };
    let strongest = |name: &str| steps.iter().map(|s| lock_on(s, name)).max().unwrap_or(NONE);
    let scan_under = steps
        .iter()
        .filter(|s| s.scanned == Some(true))
        .map(|s| lock_on(s, "s"))
        .max()
        .unwrap_or(NONE);
    let rewrite = if steps.iter().any(|s| s.table_rewritten) {
        Rewrite::Table
    } else if steps.iter().any(|s| s.indexes_rewritten) {
        Rewrite::Indexes
    } else {
        Rewrite::No
    };
    Seen {
        error: steps.iter().find_map(|s| s.error.clone()),
        lock: strongest("s"),
        scan_under,
        rewrite,
        atomic,
        also: ["users", "ix_s_a"]
            .iter()
            .map(|n| (n.to_string(), strongest(n)))
            .collect(),
    }
}

/// Replays one case on a fresh or untouched fixture; whether it left the fixture changed.
async fn replay(c: &Client, url: &str, case: &Case) -> (Seen, bool) {
    if !case.setup.is_empty() {
        c.batch_execute(case.setup).await.unwrap();
    }
    let oids = oids(c).await;
    let stmts = script::statements(case.sql);
    if script::outside_transaction(case.sql) {
        let steps = statement_by_statement(c, url, &stmts, &oids).await;
        (seen(&steps, true), true)
    } else {
        let (steps, atomic) = in_transaction(c, &stmts, &oids).await;
        (seen(&steps, atomic), !case.setup.is_empty() || !atomic)
    }
}

/// What lint says of the case's file, told of the fixture and the case's setup: the rules
/// about locks and rewrites (`expand-breaks-app` is about the app version still serving, not
/// about what PostgreSQL does; tests/lint.rs covers it).
fn lint_rules(case: &Case) -> Vec<RuleId> {
    let schema = Schema::after([FIXTURE, case.setup]);
    lint::lint_with(case.sql, false, &schema)
        .into_iter()
        .map(|f| f.rule)
        .filter(|r| *r != RuleId::ExpandBreaksApp)
        .collect()
}

/// The problems with one case: lint's verdict, PostgreSQL's, and the rule's words.
fn problems(case: &Case, seen: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    let rules = lint_rules(case);
    if case.flagged != rules.contains(&case.rule) || (!case.flagged && !rules.is_empty()) {
        out.push(format!("lint says {rules:?}"));
    }
    let expected_also: Vec<(String, Mode)> = ["users", "ix_s_a"]
        .iter()
        .map(|n| {
            let mode = case.also.iter().find(|(a, _)| a == n).map(|a| a.1);
            (n.to_string(), mode.unwrap_or(seen_also(seen, n)))
        })
        .collect();
    let expected = Seen {
        error: case.error.map(str::to_string),
        lock: case.lock,
        scan_under: case.scan_under.unwrap_or(seen.scan_under),
        rewrite: case.rewrite,
        atomic: case.atomic,
        also: expected_also,
    };
    if *seen != expected {
        out.push(format!(
            "PostgreSQL did {seen:?}, the table says {expected:?}"
        ));
    }
    if !case.flagged {
        out.extend(unsafe_but_let_through(seen));
    } else {
        out.extend(why_disagrees(case));
    }
    out
}

fn seen_also(seen: &Seen, name: &str) -> Mode {
    seen.also
        .iter()
        .find(|(n, _)| n == name)
        .map_or(NONE, |a| a.1)
}

/// What a form lint lets through must not do: fail, rewrite or read every row under a lock
/// that blocks writes, or leave a change a rollback does not undo.
fn unsafe_but_let_through(seen: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    if seen.error.is_some() || !seen.atomic {
        out.push("not flagged, yet fails or is not atomic".to_string());
    }
    if seen.scan_under >= SHARE || (seen.rewrite != Rewrite::No && seen.lock >= SHARE) {
        out.push("not flagged, yet scans or rewrites under a lock that blocks writes".to_string());
    }
    out
}

/// Whether the rule's `why` names what PostgreSQL showed: the failure, the lost atomicity, or
/// the lock and the rewrite.
fn why_disagrees(case: &Case) -> Option<String> {
    let why = case.rule.why();
    let says = |words: &[&str]| words.iter().any(|w| why.contains(w));
    let ok = if case.error.is_some() {
        says(&["fail", "refuse"])
    } else if !case.atomic {
        says(&["commits"])
    } else {
        let lock = format!("{} lock", case.lock.words());
        let rewrite = match case.rewrite {
            Rewrite::No => true,
            Rewrite::Indexes => says(&["rebuild", "rewrit"]),
            Rewrite::Table => says(&["rewrit", "empties"]),
        };
        rewrite && says(&[&lock, &format!("{} locks", case.lock.words())])
    };
    (!ok).then(|| format!("its why does not say what PostgreSQL did: {why}"))
}

#[test]
fn each_rule_says_what_postgresql_does_and_what_lint_lets_through_is_safe() {
    let started = Instant::now();
    let c = cluster();
    let db = c.create_db();
    let url = c.url(&db);
    let mut report = Vec::new();
    let mut failures = Vec::new();
    runtime().block_on(async {
        let client = connect(&url).await;
        let mut dirty = true;
        for case in CASES {
            if dirty {
                reset(&client).await;
            }
            let (seen, changed) = replay(&client, &url, case).await;
            dirty = changed;
            let verdict = if case.flagged { "flagged" } else { "safe" };
            report.push(format!(
                "{:<30} {verdict:<7} {:?}\n    {}",
                case.rule.name(),
                seen,
                case.sql.replace('\n', " ")
            ));
            for p in problems(case, &seen) {
                failures.push(format!("{} `{}`: {p}", case.rule.name(), case.sql));
            }
        }
    });
    let version = c.psql("postgres", "SHOW server_version");
    println!(
        "PostgreSQL {version}, {:?}:\n{}",
        started.elapsed(),
        report.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
