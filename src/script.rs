//! A migration script as text: the markers that run it outside a transaction and make it a
//! contract step, its statements
//! one by one (split on the tokens of squawk's PostgreSQL lexer, a port of PostgreSQL's own:
//! quotes, quoted identifiers, comments and dollar quoting respected), and, read from squawk's
//! parse tree, the CONCURRENTLY keyword that keeps a statement out of a transaction block and
//! the indexes a script builds concurrently. Pure.

use squawk_lexer::TokenKind;
use squawk_syntax::ast;
use squawk_syntax::{SourceFile, SyntaxToken};

/// The first line that makes a script run outside a transaction, statement by statement (the
/// spelling sqlx uses): for `CREATE INDEX CONCURRENTLY` and the like, which refuse to run in
/// one.
pub const NO_TRANSACTION: &str = "-- no-transaction";

/// The line, among a script's opening comments, that makes it a contract step: one that would
/// break the app version still serving during a deploy (a rename, a drop, a tightened rule),
/// applied by `complete` once that version is gone, not by `up`. A script without it is an
/// expand step.
pub const CONTRACT: &str = "-- phase: contract";

/// Whether `sql` is a contract step: [`CONTRACT`] (alone, or followed by a space and a
/// reason) among the comment lines it opens with.
pub fn is_contract(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .take_while(|l| l.is_empty() || l.starts_with("--"))
        .any(|l| l == CONTRACT || l.starts_with(&format!("{CONTRACT} ")))
}

/// Whether `sql` opens with [`NO_TRANSACTION`].
pub fn outside_transaction(sql: &str) -> bool {
    sql.lines()
        .next()
        .is_some_and(|l| l.trim() == NO_TRANSACTION)
}

/// The statements of `sql`, in order, without their `;` (empty ones and bare comments left out).
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut start, mut at) = (0, 0);
    let mut code = false; // whether the current statement has anything but comments
    for token in squawk_lexer::tokenize(sql) {
        let end = at + token.len as usize;
        match token.kind {
            TokenKind::Semi => {
                if code {
                    out.push(sql[start..at].trim().to_string());
                }
                start = end;
                code = false;
            }
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. } => {}
            _ => code = true,
        }
        at = end;
    }
    if code {
        out.push(sql[start..].trim().to_string());
    }
    out
}

/// The first statement of `statement` as squawk's parser reads it (comments before it skipped).
fn parsed(statement: &str) -> Option<ast::Stmt> {
    SourceFile::parse(statement).tree().stmts().next()
}

/// The CONCURRENTLY keyword that makes `stmt` refuse a transaction block: that of `CREATE
/// [UNIQUE] INDEX`, `DROP INDEX` or `REINDEX`'s target (REINDEX's option list left alone).
fn concurrently(stmt: &ast::Stmt) -> Option<SyntaxToken> {
    match stmt {
        ast::Stmt::CreateIndex(ci) => ci.concurrently_token(),
        ast::Stmt::DropIndex(di) => di.concurrently_token(),
        ast::Stmt::Reindex(r) => match r.reindex_target()? {
            ast::ReindexTarget::ReindexTargetIndex(t) => t.concurrently_token(),
            ast::ReindexTarget::ReindexTargetTable(t) => t.concurrently_token(),
            ast::ReindexTarget::ReindexTargetSchema(t) => t.concurrently_token(),
            ast::ReindexTarget::ReindexTargetDatabase(t) => t.concurrently_token(),
            ast::ReindexTarget::ReindexTargetSystem(t) => t.concurrently_token(),
        },
        _ => None,
    }
}

/// `sql` in a form that runs inside a transaction: a `-- no-transaction` script with
/// CONCURRENTLY taken out of its `CREATE [UNIQUE] INDEX`, `DROP INDEX` and `REINDEX`
/// statements. The schema it makes is the same; only the lock differs, which the scratch
/// schema `expected_schema` builds in (empty tables nobody else uses) does not mind.
pub fn in_transaction(sql: &str) -> std::borrow::Cow<'_, str> {
    if !outside_transaction(sql) {
        return sql.into();
    }
    let mut out = String::new();
    for statement in statements(sql) {
        match parsed(&statement).as_ref().and_then(concurrently) {
            Some(keyword) => {
                let range = keyword.text_range();
                out.push_str(&statement[..usize::from(range.start())]);
                out.push_str(&statement[usize::from(range.end())..]);
            }
            None => out.push_str(&statement),
        }
        out.push_str(";\n");
    }
    out.into()
}

/// The comment right above an `UPDATE` in a `-- no-transaction` script that makes `up` run it
/// in batches ([`Backfill`]), each batch its own transaction under the lock timeout, with
/// progress, resumed where it stopped after an interruption. Any other tool runs the UPDATE
/// whole, with the same result.
pub const BACKFILL: &str = "-- backfill: in batches, each its own transaction";

