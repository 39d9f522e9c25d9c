//! Whether a column's DEFAULT may be volatile, which decides whether `ADD COLUMN` rewrites the
//! table: since PostgreSQL 11 a non-volatile default is evaluated once and stored in the
//! catalog, while a volatile one is evaluated for every existing row, rewriting the table under
//! ACCESS EXCLUSIVE.
//!
//! The linter cannot see a function's volatility (that lives in the database), so it is
//! conservative: a default is non-volatile only if every function it calls is on
//! [`NON_VOLATILE`], a list of PostgreSQL built-ins known to be STABLE or IMMUTABLE (literals,
//! casts, operators and keywords such as `current_timestamp` need no call). Any other call, a
//! user's function, a schema-qualified one outside `pg_catalog` or a quoted name, counts as
//! volatile. Operators are taken as non-volatile (the built-in ones are).

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxKind;

/// Built-in functions that are STABLE or IMMUTABLE in PostgreSQL (every `pg_catalog` function
/// of each name checked against `pg_proc.provolatile` on PostgreSQL 15; `coalesce`,
/// `current_date` and the like are grammar, not functions, and never volatile), callable in a
/// default. Lower case, unqualified.
const NON_VOLATILE: &[&str] = &[
    // The transaction's time: STABLE, the same for every row.
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "current_time",
    "current_date",
    "localtimestamp",
    "localtime",
    "current_setting",
    "current_schema",
    "to_timestamp",
    "to_date",
    "to_char",
    "date_trunc",
    "date_part",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "timezone",
    // Expressions PostgreSQL's grammar spells as calls.
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "row",
    // Strings, numbers, JSON and arrays of constants.
    "lower",
    "upper",
    "initcap",
    "length",
    "char_length",
    "concat",
    "concat_ws",
    "btrim",
    "ltrim",
    "rtrim",
    "lpad",
    "rpad",
    "replace",
    "substr",
    "left",
    "right",
    "repeat",
    "md5",
    "format",
    "abs",
    "round",
    "trunc",
    "floor",
    "ceil",
    "power",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "to_jsonb",
    "to_json",
    "array_fill",
    "string_to_array",
];

/// The special call forms of PostgreSQL's grammar (`EXTRACT(field FROM x)`, `TRIM(...)`, ...):
/// all are built-ins that are not volatile.
const SPECIAL_CALLS: &[SyntaxKind] = &[
    SyntaxKind::EXTRACT_FN,
    SyntaxKind::TRIM_FN,
    SyntaxKind::SUBSTRING_FN,
    SyntaxKind::POSITION_FN,
    SyntaxKind::OVERLAY_FN,
];

/// Whether the DEFAULT expression `default` may be volatile (see the module doc).
pub(super) fn may_be_volatile(default: &ast::Expr) -> bool {
    default
        .syntax()
        .descendants()
        .filter_map(ast::CallExpr::cast)
        .any(|call| !known_non_volatile(&call))
}

/// Whether a call is one of [`NON_VOLATILE`] (or a special form, [`SPECIAL_CALLS`]).
fn known_non_volatile(call: &ast::CallExpr) -> bool {
    let special = call
        .syntax()
        .children()
        .any(|c| SPECIAL_CALLS.contains(&c.kind()));
    if special {
        return true;
    }
    let Some(callee) = call.expr() else {
        return false;
    };
    let name = callee.syntax().text().to_string();
    let name: String = name.split_whitespace().collect();
    // A quoted name is matched as written: "now" is now, "Now" is someone's function.
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => name.to_ascii_lowercase(),
    };
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    NON_VOLATILE.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use squawk_syntax::SourceFile;

    /// The DEFAULT of `ALTER TABLE t ADD COLUMN c T DEFAULT <expr>`.
    fn volatile(expr: &str) -> bool {
        let sql = format!("ALTER TABLE t ADD COLUMN c int DEFAULT {expr};");
        let file = SourceFile::parse(&sql).tree();
        let default = file
            .syntax()
            .descendants()
            .find_map(ast::DefaultConstraint::cast)
            .and_then(|d| d.expr())
            .unwrap_or_else(|| panic!("no default in {sql}"));
        may_be_volatile(&default)
    }

    #[test]
    fn only_known_built_ins_are_non_volatile() {
        for (expr, want) in [
            ("0", false),
            ("'x'", false),
            ("true", false),
            ("NULL", false),
            ("'{}'::jsonb", false),
            ("CAST('1' AS varchar(3))", false),
            ("'1.5'::numeric(5, 2)", false),
            ("now()", false),
            ("pg_catalog.now()", false),
            ("current_timestamp", false),
            ("current_timestamp(3)", false),
            ("CURRENT_DATE", false),
            ("localtimestamp", false),
            ("transaction_timestamp()", false),
            ("statement_timestamp()", false),
            ("lower('X') || upper('y')", false),
            ("coalesce(NULL, 1) + 2", false),
            ("extract(epoch FROM now())", false),
            ("ARRAY[1, 2]", false),
            ("interval '1 day'", false),
            ("now() + interval '1 day'", false),
            ("random()", true),
            ("gen_random_uuid()", true),
            ("uuid_generate_v4()", true),
            ("clock_timestamp()", true),
            ("timeofday()", true),
            ("nextval('s'::regclass)", true),
            ("txid_current()", true),
            ("my_default()", true),
            ("app.now()", true),
            ("\"Now\"()", true),
            ("lower(my_default()::text)", true),
            ("coalesce(NULL, random())", true),
        ] {
            assert_eq!(volatile(expr), want, "{expr}");
        }
    }
}
