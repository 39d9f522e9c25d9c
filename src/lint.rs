//! The migration linter's rules: a PostgreSQL migration, parsed with squawk's parser (a real
//! PostgreSQL grammar, comments kept), checked statement by statement for what blocks a busy
//! table or breaks the app instances still running during a deploy. Pure: text in, findings
//! out; `commands::lint` reads the files and prints.
//!
//! A rule fires only where it matters: anything done to a table created earlier in the same
//! file is done to an empty table nobody uses yet; and, told the schema the earlier migrations
//! leave ([`Schema`], `lint/schema.rs`), a change PostgreSQL makes in place (a `varchar`
//! widened) is not a rewrite. Whether a DEFAULT may be volatile is `lint/volatile.rs`'s. A statement is silenced for one rule by a
//! comment right above it, `-- lint: allow RULE REASON`; the reason is required.

mod rules;
mod schema;
mod volatile;

pub use rules::{RuleId, UnknownRule};
pub use schema::{normalize_type, widens, Schema};

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

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

/// Lints one PostgreSQL migration, knowing nothing of the migrations before it. `undo`: the
/// file is a `.down.sql`.
pub fn lint(text: &str, undo: bool) -> Vec<Finding> {
    lint_with(text, undo, &Schema::default())
}

/// Lints one PostgreSQL migration, told the schema the migrations before it leave
/// ([`Schema::after`] of the up files of lower versions; for an undo file, of its own version
/// too). `undo`: the file is a `.down.sql`.
pub fn lint_with(text: &str, undo: bool, schema: &Schema) -> Vec<Finding> {
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
    let mut walk = Walk {
        undo,
        contract: crate::script::is_contract(text),
        outside_transaction: crate::script::outside_transaction(text),
        created: Vec::new(),
        indexes: Vec::new(),
        not_valid: Vec::new(),
        schema: schema.clone(),
    };
    for stmt in parse.tree().stmts() {
        let mut hits: Vec<(RuleId, String)> = Vec::new();
        walk.check(&stmt, &mut hits);
        walk.observe(&stmt);
        if !hits.is_empty() {
            report(text, stmt.syntax(), hits, &mut out);
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// The findings of one statement, each silenced or not by the markers above it, with the
/// malformed markers themselves.
fn report(text: &str, node: &SyntaxNode, hits: Vec<(RuleId, String)>, out: &mut Vec<Finding>) {
    let start = u32::from(node.text_range().start()) as usize;
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

/// What the linter knows before each statement of one file.
struct Walk {
    /// The file is a `.down.sql`.
    undo: bool,
    /// The file is a contract step (`-- phase: contract`): what breaks the previous app
    /// version is its job, as dropping and renaming back is an undo's.
    contract: bool,
    /// The file runs outside a transaction (`-- no-transaction`), each statement on its own.
    outside_transaction: bool,
    /// Tables the file created before: empty, and nobody uses them yet.
    created: Vec<String>,
    /// Indexes the file created before.
    indexes: Vec<String>,
    /// Tables the file's transaction gave a constraint NOT VALID (and still holds locked).
    not_valid: Vec<String>,
    /// The schema as the statement meets it.
    schema: Schema,
}

impl Walk {
    /// Whether `table` existed before the file (not created by it).
    fn existing(&self, table: &str) -> bool {
        !self.created.contains(&table_key(table))
    }

    /// Takes in what a statement leaves for the ones after it.
    fn observe(&mut self, stmt: &ast::Stmt) {
        match stmt {
            ast::Stmt::CreateTable(ct) => {
                self.created.push(table_key(&name_text(ct.table_name())));
            }
            ast::Stmt::CreateIndex(ci) => self.indexes.push(table_key(&name_text(ci.index()))),
            // Outside a transaction each statement commits, releasing the ADD's lock.
            ast::Stmt::AlterTable(at)
                if !self.outside_transaction && at.actions().any(|a| adds_not_valid(&a)) =>
            {
                let table = table_key(&name_text(at.table_relation_name()));
                self.not_valid.push(table);
            }
            _ => {}
        }
        self.schema.apply(stmt);
    }

    /// The rules `stmt` breaks, as (rule, table).
    fn check(&self, stmt: &ast::Stmt, hits: &mut Vec<(RuleId, String)>) {
        if TRANSACTION_CONTROL.contains(&stmt.syntax().kind()) {
            hits.push((RuleId::TransactionControl, String::new()));
            return;
        }
        match stmt {
            ast::Stmt::CreateIndex(ci) => {
                let table = name_text(ci.table_relation_name());
                if ci.concurrently_token().is_some() {
                    if !self.outside_transaction {
                        hits.push((RuleId::ConcurrentlyInTransaction, table));
                    }
                } else if self.existing(&table) {
                    hits.push((RuleId::IndexBlocksWrites, table));
                }
            }
            ast::Stmt::DropIndex(di) => self.drop_index(di, hits),
            ast::Stmt::Reindex(r) => self.reindex(r, hits),
            ast::Stmt::Truncate(t) => {
                let tables = t
                    .table_list()
                    .into_iter()
                    .flat_map(|l| l.table_relation_names());
                self.on_existing(
                    tables.map(|n| name_text(n.table_name_ref())),
                    RuleId::Truncate,
                    hits,
                );
            }
            ast::Stmt::Vacuum(v) if vacuum_full(v) => {
                let tables = v
                    .table_and_columns_list()
                    .into_iter()
                    .flat_map(|l| l.table_and_columnss())
                    .map(|t| name_text(t.table_relation_name()));
                self.on_existing_or_all(tables.collect(), RuleId::TableRewrite, hits);
            }
            ast::Stmt::Cluster(c) => {
                let tables = c.table_name_ref().map(|t| t.syntax().text().to_string());
                self.on_existing_or_all(tables.into_iter().collect(), RuleId::TableRewrite, hits);
            }
            ast::Stmt::DropTable(dt) if self.breaking_checked() => {
                let tables = dt.table_name_refs().map(|t| t.syntax().text().to_string());
                self.on_existing(tables, RuleId::DropBreaksApp, hits);
            }
            ast::Stmt::AlterTable(at) => self.alter_table(at, hits),
            _ => {}
        }
    }

    /// `rule` for each of `tables` that existed before the file.
    fn on_existing(
        &self,
        tables: impl Iterator<Item = String>,
        rule: RuleId,
        hits: &mut Vec<(RuleId, String)>,
    ) {
        for table in tables {
            let table = table.trim().to_string();
            if self.existing(&table) {
                hits.push((rule, table));
            }
        }
    }

    /// `rule` for each of `tables` that existed before the file, or once when the statement
    /// names none (it then works on every table of the database).
    fn on_existing_or_all(
        &self,
        tables: Vec<String>,
        rule: RuleId,
        hits: &mut Vec<(RuleId, String)>,
    ) {
        if tables.is_empty() {
            hits.push((rule, String::new()));
        }
        self.on_existing(tables.into_iter(), rule, hits);
    }

    /// `DROP INDEX`: CONCURRENTLY needs the file outside a transaction; without it, the lock
    /// blocks the table. An undo file's plain drop is left alone: the undo runs only by an
    /// operator's `down`, never at deploy, and mostly drops what its up built the same way.
    fn drop_index(&self, di: &ast::DropIndex, hits: &mut Vec<(RuleId, String)>) {
        if di.concurrently_token().is_some() {
            if !self.outside_transaction {
                hits.push((RuleId::ConcurrentlyInTransaction, String::new()));
            }
            return;
        }
        if self.undo {
            return;
        }
        for index in di.index_refs() {
            let index = table_key(&index.syntax().text().to_string());
            if self.indexes.contains(&index) {
                continue;
            }
            let table = self.schema.index_table(&index).unwrap_or_default();
            if self.existing(table) || table.is_empty() {
                hits.push((RuleId::DropIndexBlocks, table.to_string()));
            }
        }
    }

    /// `REINDEX`: CONCURRENTLY needs the file outside a transaction; without it, the rebuild
    /// blocks the table (a table or index the file made is left alone).
    fn reindex(&self, r: &ast::Reindex, hits: &mut Vec<(RuleId, String)>) {
        let concurrently = reindex_concurrently(r);
        if concurrently {
            if !self.outside_transaction {
                hits.push((RuleId::ConcurrentlyInTransaction, String::new()));
            }
            return;
        }
        let table = match r.reindex_target() {
            Some(ast::ReindexTarget::ReindexTargetTable(t)) => name_text(t.table_name_ref()),
            Some(ast::ReindexTarget::ReindexTargetIndex(t)) => {
                let index = table_key(&name_text(t.index_ref()));
                if self.indexes.contains(&index) {
                    return;
                }
                self.schema
                    .index_table(&index)
                    .unwrap_or_default()
                    .to_string()
            }
            _ => String::new(),
        };
        if table.is_empty() || self.existing(&table) {
            hits.push((RuleId::ReindexBlocks, table));
        }
    }

    /// The rules an `ALTER TABLE` on an existing table breaks, action by action.
    fn alter_table(&self, at: &ast::AlterTable, hits: &mut Vec<(RuleId, String)>) {
        let table = name_text(at.table_relation_name());
        if !self.existing(&table) {
            return;
        }
        // One statement is one transaction, whatever the file's first line says.
        let mut not_valid = self.not_valid.contains(&table_key(&table));
        for action in at.actions() {
            if matches!(action, ast::AlterTableAction::ValidateConstraint(_)) && not_valid {
                hits.push((RuleId::ValidateInSameTransaction, table.clone()));
            }
            not_valid |= adds_not_valid(&action);
            self.alter_action(&action, &table, hits);
        }
    }

    /// The rules one `ALTER TABLE` action on an existing table breaks (but
    /// `validate-in-same-transaction`, which depends on the actions before it).
    fn alter_action(
        &self,
        action: &ast::AlterTableAction,
        table: &str,
        hits: &mut Vec<(RuleId, String)>,
    ) {
        let mut hit = |rule: RuleId| hits.push((rule, table.to_string()));
        match action {
            ast::AlterTableAction::AddColumn(ac) => add_column(ac, &mut hit),
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
            ast::AlterTableAction::AlterColumn(alc) => {
                let column = name_text(alc.column_name_ref());
                match alc.option() {
                    Some(ast::AlterColumnOption::SetType(st))
                        if !self.widens(table, &column, &st) =>
                    {
                        hit(RuleId::ColumnTypeRewrites)
                    }
                    Some(ast::AlterColumnOption::SetNotNull(_))
                        if !self.schema.not_null_checked(table, &column) =>
                    {
                        hit(RuleId::SetNotNullScans)
                    }
                    _ => {}
                }
            }
            ast::AlterTableAction::RenameColumn(_) | ast::AlterTableAction::TableRenameTo(_)
                if self.breaking_checked() =>
            {
                hit(RuleId::RenameBreaksApp)
            }
            ast::AlterTableAction::DropColumn(_) if self.breaking_checked() => {
                hit(RuleId::DropBreaksApp)
            }
            _ => {}
        }
        if self.breaking_checked() && self.tightens(action, table) {
            hit(RuleId::ExpandBreaksApp);
        }
    }

    /// Whether what breaks the previous app version is a finding here: not in an undo, not
    /// in a contract step.
    fn breaking_checked(&self) -> bool {
        !self.undo && !self.contract
    }

    /// Whether an action holds the previous app version to a rule it did not have: a new
    /// CHECK or foreign key, NOT NULL, another type (a widened string aside).
    fn tightens(&self, action: &ast::AlterTableAction, table: &str) -> bool {
        match action {
            ast::AlterTableAction::AddConstraint(ac) => matches!(
                ac.constraint(),
                Some(
                    ast::Constraint::CheckConstraint(_) | ast::Constraint::ForeignKeyConstraint(_)
                )
            ),
            ast::AlterTableAction::AlterColumn(alc) => {
                let column = name_text(alc.column_name_ref());
                match alc.option() {
                    Some(ast::AlterColumnOption::SetType(st)) => !self.widens(table, &column, &st),
                    Some(ast::AlterColumnOption::SetNotNull(_)) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Whether `SET TYPE` only widens a string column whose type the earlier migrations tell
    /// (see [`schema::widens`]); a USING or COLLATE clause may change values or their order,
    /// so it never does.
    fn widens(&self, table: &str, column: &str, st: &ast::SetType) -> bool {
        if st.using_expr().is_some() || st.collate().is_some() {
            return false;
        }
        let (Some(from), Some(to)) = (self.schema.column_type(table, column), st.ty()) else {
            return false;
        };
        schema::widens(from, &to.syntax().text().to_string())
    }
}

/// The statements that begin, end or split a transaction.
const TRANSACTION_CONTROL: &[SyntaxKind] = &[
    SyntaxKind::BEGIN,
    SyntaxKind::COMMIT_TRANSACTION,
    SyntaxKind::ROLLBACK_TRANSACTION,
    SyntaxKind::SAVEPOINT_CREATE,
    SyntaxKind::RELEASE_SAVEPOINT,
    SyntaxKind::ROLLBACK_TO_SAVEPOINT,
    SyntaxKind::PREPARE_TRANSACTION,
    SyntaxKind::COMMIT_PREPARED,
    SyntaxKind::ROLLBACK_PREPARED,
];

/// Whether an action adds a constraint NOT VALID (whose lock the transaction then holds).
fn adds_not_valid(action: &ast::AlterTableAction) -> bool {
    matches!(action, ast::AlterTableAction::AddConstraint(ac)
        if ac.constraint().is_some_and(|c| c.is_not_valid()))
}

/// Whether a VACUUM is FULL: `VACUUM FULL` or `VACUUM (FULL [true])`.
fn vacuum_full(v: &ast::Vacuum) -> bool {
    if v.full_token().is_some() {
        return true;
    }
    v.vacuum_option_list().is_some_and(|list| {
        list.vacuum_options().any(|o| {
            let name = name_text(o.vacuum_option_name()).to_ascii_lowercase();
            let value = name_text(o.vacuum_option_value()).to_ascii_lowercase();
            name == "full" && !["false", "off", "0"].contains(&value.as_str())
        })
    })
}

/// Whether a REINDEX is concurrent: `REINDEX INDEX CONCURRENTLY ...` or `REINDEX
/// (CONCURRENTLY) ...`.
fn reindex_concurrently(r: &ast::Reindex) -> bool {
    let in_target = match r.reindex_target() {
        Some(ast::ReindexTarget::ReindexTargetIndex(t)) => t.concurrently_token().is_some(),
        Some(ast::ReindexTarget::ReindexTargetTable(t)) => t.concurrently_token().is_some(),
        Some(ast::ReindexTarget::ReindexTargetSchema(t)) => t.concurrently_token().is_some(),
        Some(ast::ReindexTarget::ReindexTargetDatabase(t)) => t.concurrently_token().is_some(),
        Some(ast::ReindexTarget::ReindexTargetSystem(t)) => t.concurrently_token().is_some(),
        None => false,
    };
    in_target
        || r.reindex_option_list().is_some_and(|l| {
            l.syntax()
                .descendants()
                .any(|n| n.kind() == SyntaxKind::REINDEX_OPTION_CONCURRENTLY)
        })
}

/// The rules an `ADD COLUMN` on an existing table breaks.
fn add_column(ac: &ast::AddColumn, hit: &mut impl FnMut(RuleId)) {
    let constraints: Vec<ast::Constraint> = ac.constraints().collect();
    let has = |f: fn(&ast::Constraint) -> bool| constraints.iter().any(f);
    let default = constraints.iter().find_map(|c| match c {
        ast::Constraint::DefaultConstraint(d) => Some(d.clone()),
        _ => None,
    });
    let null_default = default.as_ref().is_some_and(|d| {
        d.syntax()
            .text()
            .to_string()
            .to_ascii_lowercase()
            .split_whitespace()
            .eq(["default", "null"])
    });
    let generated = has(|c| matches!(c, ast::Constraint::GeneratedConstraint(_)));
    if has(|c| matches!(c, ast::Constraint::NotNullConstraint(_)))
        && (default.is_none() || null_default)
        && !generated
    {
        hit(RuleId::NotNullColumnWithoutDefault);
    }
    let ty = name_text(ac.ty()).to_ascii_lowercase();
    let serial = [
        "serial",
        "bigserial",
        "smallserial",
        "serial4",
        "serial8",
        "serial2",
    ];
    let volatile_default = default
        .and_then(|d| d.expr())
        .is_some_and(|e| volatile::may_be_volatile(&e));
    if generated || serial.contains(&ty.as_str()) || volatile_default {
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

/// The version of a migration file named `V<n>__<name>.sql` (or `.down.sql`).
pub fn version_of(file_name: &str) -> Option<u32> {
    file_name
        .strip_prefix('V')?
        .split_once("__")?
        .0
        .parse()
        .ok()
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

/// A single identifier (a column's or a constraint's name) as PostgreSQL resolves it: unquoted
/// folds to lower case, quoted keeps its case.
fn ident_key(name: &str) -> String {
    table_key(name)
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

    /// The rules `sql` breaks, but `expand-breaks-app` (what the tables here test is the
    /// lock; the phase rule has a test of its own).
    fn rules(sql: &str) -> Vec<&'static str> {
        lock_rules(lint(sql, false))
    }

    fn lock_rules(findings: Vec<Finding>) -> Vec<&'static str> {
        findings
            .into_iter()
            .filter(|f| f.rule != RuleId::ExpandBreaksApp)
            .map(|f| f.rule.name())
            .collect()
    }

    #[test]
    fn an_expand_step_must_not_tighten_what_the_previous_app_version_writes() {
        let tightening = [
            "ALTER TABLE s ALTER COLUMN a SET NOT NULL;",
            "ALTER TABLE s ALTER COLUMN a TYPE bigint;",
            "ALTER TABLE s ADD CONSTRAINT ck CHECK (a > 0) NOT VALID;",
            "ALTER TABLE s ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES t (id) NOT VALID;",
        ];
        let phase = |sql: &str, contract: bool| -> Vec<&'static str> {
            let text = if contract {
                format!("{}\n{sql}", crate::script::CONTRACT)
            } else {
                sql.to_string()
            };
            lint(&text, false)
                .into_iter()
                .filter(|f| {
                    matches!(
                        f.rule,
                        RuleId::ExpandBreaksApp | RuleId::RenameBreaksApp | RuleId::DropBreaksApp
                    )
                })
                .map(|f| f.rule.name())
                .collect()
        };
        for sql in tightening {
            assert_eq!(phase(sql, false), ["expand-breaks-app"], "{sql}");
            assert!(phase(sql, true).is_empty(), "{sql}");
        }
        for (sql, rule) in [
            ("ALTER TABLE s DROP COLUMN a;", "drop-breaks-app"),
            ("ALTER TABLE s RENAME COLUMN a TO b;", "rename-breaks-app"),
        ] {
            assert_eq!(phase(sql, false), [rule], "{sql}");
            assert!(phase(sql, true).is_empty(), "{sql}");
        }
        // Loosening and adding never break the previous version.
        for sql in [
            "ALTER TABLE s ALTER COLUMN a DROP NOT NULL;",
            "ALTER TABLE s ADD COLUMN b text;",
            "ALTER TABLE s DROP CONSTRAINT ck;",
            "ALTER TABLE s VALIDATE CONSTRAINT ck;",
        ] {
            assert!(phase(sql, false).is_empty(), "{sql}");
        }
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
            ("DROP INDEX ix;", &["drop-index-blocks"]),
            ("DROP INDEX IF EXISTS ix, iy;", &["drop-index-blocks", "drop-index-blocks"]),
            ("-- no-transaction\nDROP INDEX CONCURRENTLY ix;", &[]),
            (
                "-- no-transaction\nDROP INDEX ix;",
                &["drop-index-blocks"],
            ),
            (
                "CREATE INDEX ix ON poses (name);\nDROP INDEX ix;",
                &["index-blocks-writes"],
            ),
            ("REINDEX INDEX ix;", &["reindex-blocks"]),
            ("REINDEX TABLE poses;", &["reindex-blocks"]),
            ("REINDEX SCHEMA public;", &["reindex-blocks"]),
            ("-- no-transaction\nREINDEX INDEX CONCURRENTLY ix;", &[]),
            ("-- no-transaction\nREINDEX (CONCURRENTLY) TABLE poses;", &[]),
            (
                "REINDEX TABLE CONCURRENTLY poses;",
                &["concurrently-in-transaction"],
            ),
            (
                "REINDEX (CONCURRENTLY) INDEX ix;",
                &["concurrently-in-transaction"],
            ),
            ("CREATE TABLE t (a int);\nREINDEX TABLE t;", &[]),
            ("TRUNCATE poses;", &["truncate"]),
            (
                "TRUNCATE TABLE ONLY poses, users CASCADE;",
                &["truncate", "truncate"],
            ),
            ("CREATE TABLE t (a int);\nTRUNCATE t;", &[]),
            ("VACUUM FULL poses;", &["table-rewrite"]),
            ("VACUUM (FULL, VERBOSE) poses;", &["table-rewrite"]),
            ("VACUUM FULL;", &["table-rewrite"]),
            ("VACUUM (FULL false) poses;", &[]),
            ("VACUUM poses;", &[]),
            ("VACUUM ANALYZE poses;", &[]),
            ("CLUSTER poses USING ix;", &["table-rewrite"]),
            ("CLUSTER;", &["table-rewrite"]),
            ("BEGIN;", &["transaction-control"]),
            ("START TRANSACTION;", &["transaction-control"]),
            ("COMMIT;", &["transaction-control"]),
            ("END;", &["transaction-control"]),
            ("ROLLBACK;", &["transaction-control"]),
            ("ABORT;", &["transaction-control"]),
            ("SAVEPOINT a;", &["transaction-control"]),
            ("RELEASE SAVEPOINT a;", &["transaction-control"]),
            ("ROLLBACK TO SAVEPOINT a;", &["transaction-control"]),
            ("-- no-transaction\nCOMMIT;", &["transaction-control"]),
            ("SET LOCAL lock_timeout = '1s';", &[]),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n\
                 ALTER TABLE s VALIDATE CONSTRAINT c;",
                &["validate-in-same-transaction"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id) NOT VALID;\n\
                 ALTER TABLE public.S VALIDATE CONSTRAINT other;",
                &["validate-in-same-transaction"],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a > 0) NOT VALID, VALIDATE CONSTRAINT c;",
                &["validate-in-same-transaction"],
            ),
            (
                "-- no-transaction\nALTER TABLE s ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n\
                 ALTER TABLE s VALIDATE CONSTRAINT c;",
                &[],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n\
                 ALTER TABLE t VALIDATE CONSTRAINT c;",
                &[],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE s VALIDATE CONSTRAINT c;\n\
                 ALTER TABLE s ALTER COLUMN a SET NOT NULL;\n\
                 ALTER TABLE s DROP CONSTRAINT c;",
                &["validate-in-same-transaction"],
            ),
            (
                "-- no-transaction\n\
                 ALTER TABLE s ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE s VALIDATE CONSTRAINT c;\n\
                 ALTER TABLE s ALTER COLUMN a SET NOT NULL;\n\
                 ALTER TABLE s DROP CONSTRAINT c;",
                &[],
            ),
            (
                "ALTER TABLE s ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE s ALTER COLUMN a SET NOT NULL;",
                &["set-not-null-scans"],
            ),
            (
                "ALTER TABLE s ADD COLUMN n int DEFAULT my_default();",
                &["add-column-rewrites"],
            ),
            (
                "ALTER TABLE s ADD COLUMN n int DEFAULT app.next_n();",
                &["add-column-rewrites"],
            ),
            ("ALTER TABLE s ADD COLUMN m jsonb NOT NULL DEFAULT '{}'::jsonb;", &[]),
            (
                "ALTER TABLE s ADD COLUMN d date DEFAULT current_date, \
                 ADD COLUMN l text DEFAULT lower('X');",
                &[],
            ),
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
        // DROP INDEX too: an undo runs only by an operator's `down`, never at deploy.
        let sql = "DROP TABLE tags;\nALTER TABLE poses DROP COLUMN tag;\n\
                   ALTER TABLE poses RENAME COLUMN b TO a;\nCREATE INDEX ix ON poses (a);\n\
                   DROP INDEX ix_poses_tag;\nTRUNCATE poses;\n";
        assert_eq!(
            found(sql, true),
            vec![
                ("index-blocks-writes", 4, "poses".to_string(), false),
                ("truncate", 6, "poses".to_string(), false),
            ]
        );
    }

    #[test]
    fn the_earlier_migrations_tell_a_string_widening_from_a_rewrite() {
        let schema = Schema::after([
            "CREATE TABLE poses (id int, name varchar(255), notes text, n int);",
            "ALTER TABLE poses ADD COLUMN tag varchar(20);\nCREATE INDEX ix_poses_n ON poses (n);",
        ]);
        let with = |sql: &str| -> Vec<&'static str> { lock_rules(lint_with(sql, false, &schema)) };
        for (sql, want) in [
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE varchar(300);",
                vec![],
            ),
            ("ALTER TABLE poses ALTER name SET DATA TYPE text;", vec![]),
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE character varying;",
                vec![],
            ),
            ("ALTER TABLE poses ALTER COLUMN notes TYPE varchar;", vec![]),
            (
                "ALTER TABLE poses ALTER COLUMN tag TYPE varchar(40), ALTER COLUMN name TYPE text;",
                vec![],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE varchar(100);",
                vec!["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN notes TYPE varchar(100);",
                vec!["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN n TYPE bigint;",
                vec!["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE text USING name || '';",
                vec!["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE text COLLATE \"C\";",
                vec!["column-type-rewrites"],
            ),
            (
                "ALTER TABLE poses ALTER COLUMN unknown TYPE text;",
                vec!["column-type-rewrites"],
            ),
            // The file's own earlier change counts: varchar(9) is then shorter.
            (
                "ALTER TABLE poses ALTER COLUMN name TYPE varchar(9);\n\
                 ALTER TABLE poses ALTER COLUMN name TYPE varchar(5);",
                vec!["column-type-rewrites", "column-type-rewrites"],
            ),
        ] {
            assert_eq!(with(sql), want, "{sql}");
        }
        // Told the index's table, the finding names it.
        let got = lint_with("DROP INDEX ix_poses_n;", false, &schema);
        assert_eq!(got[0].table, "poses");
        assert!(got[0].why().contains("lock on poses"), "{}", got[0].why());
        // Without the earlier migrations, the type is unknown: flagged as before.
        assert_eq!(
            rules("ALTER TABLE poses ALTER COLUMN name TYPE varchar(300);"),
            ["column-type-rewrites"]
        );
    }

    #[test]
    fn a_validated_not_null_check_from_an_earlier_migration_lets_set_not_null_pass() {
        let schema = Schema::after([
            "CREATE TABLE s (a int, b int);",
            "ALTER TABLE s ADD CONSTRAINT ck_a CHECK (a IS NOT NULL) NOT VALID;",
            "ALTER TABLE s VALIDATE CONSTRAINT ck_a;",
        ]);
        let sql = "ALTER TABLE s ALTER COLUMN a SET NOT NULL, ALTER COLUMN b SET NOT NULL;\n\
                   ALTER TABLE s DROP CONSTRAINT ck_a;";
        assert_eq!(
            lock_rules(lint_with(sql, false, &schema)),
            ["set-not-null-scans"]
        );
    }

    #[test]
    fn versions_are_read_from_file_names() {
        assert_eq!(version_of("V12__add_tags.sql"), Some(12));
        assert_eq!(version_of("V3__x.down.sql"), Some(3));
        assert_eq!(version_of("busy.sql"), None);
        assert_eq!(version_of("Vx__a.sql"), None);
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
                "drop-index-blocks",
                "reindex-blocks",
                "concurrently-in-transaction",
                "not-null-column-without-default",
                "add-column-rewrites",
                "column-type-rewrites",
                "table-rewrite",
                "foreign-key-validates",
                "check-validates",
                "validate-in-same-transaction",
                "set-not-null-scans",
                "unique-builds-index",
                "transaction-control",
                "truncate",
                "rename-breaks-app",
                "drop-breaks-app",
                "expand-breaks-app",
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