/// An `UPDATE table SET ... WHERE cond` run in batches: `cond` must be false for a row once
/// the update has been made to it (so the work left is always what `cond` still finds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// The table, as written.
    pub table: String,
    /// What follows SET.
    pub set: String,
    /// What follows WHERE.
    pub cond: String,
}

impl Backfill {
    /// The rows left.
    pub fn count_sql(&self) -> String {
        format!(
            "SELECT count(*) FROM {} WHERE ({}\n)",
            self.table, self.cond
        )
    }

    /// One batch of at most `n` rows (found by their physical address: no key needed).
    pub fn batch_sql(&self, n: u32) -> String {
        format!(
            "UPDATE {t} SET {} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE ({}\n) LIMIT {n}))",
            self.set,
            self.cond,
            t = self.table
        )
    }
}

/// `statement` as a [`Backfill`], if [`BACKFILL`] is the comment right above it.
pub fn backfill(statement: &str) -> Option<Backfill> {
    let mut lines = statement.trim_start().lines();
    let marked = lines
        .by_ref()
        .map(str::trim)
        .find(|l| (!l.is_empty() && !l.starts_with("--")) || *l == BACKFILL);
    if marked != Some(BACKFILL) {
        return None;
    }
    let body: String = lines.collect::<Vec<_>>().join("\n");
    let body = body.trim().trim_end_matches(';');
    let upper = body.to_ascii_uppercase();
    let rest = upper.strip_prefix("UPDATE ")?;
    let set_at = rest.find(" SET ")? + "UPDATE ".len();
    let where_at = upper.rfind(" WHERE ")?;
    (where_at > set_at).then(|| Backfill {
        table: body["UPDATE ".len()..set_at].trim().to_string(),
        set: body[set_at + " SET ".len()..where_at].trim().to_string(),
        cond: body[where_at + " WHERE ".len()..].trim().to_string(),
    })
}

/// Whether a statement refuses to run inside a transaction block (CONCURRENTLY, VACUUM):
/// only those need a script's statements run outside one.
pub fn refuses_transaction(statement: &str) -> bool {
    // Line comments aside (a script's header may name CONCURRENTLY); a string saying it
    // counts: the refusal is the safe mistake.
    let code: String = statement
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let concurrently = code
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w.eq_ignore_ascii_case("CONCURRENTLY"));
    concurrently || code_start(statement).is_some_and(|w| w == "VACUUM" || w == "CLUSTER")
}

/// The first word of a statement's code (comments skipped), upper-cased.
fn code_start(statement: &str) -> Option<String> {
    statement
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--"))?
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .map(str::to_ascii_uppercase)
}

