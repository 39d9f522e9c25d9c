//! What the migrations before a file say about the schema it meets: each column's type, each
//! index's table, and which `CHECK (col IS NOT NULL)` constraints are validated. Read from the
//! texts alone (no database), statement by statement, so that a rule can tell a change
//! PostgreSQL does in place (`varchar(20)` to `varchar(50)`) from one that rewrites the table.
//! Pure; what it cannot read (a type it does not know, a table made by `CREATE TABLE AS`) is
//! simply unknown, and the rules then fire as if there were no context.

use super::{ident_key, name_text, table_key};
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SourceFile;
use std::collections::HashMap;

/// A `CHECK (col IS NOT NULL)` constraint: its column and whether it has been validated.
#[derive(Debug, Clone)]
struct NotNullCheck {
    column: String,
    validated: bool,
}

/// The schema as far as the migrations before a file tell it (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// (table, column) → type, normalized by [`normalize_type`].
    columns: HashMap<(String, String), String>,
    /// index → its table.
    indexes: HashMap<String, String>,
    /// (table, constraint) → the NOT NULL check it is.
    checks: HashMap<(String, String), NotNullCheck>,
}

impl Schema {
    /// The schema the given migration texts (up files, oldest first) leave behind.
    pub fn after<'a>(migrations: impl IntoIterator<Item = &'a str>) -> Schema {
        let mut schema = Schema::default();
        for text in migrations {
            schema.apply_text(text);
        }
        schema
    }

    /// Applies every statement of one migration text.
    pub fn apply_text(&mut self, text: &str) {
        for stmt in SourceFile::parse(text).tree().stmts() {
            self.apply(&stmt);
        }
    }

    /// The type of `table.column` (names as written; normalized as [`normalize_type`] says),
    /// when the migrations before tell it.
    pub fn column_type(&self, table: &str, column: &str) -> Option<&str> {
        self.columns
            .get(&(table_key(table), ident_key(column)))
            .map(String::as_str)
    }

    /// The table an index is on, when the migrations before made it.
    pub(super) fn index_table(&self, index: &str) -> Option<&str> {
        self.indexes.get(&table_key(index)).map(String::as_str)
    }

    /// Whether `table.column` has a validated `CHECK (column IS NOT NULL)`: `SET NOT NULL`
    /// then skips its scan (PostgreSQL 12 and later).
    pub(super) fn not_null_checked(&self, table: &str, column: &str) -> bool {
        let (table, column) = (table_key(table), ident_key(column));
        self.checks
            .iter()
            .any(|((t, _), c)| *t == table && c.column == column && c.validated)
    }

    /// Applies one statement: what it creates, alters, renames or drops.
    pub(super) fn apply(&mut self, stmt: &ast::Stmt) {
        match stmt {
            ast::Stmt::CreateTable(ct) => self.create_table(ct),
            ast::Stmt::CreateIndex(ci) => {
                let index = ci
                    .index()
                    .map(|i| table_key(&i.syntax().text().to_string()));
                if let Some(index) = index.filter(|i| !i.is_empty()) {
                    let table = table_key(&name_text(ci.table_relation_name()));
                    self.indexes.insert(index, table);
                }
            }
            ast::Stmt::DropIndex(di) => {
                for i in di.index_refs() {
                    self.indexes
                        .remove(&table_key(&i.syntax().text().to_string()));
                }
            }
            ast::Stmt::DropTable(dt) => {
                for t in dt.table_name_refs() {
                    self.forget_table(&table_key(&t.syntax().text().to_string()));
                }
            }
            ast::Stmt::AlterTable(at) => {
                let table = table_key(&name_text(at.table_relation_name()));
                for action in at.actions() {
                    self.alter(&table, &action);
                }
            }
            _ => {}
        }
    }

    /// A new table: its columns and inline `CHECK (col IS NOT NULL)` constraints.
    fn create_table(&mut self, ct: &ast::CreateTable) {
        let table = table_key(&name_text(ct.table_name()));
        self.forget_table(&table);
        let Some(args) = ct.table_arg_list() else {
            return;
        };
        for arg in args.args() {
            match arg {
                ast::TableArg::Column(c) => {
                    if let (Some(name), Some(ty)) = (c.name(), c.ty()) {
                        let column = ident_key(&name.syntax().text().to_string());
                        let ty = normalize_type(&ty.syntax().text().to_string());
                        self.columns.insert((table.clone(), column), ty);
                    }
                }
                ast::TableArg::TableConstraint(tc) => {
                    if let Some(c) = ast::Constraint::cast(tc.syntax().clone()) {
                        self.add_check(&table, &c);
                    }
                }
                ast::TableArg::LikeClause(_) => {}
            }
        }
    }

    /// One action of an `ALTER TABLE` on `table`.
    fn alter(&mut self, table: &str, action: &ast::AlterTableAction) {
        let key = |t: &str| (table.to_string(), ident_key(t));
        match action {
            ast::AlterTableAction::AddColumn(ac) => {
                if let (Some(name), Some(ty)) = (ac.column_name(), ac.ty()) {
                    let ty = normalize_type(&ty.syntax().text().to_string());
                    self.columns
                        .insert(key(&name.syntax().text().to_string()), ty);
                }
            }
            ast::AlterTableAction::AlterColumn(alc) => {
                let column = alc.column_name_ref().map(|c| c.syntax().text().to_string());
                if let (Some(column), Some(ast::AlterColumnOption::SetType(st))) =
                    (column, alc.option())
                {
                    match st.ty() {
                        Some(ty) => {
                            let ty = normalize_type(&ty.syntax().text().to_string());
                            self.columns.insert(key(&column), ty)
                        }
                        None => self.columns.remove(&key(&column)),
                    };
                }
            }
            ast::AlterTableAction::DropColumn(dc) => {
                let column = name_text(dc.column_name_ref());
                self.columns.remove(&key(&column));
            }
            ast::AlterTableAction::RenameColumn(rc) => {
                let (from, to) = (name_text(rc.column_name_ref()), name_text(rc.column_name()));
                if let Some(ty) = self.columns.remove(&key(&from)) {
                    self.columns.insert(key(&to), ty);
                }
            }
            ast::AlterTableAction::TableRenameTo(rt) => {
                let to = table_key(&name_text(rt.table_name()));
                self.rename_table(table, &to);
            }
            ast::AlterTableAction::AddConstraint(ac) => {
                if let Some(c) = ac.constraint() {
                    self.add_check(table, &c);
                }
            }
            ast::AlterTableAction::ValidateConstraint(vc) => {
                let name = ident_key(&name_text(vc.constraint_name_ref()));
                if let Some(c) = self.checks.get_mut(&(table.to_string(), name)) {
                    c.validated = true;
                }
            }
            ast::AlterTableAction::DropConstraint(dc) => {
                let name = ident_key(&name_text(dc.constraint_name_ref()));
                self.checks.remove(&(table.to_string(), name));
            }
            _ => {}
        }
    }

    /// Records a named `CHECK (col IS NOT NULL)`; other constraints are not needed.
    fn add_check(&mut self, table: &str, c: &ast::Constraint) {
        let ast::Constraint::CheckConstraint(check) = c else {
            return;
        };
        let name = check
            .constraint_name_clause()
            .and_then(|n| n.constraint_name())
            .map(|n| ident_key(&n.syntax().text().to_string()));
        let column = check.expr().and_then(|e| is_not_null_of(&e));
        if let (Some(name), Some(column)) = (name, column) {
            let validated = !c.is_not_valid();
            self.checks.insert(
                (table.to_string(), name),
                NotNullCheck { column, validated },
            );
        }
    }

    /// Forgets everything about a table (dropped, or made again).
    fn forget_table(&mut self, table: &str) {
        self.columns.retain(|(t, _), _| t != table);
        self.indexes.retain(|_, t| t != table);
        self.checks.retain(|(t, _), _| t != table);
    }

    /// Moves what is known of `from` to `to`.
    fn rename_table(&mut self, from: &str, to: &str) {
        let moved: Vec<_> = self
            .columns
            .iter()
            .filter(|((t, _), _)| t == from)
            .map(|((_, c), ty)| (c.clone(), ty.clone()))
            .collect();
        self.forget_table(to);
        self.columns.retain(|(t, _), _| t != from);
        for (c, ty) in moved {
            self.columns.insert((to.to_string(), c), ty);
        }
        for t in self.indexes.values_mut().filter(|t| *t == from) {
            *t = to.to_string();
        }
        let checks: Vec<_> = self
            .checks
            .keys()
            .filter(|(t, _)| t == from)
            .cloned()
            .collect();
        for k in checks {
            if let Some(c) = self.checks.remove(&k) {
                self.checks.insert((to.to_string(), k.1), c);
            }
        }
    }
}

