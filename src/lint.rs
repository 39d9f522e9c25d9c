//! The migration linter's rules: a PostgreSQL migration, parsed with squawk's parser (a real
//! PostgreSQL grammar, comments kept), checked statement by statement for what blocks a busy
//! table or breaks the app instances still running during a deploy. Pure: text in, findings
//! out; `commands::lint` reads the files and prints.
//!
//! A rule fires only where it matters: anything done to a table created earlier in the same
//! file is done to an empty table nobody uses yet. A statement is silenced for one rule by a
//! comment right above it, `-- lint: allow RULE REASON`; the reason is required.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

/// A lint rule. Its name (what findings, `lint: allow` markers and `lint-accepted.txt` use)
/// comes from [`RuleId::name`] and is read back by [`str::parse`]; a rule is named in code by
/// its variant, so a misspelt rule is a compile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleId {
    /// `index-blocks-writes`: `CREATE INDEX` without CONCURRENTLY on an existing table.
    IndexBlocksWrites,
    /// `concurrently-in-transaction`: CONCURRENTLY in a migration that runs in a transaction.
    ConcurrentlyInTransaction,
    /// `not-null-column-without-default`: `ADD COLUMN ... NOT NULL` without a default.
    NotNullColumnWithoutDefault,
    /// `add-column-rewrites`: `ADD COLUMN` whose value every existing row needs computed.
    AddColumnRewrites,
    /// `column-type-rewrites`: `ALTER COLUMN ... TYPE`.
    ColumnTypeRewrites,
    /// `foreign-key-validates`: a foreign key added without NOT VALID.
    ForeignKeyValidates,
    /// `check-validates`: a CHECK constraint added without NOT VALID.
    CheckValidates,
    /// `set-not-null-scans`: `ALTER COLUMN ... SET NOT NULL`.
    SetNotNullScans,
    /// `unique-builds-index`: a UNIQUE or PRIMARY KEY constraint that builds its index.
    UniqueBuildsIndex,
    /// `rename-breaks-app`: renaming a column or table.
    RenameBreaksApp,
    /// `drop-breaks-app`: dropping a column or table.
    DropBreaksApp,
    /// `syntax`: a statement the parser cannot read.
    Syntax,
    /// `lint-marker`: a malformed `lint: allow` marker.
    LintMarker,
}

/// What a rule says: its name, why the statement hurts, and the safe form.
struct Meta {
    name: &'static str,
    why: &'static str,
    safe: &'static str,
}

impl RuleId {
    /// Every rule, in the order docs/migrations.md lists them.
    pub const ALL: [RuleId; 13] = [
        RuleId::IndexBlocksWrites,
        RuleId::ConcurrentlyInTransaction,
        RuleId::NotNullColumnWithoutDefault,
        RuleId::AddColumnRewrites,
        RuleId::ColumnTypeRewrites,
        RuleId::ForeignKeyValidates,
        RuleId::CheckValidates,
        RuleId::SetNotNullScans,
        RuleId::UniqueBuildsIndex,
        RuleId::RenameBreaksApp,
        RuleId::DropBreaksApp,
        RuleId::Syntax,
        RuleId::LintMarker,
    ];

