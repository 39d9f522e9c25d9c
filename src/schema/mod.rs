//! One comparable model of a schema, whichever dialect it was read from (each dialect's
//! catalog reader lives with its driver, in `db/`), and the rules that make two spellings of
//! the same thing compare equal (expressions, defaults, SQLite's type names). The schema a
//! version *should* have is built by applying the embedded migrations to a scratch copy, never
//! a hand-kept snapshot; what differs between two schemas is [`diff`]'s.

mod diff;

pub use diff::{diff, Difference, Side};

pub mod logical;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Tables of one schema, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    /// Every table except the migration history.
    pub tables: BTreeMap<String, Table>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// Unique constraints (not unique indexes), as column lists.
    pub uniques: BTreeSet<Vec<String>>,
    /// Foreign keys.
    pub foreign_keys: BTreeSet<ForeignKey>,
    /// CHECK expressions, normalised.
    pub checks: BTreeSet<String>,
    /// Indexes created by CREATE INDEX, by name.
    pub indexes: BTreeMap<String, Index>,
    /// Triggers, by name (the sync triggers of a column being renamed, between expand and
    /// contract).
    pub triggers: BTreeSet<String>,
    /// How the catalog spells the table beyond its meaning (column order, constraint names):
    /// never compared, never serialised.
    #[serde(skip)]
    pub spelling: Spelling,
}

/// What a catalog says of a table that is not part of what it means: the order of its
/// columns and the names of its constraints. Two tables that differ only here are equal (a
/// schema is compared by meaning); `new --from` reads it to write SQL that names what exists.
#[derive(Debug, Clone, Default)]
pub struct Spelling {
    /// Column names in the catalog's order.
    pub order: Vec<String>,
    /// Constraint names by [`Spelling::key`].
    pub names: BTreeMap<String, String>,
}

impl PartialEq for Spelling {
    /// Always: spelling is not meaning.
    fn eq(&self, _: &Spelling) -> bool {
        true
    }
}

impl Eq for Spelling {}

/// What a constraint is, whatever its name: the key of [`Spelling::names`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKey<'a> {
    /// A UNIQUE constraint on these columns.
    Unique(&'a [String]),
    /// A CHECK, by meaning.
    Check(&'a str),
    /// A foreign key from these columns.
    ForeignKey(&'a [String]),
}

impl Spelling {
    /// The key a constraint's name is kept under.
    pub fn key(k: &ConstraintKey) -> String {
        match k {
            ConstraintKey::Unique(c) => format!("u {}", c.join(",")),
            ConstraintKey::Check(e) => format!("c {e}"),
            ConstraintKey::ForeignKey(c) => format!("f {}", c.join(",")),
        }
    }

    /// Records the name of a constraint.
    pub fn name(&mut self, k: ConstraintKey, name: &str) {
        self.names.insert(Spelling::key(&k), name.to_string());
    }

    /// The recorded name of a constraint of `table`, or the one PostgreSQL would give it
    /// unnamed (`<table>_<columns>_key`, `_fkey`, `<table>_<first column>_check`): what an
    /// unnamed constraint of a SQLite file is called on PostgreSQL.
    pub fn name_of(&self, table: &str, k: &ConstraintKey) -> String {
        if let Some(n) = self.names.get(&Spelling::key(k)) {
            return n.clone();
        }
        let name = match k {
            ConstraintKey::Unique(c) => format!("{table}_{}_key", c.join("_")),
            ConstraintKey::ForeignKey(c) => format!("{table}_{}_fkey", c.join("_")),
            ConstraintKey::Check(e) => match first_word(e) {
                Some(w) => format!("{table}_{w}_check"),
                None => format!("{table}_check"),
            },
        };
        truncate_name(&name)
    }
}

/// The first identifier of an expression (what PostgreSQL names an unnamed CHECK after).
fn first_word(expr: &str) -> Option<String> {
    let start = expr.find(|c: char| c.is_ascii_alphabetic() || c == '_')?;
    let word: String = expr[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(word)
}

/// A name cut to PostgreSQL's 63 bytes, as PostgreSQL cuts it.
pub fn truncate_name(name: &str) -> String {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Type as the catalog spells it (normalised to lower case).
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default expression (normalised), `identity` for identity columns.
    pub default: Option<String>,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ForeignKey {
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced table.
    pub ref_table: String,
    /// Referenced columns.
    pub ref_columns: Vec<String>,
    /// ON DELETE rule: `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL`, `SET DEFAULT`.
    pub on_delete: String,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// UNIQUE index.
    pub unique: bool,
}

impl std::fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({}) -> {}({}) ON DELETE {}",
            self.columns.join(", "),
            self.ref_table,
            self.ref_columns.join(", "),
            self.on_delete
        )
    }
}

/// Lower-cases outside quotes, collapses whitespace, and drops parentheses around the whole
/// expression, so that spellings that mean the same compare equal.
pub fn normalize_expr(expr: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut space = false;
    for ch in expr.trim().chars() {
        match quote {
            Some(q) => {
                out.push(ch);
                if ch == q {
                    quote = None;
                }
            }
            None if ch.is_whitespace() => space = true,
            None => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                }
                out.push(ch.to_ascii_lowercase());
            }
        }
    }
    while out.starts_with('(') && out.ends_with(')') && balanced_inside(&out[1..out.len() - 1]) {
        out = out[1..out.len() - 1].trim().to_string();
    }
    out
}