/// The column of a `col IS NOT NULL` expression.
fn is_not_null_of(expr: &ast::Expr) -> Option<String> {
    let text = expr.syntax().text().to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [col, is, not, null]
            if is.eq_ignore_ascii_case("is")
                && not.eq_ignore_ascii_case("not")
                && null.eq_ignore_ascii_case("null") =>
        {
            Some(ident_key(col))
        }
        _ => None,
    }
}

/// A type as written, in one spelling: lower case (outside quotes), single spaces, none
/// around parentheses, and `character varying` read as `varchar`.
pub fn normalize_type(ty: &str) -> String {
    let spaced = ty.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = if spaced.contains('"') {
        spaced
    } else {
        spaced.to_ascii_lowercase()
    };
    let tight = lower
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")");
    let tight = tight.replace(", ", ",");
    match tight.strip_prefix("character varying") {
        Some(rest) => format!("varchar{rest}"),
        None => tight,
    }
}

/// A string type PostgreSQL can change between without touching a row.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Stringish {
    Text,
    /// `varchar(n)`, or `varchar` without a limit (`None`).
    Varchar(Option<u64>),
}

fn stringish(ty: &str) -> Option<Stringish> {
    let ty = normalize_type(ty);
    if ty == "text" {
        return Some(Stringish::Text);
    }
    let rest = ty.strip_prefix("varchar")?;
    if rest.is_empty() {
        return Some(Stringish::Varchar(None));
    }
    let n = rest.strip_prefix('(')?.strip_suffix(')')?.parse().ok()?;
    Some(Stringish::Varchar(Some(n)))
}