    /// The name used in findings, `lint: allow` markers and `lint-accepted.txt`.
    pub fn name(self) -> &'static str {
        self.meta().name
    }

    /// Why the statement hurts a live database; `{table}` stands for the table's name (see
    /// [`Finding::why`]).
    pub fn why(self) -> &'static str {
        self.meta().why
    }

    /// The safe form.
    pub fn safe(self) -> &'static str {
        self.meta().safe
    }

    /// The rule's name, reason and safe form, each rule's in one place.
    fn meta(self) -> Meta {
        match self {
            RuleId::IndexBlocksWrites => Meta {
                name: "index-blocks-writes",
                why: "builds the index under a SHARE lock on {table}: every INSERT, UPDATE and \
                      DELETE waits until the whole build ends",
                safe: "CREATE INDEX CONCURRENTLY, alone in a migration whose first line is \
                       `-- no-transaction` (its undo: DROP INDEX CONCURRENTLY, marked the same \
                       way)",
            },
            RuleId::ConcurrentlyInTransaction => Meta {
                name: "concurrently-in-transaction",
                why: "PostgreSQL refuses CONCURRENTLY inside a transaction block, and a migration \
                      runs in one unless its first line says otherwise",
                safe: "make `-- no-transaction` the file's first line: its statements then run \
                       one at a time, the history row recorded after the last",
            },
            RuleId::NotNullColumnWithoutDefault => Meta {
                name: "not-null-column-without-default",
                why: "fails as soon as {table} has a row: the existing rows would hold NULL in it",
                safe: "give the column a DEFAULT (a constant default does not rewrite the table \
                       since PostgreSQL 11), or add it nullable, backfill it, then make it NOT \
                       NULL as `set-not-null-scans` says",
            },
            RuleId::AddColumnRewrites => Meta {
                name: "add-column-rewrites",
                why: "adds a column whose value every existing row needs computed (a volatile \
                      default, GENERATED ... STORED, an identity or serial column): {table} is \
                      rewritten under an ACCESS EXCLUSIVE lock, and reads and writes wait",
                safe: "add the column without that default, fill it in batches, then set the \
                       default for new rows (SET DEFAULT does not rewrite)",
            },
            RuleId::ColumnTypeRewrites => Meta {
                name: "column-type-rewrites",
                why: "rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock: reads and \
                      writes wait for the whole rewrite (only a few changes, such as varchar(n) \
                      to a longer varchar or to text, skip it)",
                safe: "add a column of the new type, backfill it in batches, move the app to it, \
                       and drop the old column in a later migration",
            },
            RuleId::ForeignKeyValidates => Meta {
                name: "foreign-key-validates",
                why: "checks every row of {table} while holding SHARE ROW EXCLUSIVE locks on it \
                      and on the referenced table: writes to both wait for the scan",
                safe: "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... \
                       VALIDATE CONSTRAINT ... (it scans under a lock that lets writes through)",
            },
            RuleId::CheckValidates => Meta {
                name: "check-validates",
                why: "scans every row of {table} under an ACCESS EXCLUSIVE lock: reads and writes \
                      wait",
                safe: "ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE \
                       CONSTRAINT ...",
            },
            RuleId::SetNotNullScans => Meta {
                name: "set-not-null-scans",
                why: "scans every row of {table} under an ACCESS EXCLUSIVE lock: reads and writes \
                      wait",
                safe: "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; \
                       then SET NOT NULL (PostgreSQL 12 and later skip the scan given that check) \
                       and DROP CONSTRAINT c",
            },
            RuleId::UniqueBuildsIndex => Meta {
                name: "unique-builds-index",
                why: "builds the constraint's index under an ACCESS EXCLUSIVE lock on {table}: \
                      reads and writes wait for the whole build",
                safe: "CREATE UNIQUE INDEX CONCURRENTLY (in a `-- no-transaction` migration), \
                       then ADD CONSTRAINT ... UNIQUE USING INDEX ...",
            },
            RuleId::RenameBreaksApp => Meta {
                name: "rename-breaks-app",
                why: "the app instances still running during the deploy use the old name of \
                      {table}'s column or table and fail until they are replaced",
                safe: "expand and contract: add the new column (or a view under the old name), \
                       write both, backfill, move reads, and drop the old one in a later release",
            },
            RuleId::DropBreaksApp => Meta {
                name: "drop-breaks-app",
                why: "the app instances still running during the deploy read {table}'s column or \
                      table and fail, and its data is gone",
                safe: "stop using it in the app in one release, and drop it in a later migration",
            },
            RuleId::Syntax => Meta {
                name: "syntax",
                why: "the parser cannot read this statement: PostgreSQL would refuse it, or the \
                      linter cannot check it",
                safe: "fix the statement (see the parser's message)",
            },
            RuleId::LintMarker => Meta {
                name: "lint-marker",
                why: "a `lint: allow` marker must name a rule and give a reason",
                safe: "-- lint: allow RULE REASON, right above the statement",
            },
        }
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule name no rule has (the unknown name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule(pub String);

impl std::fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no rule is called '{}'", self.0)
    }
}

impl std::error::Error for UnknownRule {}

impl std::str::FromStr for RuleId {
    type Err = UnknownRule;

    /// The rule called `name` (exactly as [`RuleId::name`] spells it).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| UnknownRule(name.to_string()))
    }
}