/// The name of the index `statement` builds concurrently (`CREATE [UNIQUE] INDEX
/// CONCURRENTLY [IF NOT EXISTS] name`), unquoted and lower-cased as PostgreSQL stores it.
pub fn concurrent_index(statement: &str) -> Option<String> {
    let Some(ast::Stmt::CreateIndex(ci)) = parsed(statement) else {
        return None;
    };
    ci.concurrently_token()?;
    let path = ci.index()?.path()?;
    // PostgreSQL refuses a schema-qualified index name here: the statement fails anyway.
    if path.qualifier().is_some() {
        return None;
    }
    let segment = path.segment()?;
    let name = segment.text();
    // A quoted name with white space is not read, as before the parse tree read names (its
    // clean-up is skipped).
    if name.is_empty() || (segment.is_quoted() && name.contains(char::is_whitespace)) {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_update_is_a_backfill_in_batches() {
        let sql = format!(
            "{BACKFILL}\nUPDATE users SET b = coalesce(b, a), a = coalesce(a, b) WHERE (a IS NULL) <> (b IS NULL)"
        );
        let b = backfill(&sql).unwrap();
        assert_eq!(b.table, "users");
        assert_eq!(b.set, "b = coalesce(b, a), a = coalesce(a, b)");
        assert_eq!(b.cond, "(a IS NULL) <> (b IS NULL)");
        assert_eq!(
            b.batch_sql(1000),
            "UPDATE users SET b = coalesce(b, a), a = coalesce(a, b) WHERE ctid = ANY(ARRAY(\
             SELECT ctid FROM users WHERE ((a IS NULL) <> (b IS NULL)\n) LIMIT 1000))"
        );
        assert!(backfill("UPDATE users SET b = a WHERE b IS NULL").is_none());
        assert!(backfill(&format!("{BACKFILL}\nDELETE FROM users WHERE a")).is_none());
        assert!(refuses_transaction(
            "-- x\nCREATE INDEX CONCURRENTLY ix ON t (a)"
        ));
        assert!(refuses_transaction("VACUUM FULL t"));
        assert!(!refuses_transaction(&sql));
        assert!(!refuses_transaction("ALTER TABLE t VALIDATE CONSTRAINT ck"));
        assert!(!refuses_transaction(
            "-- indexes built CONCURRENTLY\nALTER TABLE t VALIDATE CONSTRAINT ck"
        ));
    }

    #[test]
    fn a_contract_step_says_so_among_its_opening_comments() {
        assert!(is_contract(
            "-- phase: contract\nALTER TABLE t DROP COLUMN c;"
        ));
        assert!(is_contract(
            "-- no-transaction\n-- phase: contract (the old column)\nSELECT 1;"
        ));
        assert!(!is_contract("SELECT 1;\n-- phase: contract\n"));
        assert!(!is_contract("-- phase: contracted\nSELECT 1;"));
        assert!(!is_contract("-- phase: expand\nSELECT 1;"));
    }

    #[test]
    fn a_no_transaction_script_has_a_form_that_runs_in_a_transaction() {
        let table = [
            ("CREATE INDEX ix ON t (a);", "CREATE INDEX ix ON t (a);"),
            (
                "-- no-transaction\nCREATE INDEX CONCURRENTLY ix ON t (a);\ndrop index concurrently if exists iy;",
                "-- no-transaction\nCREATE INDEX  ix ON t (a);\ndrop index  if exists iy;\n",
            ),
            (
                "-- no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY concurrently_ix ON t (a);\nREINDEX INDEX CONCURRENTLY ix;\nSELECT 'concurrently'",
                "-- no-transaction\nCREATE UNIQUE INDEX  concurrently_ix ON t (a);\nREINDEX INDEX  ix;\nSELECT 'concurrently';\n",
            ),
            (
                "-- no-transaction\nCREATE TABLE concurrently (a int);\nREINDEX TABLE CONCURRENTLY t;\nCREATE INDEX /* c */ CONCURRENTLY ix ON t (a)",
                "-- no-transaction\nCREATE TABLE concurrently (a int);\nREINDEX TABLE  t;\nCREATE INDEX /* c */  ix ON t (a);\n",
            ),
        ];
        for (sql, want) in table {
            assert_eq!(in_transaction(sql), want, "{sql}");
        }
    }

    #[test]
    fn splits_like_postgres() {
        let sql = "-- no-transaction\n-- a comment; with a semicolon\nCREATE INDEX CONCURRENTLY ix_a ON t (a);\n\
                   INSERT INTO t VALUES ('a;b', \"c;d\");\n/* block; /* nested; */ */\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   SELECT $1;\n  ;\n";
        assert_eq!(
            statements(sql),
            vec![
                "-- no-transaction\n-- a comment; with a semicolon\nCREATE INDEX CONCURRENTLY ix_a ON t (a)",
                "INSERT INTO t VALUES ('a;b', \"c;d\")",
                "/* block; /* nested; */ */\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT $1",
            ]
        );
        assert!(outside_transaction(sql));
        assert!(!outside_transaction(
            "CREATE TABLE x (a int);\n-- no-transaction"
        ));
        assert_eq!(statements("-- only a comment\n"), Vec::<String>::new());
        // PostgreSQL's lexer: backslash escapes in E'' strings, `$` inside an identifier.
        assert_eq!(
            statements("SELECT E'a\\';b'; SELECT a$b$c FROM t;\n/* open; /* nested; */ still; */"),
            vec!["SELECT E'a\\';b'", "SELECT a$b$c FROM t"]
        );
    }

    #[test]
    fn finds_concurrent_indexes() {
        let cases = [
            ("CREATE INDEX CONCURRENTLY ix_a ON t (a)", Some("ix_a")),
            (
                "create unique index concurrently if not exists IX_B on t (b)",
                Some("ix_b"),
            ),
            ("CREATE INDEX CONCURRENTLY \"Ix C\" ON t (c)", None),
            ("CREATE INDEX CONCURRENTLY \"IxC\" ON t (c)", Some("IxC")),
            ("CREATE INDEX ix_d ON t (d)", None),
            ("CREATE INDEX CONCURRENTLY ON t (e)", None),
            (
                "-- no-transaction\n/* why */ CREATE INDEX CONCURRENTLY ix_f ON t (f)",
                Some("ix_f"),
            ),
            (
                "CREATE INDEX CONCURRENTLY \"a\"\"b\" ON t (g)",
                Some("a\"b"),
            ),
            (
                "CREATE INDEX /* c */ CONCURRENTLY ix_h ON t (h)",
                Some("ix_h"),
            ),
            ("DROP INDEX CONCURRENTLY ix_i", None),
            ("SELECT 'CREATE INDEX CONCURRENTLY ix_j ON t (j)'", None),
        ];
        for (sql, want) in cases {
            assert_eq!(concurrent_index(sql).as_deref(), want, "{sql}");
        }
    }
}