/// Whether changing a column of type `from` to `to` keeps every stored value as it is and
/// checks none: PostgreSQL then neither rewrites nor scans the table (nor rebuilds its
/// indexes). Only the string widenings: `varchar(n)` to `varchar(m)` with m ≥ n, to `varchar`
/// or to `text`; `text` or `varchar` to `varchar` or `text`. Anything else (a shorter length,
/// `text` to `varchar(n)`, other types) may rewrite or scan, and is `false`.
pub fn widens(from: &str, to: &str) -> bool {
    use Stringish::{Text, Varchar};
    match (stringish(from), stringish(to)) {
        (Some(Varchar(Some(n))), Some(Varchar(Some(m)))) => m >= n,
        (Some(_), Some(Text | Varchar(None))) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_column_types_through_creates_alters_renames_and_drops() {
        let s = Schema::after([
            "CREATE TABLE poses (id int, name character varying (255), notes text);\n\
             CREATE INDEX ix_poses_name ON poses (name);",
            "ALTER TABLE poses ADD COLUMN tag VARCHAR(20), ALTER COLUMN notes TYPE varchar(9);\n\
             ALTER TABLE poses RENAME COLUMN tag TO label;\nALTER TABLE poses DROP COLUMN id;",
            "CREATE TABLE gone (a text);\nDROP TABLE gone;\nALTER TABLE poses RENAME TO asanas;",
        ]);
        assert_eq!(s.column_type("asanas", "name"), Some("varchar(255)"));
        assert_eq!(s.column_type("public.Asanas", "NAME"), Some("varchar(255)"));
        assert_eq!(s.column_type("asanas", "notes"), Some("varchar(9)"));
        assert_eq!(s.column_type("asanas", "label"), Some("varchar(20)"));
        assert_eq!(s.column_type("asanas", "tag"), None);
        assert_eq!(s.column_type("asanas", "id"), None);
        assert_eq!(s.column_type("poses", "name"), None);
        assert_eq!(s.column_type("gone", "a"), None);
        assert_eq!(s.index_table("ix_poses_name"), Some("asanas"));
    }

    #[test]
    fn knows_a_validated_not_null_check() {
        let mut s = Schema::after([
            "CREATE TABLE t (a int, b int, CONSTRAINT ck_b CHECK (b IS NOT NULL));",
            "ALTER TABLE t ADD CONSTRAINT ck_a CHECK (a IS NOT NULL) NOT VALID;",
        ]);
        assert!(s.not_null_checked("t", "b"));
        assert!(!s.not_null_checked("t", "a"));
        s.apply_text("ALTER TABLE t VALIDATE CONSTRAINT ck_a;");
        assert!(s.not_null_checked("t", "a"));
        s.apply_text("ALTER TABLE t DROP CONSTRAINT ck_a;");
        assert!(!s.not_null_checked("t", "a"));
    }

    #[test]
    fn only_string_widenings_keep_the_rows() {
        for (from, to, want) in [
            ("varchar(20)", "varchar(50)", true),
            ("varchar(20)", "varchar(20)", true),
            ("character varying(20)", "VARCHAR (50)", true),
            ("varchar(20)", "text", true),
            ("varchar(20)", "varchar", true),
            ("text", "varchar", true),
            ("varchar", "text", true),
            ("varchar(50)", "varchar(20)", false),
            ("text", "varchar(20)", false),
            ("varchar", "varchar(20)", false),
            ("int", "bigint", false),
            ("varchar(20)", "citext", false),
            ("char(20)", "varchar(20)", false),
            ("varchar(20)[]", "text[]", false),
        ] {
            assert_eq!(widens(from, to), want, "{from} -> {to}");
        }
    }
}