/// One thing a rule found.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule that fired.
    pub rule: RuleId,
    /// 1-based line of the statement.
    pub line: usize,
    /// The statement's first line (or the parser's message, for `syntax`).
    pub statement: String,
    /// The table it touches, where there is one.
    pub table: String,
    /// The reason of a `lint: allow` marker that silences it.
    pub allowed: Option<String>,
}

impl Finding {
    /// The rule's reason, with the table filled in.
    pub fn why(&self) -> String {
        let table = if self.table.is_empty() {
            "the table"
        } else {
            &self.table
        };
        self.rule.why().replace("{table}", table)
    }
}

/// Whether a file is an undo script (`.down.sql`): dropping and renaming back is its job.
pub fn is_undo(file_name: &str) -> bool {
    file_name.ends_with(".down.sql")
}

/// Lints one PostgreSQL migration. `undo`: the file is a `.down.sql`.
pub fn lint(text: &str, undo: bool) -> Vec<Finding> {
    let parse = SourceFile::parse(text);
    let mut out = Vec::new();
    for e in parse.errors() {
        let at = u32::from(e.range().start()) as usize;
        out.push(Finding {
            rule: RuleId::Syntax,
            line: line_of(text, at),
            statement: e.message().to_string(),
            table: String::new(),
            allowed: None,
        });
    }
    let outside_transaction = crate::script::outside_transaction(text);
    let mut created: Vec<String> = Vec::new();
    for stmt in parse.tree().stmts() {
        let node = stmt.syntax();
        let start = u32::from(node.text_range().start()) as usize;
        let mut hits: Vec<(RuleId, String)> = Vec::new();
        check(&stmt, &created, outside_transaction, undo, &mut hits);
        if let ast::Stmt::CreateTable(ct) = &stmt {
            created.push(table_key(&name_text(ct.table_name())));
        }
        if hits.is_empty() {
            continue;
        }
        let markers = allow_markers(node);
        let line = line_of(text, start);
        let statement = first_line(&node.text().to_string());
        for marker in &markers {
            if let Err(problem) = marker {
                out.push(Finding {
                    rule: RuleId::LintMarker,
                    line,
                    statement: problem.clone(),
                    table: String::new(),
                    allowed: None,
                });
            }
        }
        for (rule, table) in hits {
            let allowed = markers.iter().find_map(|m| match m {
                Ok((r, reason)) if *r == rule => Some(reason.clone()),
                _ => None,
            });
            out.push(Finding {
                rule,
                line,
                statement: statement.clone(),
                table,
                allowed,
            });
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// The rules `stmt` breaks, as (rule, table).
fn check(
    stmt: &ast::Stmt,
    created: &[String],
    outside_transaction: bool,
    undo: bool,
    hits: &mut Vec<(RuleId, String)>,
) {
    let existing = |table: &str| !created.contains(&table_key(table));
    match stmt {
        ast::Stmt::CreateIndex(ci) => {
            let table = name_text(ci.table_relation_name());
            if ci.concurrently_token().is_some() {
                if !outside_transaction {
                    hits.push((RuleId::ConcurrentlyInTransaction, table));
                }
            } else if existing(&table) {
                hits.push((RuleId::IndexBlocksWrites, table));
            }
        }
        ast::Stmt::DropIndex(di) if di.concurrently_token().is_some() && !outside_transaction => {
            hits.push((RuleId::ConcurrentlyInTransaction, String::new()));
        }
        ast::Stmt::DropTable(dt) if !undo => {
            for t in dt.table_name_refs() {
                let table = t.syntax().text().to_string().trim().to_string();
                if existing(&table) {
                    hits.push((RuleId::DropBreaksApp, table));
                }
            }
        }
        ast::Stmt::AlterTable(at) => {
            let table = name_text(at.table_relation_name());
            if !existing(&table) {
                return;
            }
            for action in at.actions() {
                alter_action(&action, &table, undo, hits);
            }
        }
        _ => {}
    }
}

/// The rules one `ALTER TABLE` action on an existing table breaks.
fn alter_action(
    action: &ast::AlterTableAction,
    table: &str,
    undo: bool,
    hits: &mut Vec<(RuleId, String)>,
) {
    let mut hit = |rule: RuleId| hits.push((rule, table.to_string()));
    match action {
        ast::AlterTableAction::AddColumn(ac) => {
            let constraints: Vec<ast::Constraint> = ac.constraints().collect();
            let has = |f: fn(&ast::Constraint) -> bool| constraints.iter().any(f);
            let default = constraints.iter().find_map(|c| match c {
                ast::Constraint::DefaultConstraint(d) => Some(d.syntax().text().to_string()),
                _ => None,
            });
            let null_default = default.as_deref().is_some_and(|d| {
                d.to_ascii_lowercase()
                    .split_whitespace()
                    .eq(["default", "null"])
            });
            if has(|c| matches!(c, ast::Constraint::NotNullConstraint(_)))
                && (default.is_none() || null_default)
                && !has(|c| matches!(c, ast::Constraint::GeneratedConstraint(_)))
            {
                hit(RuleId::NotNullColumnWithoutDefault);
            }
            let ty = ac
                .ty()
                .map(|t| t.syntax().text().to_string().to_ascii_lowercase())
                .unwrap_or_default();
            if has(|c| matches!(c, ast::Constraint::GeneratedConstraint(_)))
                || [
                    "serial",
                    "bigserial",
                    "smallserial",
                    "serial4",
                    "serial8",
                    "serial2",
                ]
                .contains(&ty.trim())
                || default.as_deref().is_some_and(volatile)
            {
                hit(RuleId::AddColumnRewrites);
            }
            if has(|c| matches!(c, ast::Constraint::ReferencesConstraint(_)) && !c.is_not_valid()) {
                hit(RuleId::ForeignKeyValidates);
            }
            if has(|c| {
                matches!(
                    c,
                    ast::Constraint::UniqueConstraint(_) | ast::Constraint::PrimaryKeyConstraint(_)
                )
            }) {
                hit(RuleId::UniqueBuildsIndex);
            }
            if has(|c| matches!(c, ast::Constraint::CheckConstraint(_)) && !c.is_not_valid()) {
                hit(RuleId::CheckValidates);
            }
        }
        ast::AlterTableAction::AddConstraint(ac) => match ac.constraint() {
            Some(c @ ast::Constraint::ForeignKeyConstraint(_)) if !c.is_not_valid() => {
                hit(RuleId::ForeignKeyValidates)
            }
            Some(c @ ast::Constraint::CheckConstraint(_)) if !c.is_not_valid() => {
                hit(RuleId::CheckValidates)
            }
            Some(ast::Constraint::UniqueConstraint(u)) if u.using_index().is_none() => {
                hit(RuleId::UniqueBuildsIndex)
            }
            Some(ast::Constraint::PrimaryKeyConstraint(p)) if p.using_index().is_none() => {
                hit(RuleId::UniqueBuildsIndex)
            }
            _ => {}
        },
        ast::AlterTableAction::AlterColumn(alc) => match alc.option() {
            Some(ast::AlterColumnOption::SetType(_)) => hit(RuleId::ColumnTypeRewrites),
            Some(ast::AlterColumnOption::SetNotNull(_)) => hit(RuleId::SetNotNullScans),
            _ => {}
        },
        ast::AlterTableAction::RenameColumn(_) | ast::AlterTableAction::TableRenameTo(_)
            if !undo =>
        {
            hit(RuleId::RenameBreaksApp)
        }
        ast::AlterTableAction::DropColumn(_) if !undo => hit(RuleId::DropBreaksApp),
        _ => {}
    }
}

/// Whether a DEFAULT clause calls a volatile function, which PostgreSQL evaluates for every
/// existing row (rewriting the table) instead of storing one value.
fn volatile(default: &str) -> bool {
    let d = default.to_ascii_lowercase();
    [
        "random(",
        "gen_random_uuid(",
        "uuid_generate_v",
        "clock_timestamp(",
        "timeofday(",
        "nextval(",
        "txid_current(",
    ]
    .iter()
    .any(|f| d.contains(f))
}

/// The `lint: allow RULE REASON` markers in the comments right above a statement: Ok((rule,
/// reason)), or Err(what is wrong with the marker).
fn allow_markers(stmt: &SyntaxNode) -> Vec<Result<(RuleId, String), String>> {
    // The comments and white space between the previous statement (or the file's start) and
    // this one, in order.
    let mut run = Vec::new();
    let mut after_statement = false;
    let mut cur = stmt.prev_sibling_or_token();
    while let Some(el) = cur {
        match el.kind() {
            SyntaxKind::COMMENT | SyntaxKind::WHITESPACE => run.push(el.to_string()),
            _ => {
                after_statement = true;
                break;
            }
        }
        cur = el.prev_sibling_or_token();
    }
    run.reverse();
    let is_comment = |t: &str| t.starts_with("--") || t.starts_with("/*");
    let mut start = 0;
    if after_statement {
        // A comment on the previous statement's own line is that statement's.
        let mut i = 0;
        if run
            .first()
            .is_some_and(|t| !is_comment(t) && !t.contains('\n'))
        {
            i = 1;
        }
        if run.get(i).is_some_and(|t| is_comment(t)) {
            start = i + 1;
        }
    }
    // A blank line ends the block of comments that belongs to the statement.
    for (i, t) in run.iter().enumerate().skip(start) {
        if !is_comment(t) && t.matches('\n').count() > 1 {
            start = i + 1;
        }
    }
    run.iter()
        .skip(start)
        .filter(|t| is_comment(t))
        .filter_map(|t| parse_marker(t))
        .collect()
}

/// `-- lint: allow RULE REASON` → Some(Ok((RULE, REASON))); another comment → None.
fn parse_marker(comment: &str) -> Option<Result<(RuleId, String), String>> {
    let body = comment
        .strip_prefix("--")
        .or_else(|| {
            comment
                .strip_prefix("/*")
                .and_then(|c| c.strip_suffix("*/"))
        })?
        .trim();
    let rest = body.strip_prefix("lint:")?.trim();
    let Some(rest) = rest.strip_prefix("allow") else {
        return Some(Err(format!(
            "`{body}`: the marker is `lint: allow RULE REASON`"
        )));
    };
    let mut parts = rest.trim().splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default().trim();
    let rule = match name.parse::<RuleId>() {
        Ok(rule) => rule,
        Err(unknown) => {
            let names: Vec<&str> = RuleId::ALL.iter().map(|r| r.name()).collect();
            return Some(Err(format!(
                "`{body}`: {unknown} (rules: {})",
                names.join(", ")
            )));
        }
    };
    if reason.is_empty() {
        return Some(Err(format!(
            "`{body}`: say why the statement is safe here, after the rule's name"
        )));
    }
    Some(Ok((rule, reason.to_string())))
}

/// The text of a name node, trimmed.
fn name_text<N: AstNode>(n: Option<N>) -> String {
    n.map(|n| n.syntax().text().to_string().trim().to_string())
        .unwrap_or_default()
}

/// A table name as PostgreSQL resolves it: unquoted parts fold to lower case, quoted ones
/// keep theirs, and `public.` is the default schema.
fn table_key(name: &str) -> String {
    // `ALTER TABLE ONLY t`, `ON ONLY t`: the table is t.
    let name = name.trim();
    let name = match name.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("only ") => name[5..].trim_start(),
        _ => name,
    };
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if quoted => cur.push(c),
            c if c.is_whitespace() => {}
            c => cur.extend(c.to_lowercase()),
        }
    }
    parts.push(cur);
    if parts.len() == 2 && parts[0] == "public" {
        parts.remove(0);
    }
    parts.join(".")
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// A statement's first line, shortened for a report.
fn first_line(statement: &str) -> String {
    let line = statement.lines().next().unwrap_or_default().trim();
    if line.chars().count() > 100 {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rule, line, table, allowed) of each finding.
    fn found(sql: &str, undo: bool) -> Vec<(&'static str, usize, String, bool)> {
        lint(sql, undo)
            .into_iter()
            .map(|f| (f.rule.name(), f.line, f.table, f.allowed.is_some()))
            .collect()
    }

    fn rules(sql: &str) -> Vec<&'static str> {
        lint(sql, false)
            .into_iter()
            .map(|f| f.rule.name())
            .collect()
    }

    #[test]
    fn each_rule_fires_on_its_blocking_form_and_not_on_the_safe_one() {
        let table: &[(&str, &[&str])] = &[
            ("CREATE INDEX ix ON poses (name);", &["index-blocks-writes"]),
            (
                "CREATE UNIQUE INDEX ix ON public.poses (name);",
                &["index-blocks-writes"],
            ),
            (
                "-- no-transaction\nCREATE INDEX CONCURRENTLY ix ON poses (name);",
                &[],
            ),
            (
                "CREATE INDEX CONCURRENTLY ix ON poses (name);",
                &["concurrently-in-transaction"],
            ),
            (
                "DROP INDEX CONCURRENTLY ix;",
                &["concurrently-in-transaction"],
            ),
            ("DROP INDEX ix;", &[]),
            (
                "ALTER TABLE poses ADD COLUMN tag text NOT NULL;",
                &["not-null-column-without-default"],
            ),
            (
                "ALTER TABLE poses ADD COLUMN tag text NOT NULL DEFAULT '';",
                &[],
            ),
            ("ALTER TABLE poses ADD COLUMN tag text;", &[]),
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE text;",
                &["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER name SET DATA TYPE varchar(9);",
                &["column-type-rewrites"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id);",
                &["foreign-key-validates"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id) NOT VALID;",
                &[],
            ),
            ("ALTER TABLE s VALIDATE CONSTRAINT fk;", &[]),
            (
                "ALTER TABLE s ADD COLUMN u int REFERENCES users (id);",
                &["foreign-key-validates"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a > 0);",
                &["check-validates"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
                &[],
            ),
            (
                "ALTER TABLE s ALTER COLUMN a SET NOT NULL;",
                &["set-not-null-scans"],
            ),
            ("ALTER TABLE s ALTER COLUMN a DROP NOT NULL;", &[]),
            (
                "ALTER TABLE s ADD CONSTRAINT u UNIQUE (a);",
                &["unique-builds-index"],
            ),
            ("ALTER TABLE s ADD CONSTRAINT u UNIQUE USING INDEX ix;", &[]),
            (
                "ALTER TABLE s ADD COLUMN b int UNIQUE;",
                &["unique-builds-index"],
            ),
            (
                "ALTER TABLE s RENAME COLUMN a TO b;",
                &["rename-breaks-app"],
            ),
            ("ALTER TABLE s RENAME TO t;", &["rename-breaks-app"]),
            ("ALTER TABLE s DROP COLUMN a;", &["drop-breaks-app"]),
            ("DROP TABLE s;", &["drop-breaks-app"]),
            ("ALTER TABLE s ADD COLUMN a int DEFAULT 0;", &[]),
            ("SELECT 1;", &[]),
            (
                "ALTER TABLE s ADD COLUMN u uuid DEFAULT gen_random_uuid();",
                &["add-column-rewrites"],
            ),
            (
                "ALTER TABLE s ADD COLUMN n bigserial;",
                &["add-column-rewrites"],
            ),
            (
                "ALTER TABLE s ADD COLUMN t int GENERATED ALWAYS AS (a * 2) STORED;",
                &["add-column-rewrites"],
            ),
            ("ALTER TABLE s ADD COLUMN t timestamptz DEFAULT now();", &[]),
            (
                "ALTER TABLE s ADD COLUMN t int NOT NULL DEFAULT NULL;",
                &["not-null-column-without-default"],
            ),
            (
                "ALTER TABLE ONLY s ALTER COLUMN a SET NOT NULL;",
                &["set-not-null-scans"],
            ),
        ];
        for (sql, want) in table {
            assert_eq!(rules(sql), *want, "{sql}");
        }
    }

    #[test]
    fn what_is_done_to_a_table_made_in_the_same_file_is_fine() {
        let sql = "CREATE TABLE tags (id int, name text);\n\
                   CREATE INDEX ix_tags ON tags (name);\n\
                   ALTER TABLE Tags ADD COLUMN n int NOT NULL;\n\
                   ALTER TABLE public.tags ADD CONSTRAINT c CHECK (n > 0);\n\
                   CREATE INDEX ix_poses ON poses (name);\n\
                   CREATE INDEX ix_q ON \"Tags\" (name);\n";
        assert_eq!(
            found(sql, false),
            vec![
                ("index-blocks-writes", 5, "poses".to_string(), false),
                // A quoted name keeps its case: "Tags" is not tags.
                ("index-blocks-writes", 6, "\"Tags\"".to_string(), false),
            ]
        );
    }

    #[test]
    fn undo_scripts_may_drop_and_rename() {
        let sql = "DROP TABLE tags;\nALTER TABLE poses DROP COLUMN tag;\n\
                   ALTER TABLE poses RENAME COLUMN b TO a;\nCREATE INDEX ix ON poses (a);\n";
        assert_eq!(
            found(sql, true),
            vec![("index-blocks-writes", 4, "poses".to_string(), false)]
        );
    }

    #[test]
    fn a_marker_right_above_silences_one_rule_with_a_reason() {
        let sql = "CREATE TABLE t (a int);\n\
                   -- lint: allow index-blocks-writes poses holds 300 rows\n\
                   CREATE INDEX ix ON poses (name);\n\
                   CREATE INDEX ix2 ON poses (name); -- lint: allow index-blocks-writes not mine\n\
                   CREATE INDEX ix3 ON poses (name);\n\
                   -- lint: allow index-blocks-writes\n\
                   CREATE INDEX ix4 ON poses (name);\n\
                   -- lint: allow no-such-rule because\n\
                   CREATE INDEX ix5 ON poses (name);\n\
                   -- lint: allow index-blocks-writes far above\n\
                   \n\
                   CREATE INDEX ix6 ON poses (name);\n";
        let got = lint(sql, false);
        let summary: Vec<(&str, usize, bool)> = got
            .iter()
            .map(|f| (f.rule.name(), f.line, f.allowed.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("index-blocks-writes", 3, true),
                ("index-blocks-writes", 4, false),
                // The comment after ix2 on its own line is ix2's, not ix3's.
                ("index-blocks-writes", 5, false),
                ("lint-marker", 7, false),
                ("index-blocks-writes", 7, false),
                ("lint-marker", 9, false),
                ("index-blocks-writes", 9, false),
                // A blank line between marker and statement: not its marker.
                ("index-blocks-writes", 12, false),
            ]
        );
        assert_eq!(got[0].allowed.as_deref(), Some("poses holds 300 rows"));
        assert!(got[3].statement.contains("say why"), "{}", got[3].statement);
        assert!(
            got[5].statement.contains("no-such-rule"),
            "{}",
            got[5].statement
        );
    }

    #[test]
    fn a_syntax_error_is_a_finding_with_its_line() {
        let got = lint(
            "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN;\n",
            false,
        );
        assert!(
            got.iter().any(|f| f.rule == RuleId::Syntax && f.line == 2),
            "{got:?}"
        );
    }

    #[test]
    fn findings_name_the_statement_and_explain_with_the_table() {
        let got = lint("\n\nCREATE INDEX ix_poses_name ON poses (name);\n", false);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, 3);
        assert_eq!(
            got[0].statement,
            "CREATE INDEX ix_poses_name ON poses (name);"
        );
        assert!(
            got[0].why().contains("SHARE lock on poses"),
            "{}",
            got[0].why()
        );
    }

    #[test]
    fn every_rule_is_listed_once_in_order_and_read_back_by_its_name() {
        // ALL holds every variant, in declaration order.
        assert_eq!(RuleId::ALL.len(), RuleId::LintMarker as usize + 1);
        for (i, r) in RuleId::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{r}");
            assert_eq!(r.name().parse::<RuleId>(), Ok(r));
            assert_eq!(r.to_string(), r.name());
        }
        assert_eq!(
            RuleId::ALL.map(RuleId::name),
            [
                "index-blocks-writes",
                "concurrently-in-transaction",
                "not-null-column-without-default",
                "add-column-rewrites",
                "column-type-rewrites",
                "foreign-key-validates",
                "check-validates",
                "set-not-null-scans",
                "unique-builds-index",
                "rename-breaks-app",
                "drop-breaks-app",
                "syntax",
                "lint-marker",
            ]
        );
        assert_eq!(
            "Syntax".parse::<RuleId>(),
            Err(UnknownRule("Syntax".to_string()))
        );
    }

    #[test]
    fn table_names_resolve_as_postgresql_does() {
        for (a, b) in [
            ("poses", "poses"),
            ("Poses", "poses"),
            ("public.poses", "poses"),
            ("\"Poses\"", "Poses"),
            ("app.poses", "app.poses"),
            ("ONLY poses", "poses"),
            ("\"a\"\"b\"", "a\"b"),
        ] {
            assert_eq!(table_key(a), b, "{a}");
        }
    }
}