/// A CHECK expression by meaning (see `expr`), or by spelling where it is outside what `expr`
/// reads.
pub fn check_meaning(expr: &str) -> String {
    crate::expr::canonical(expr).unwrap_or_else(|| normalize_expr(expr))
}

/// A SQLite declared type by meaning: the names SQLite gives REAL affinity (`FLOAT`, `DOUBLE`,
/// `DOUBLE PRECISION`, SQLAlchemy's `Float`) are one type there. Others stay as declared:
/// SQLite keeps them apart in what an application reads back.
pub fn sqlite_type_meaning(declared: &str) -> String {
    let t = declared.trim().to_lowercase();
    let base = t.split('(').next().unwrap_or_default().trim();
    match base {
        "real" | "float" | "double" | "double precision" => "real".to_string(),
        _ => t,
    }
}

/// A column default (as [`normalize_expr`] spells it) by meaning (a quoted number is the
/// number): `nextval(...)` on the column's sequence (what
/// `SERIAL` and SQLAlchemy's `Integer, primary_key=True` make) behaves as an identity column
/// generated by default, and `now()`, `CURRENT_TIMESTAMP` and `transaction_timestamp()` are
/// the same clock.
pub fn default_meaning(normalized: &str) -> String {
    if normalized.starts_with("nextval(") {
        return "generated by default as identity".to_string();
    }
    match normalized {
        "current_timestamp" | "transaction_timestamp()" => "now()".to_string(),
        // SQLAlchemy's `server_default="1"` writes `DEFAULT '1'`: on SQLite a quoted number
        // is stored as the number in a numeric column and as the text in a text one, exactly
        // as the bare number would be (PostgreSQL's catalog spells both the same already).
        quoted
            if quoted.len() > 2
                && quoted.starts_with('\'')
                && quoted.ends_with('\'')
                && quoted[1..quoted.len() - 1].parse::<f64>().is_ok() =>
        {
            quoted[1..quoted.len() - 1].to_string()
        }
        other => other.to_string(),
    }
}

/// The `n` of a `varchar(n)` column type, as either catalog spells it (`character varying(255)`,
/// `VARCHAR(255)`).
pub fn varchar_length(data_type: &str) -> Option<usize> {
    let t = data_type.trim().to_ascii_lowercase();
    let n = t
        .strip_prefix("character varying(")
        .or_else(|| t.strip_prefix("varchar("))?;
    n.strip_suffix(')')?.trim().parse().ok()
}

fn balanced_inside(s: &str) -> bool {
    let mut depth = 0i32;
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_meaning() {
        let same = [
            (
                "nextval('users_id_seq'::regclass)",
                "generated by default as identity",
            ),
            ("current_timestamp", "now()"),
            ("'1'", "1"),
            ("'0.5'", "0.5"),
        ];
        for (a, b) in same {
            assert_eq!(default_meaning(a), default_meaning(b), "{a} vs {b}");
        }
        for (a, b) in [
            ("'x'", "x"),
            ("'{}'", "'[]'"),
            ("true", "false"),
            ("'1'", "'01x'"),
        ] {
            assert_ne!(default_meaning(a), default_meaning(b), "{a} vs {b}");
        }
    }

    #[test]
    fn normalizes_equivalent_spellings() {
        let cases = [
            ("(CURRENT_TIMESTAMP)", "current_timestamp"),
            ("  '{}' ", "'{}'"),
            ("((rating >= 1))", "rating >= 1"),
            ("(a) OR (b)", "(a) or (b)"),
            ("'Mixed Case'", "'Mixed Case'"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_expr(input), want, "{input}");
        }
    }
}
