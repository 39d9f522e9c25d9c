//! A migration script as text: the marker that runs it outside a transaction, its statements
//! one by one (split as PostgreSQL's own lexer would: quotes, quoted identifiers, comments and
//! dollar quoting respected), and the indexes it builds concurrently. Pure.

/// The first line that makes a script run outside a transaction, statement by statement (the
/// spelling sqlx uses): for `CREATE INDEX CONCURRENTLY` and the like, which refuse to run in
/// one.
pub const NO_TRANSACTION: &str = "-- no-transaction";

/// Whether `sql` opens with [`NO_TRANSACTION`].
pub fn outside_transaction(sql: &str) -> bool {
    sql.lines()
        .next()
        .is_some_and(|l| l.trim() == NO_TRANSACTION)
}

/// The statements of `sql`, in order, without their `;` (empty ones and bare comments left out).
pub fn statements(sql: &str) -> Vec<String> {
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut code = false; // whether the current statement has anything but comments
    while i < c.len() {
        match c[i] {
            '-' if c.get(i + 1) == Some(&'-') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            q @ ('\'' | '"') => {
                code = true;
                i += 1;
                while i < c.len() {
                    if c[i] == q {
                        if c.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            '$' => {
                code = true;
                // $tag$ ... $tag$ (tag may be empty); a lone `$1` is a parameter.
                let mut j = i + 1;
                while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                if c.get(j) == Some(&'$') && !c.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    let tag: String = c[i..=j].iter().collect();
                    let mut k = j + 1;
                    let close = loop {
                        if k >= c.len() {
                            break c.len();
                        }
                        if c[k] == '$' && c[k..].iter().take(tag.len()).collect::<String>() == tag {
                            break k + tag.len() - 1;
                        }
                        k += 1;
                    };
                    i = close;
                }
            }
            ';' => {
                if code {
                    out.push(c[start..i].iter().collect::<String>().trim().to_string());
                }
                start = i + 1;
                code = false;
            }
            ch if !ch.is_whitespace() => code = true,
            _ => {}
        }
        i += 1;
    }
    if code {
        out.push(c[start..].iter().collect::<String>().trim().to_string());
    }
    out
}

/// A statement past the comments that may open it.
fn head(statement: &str) -> &str {
    let mut head = statement.trim_start();
    loop {
        if let Some(rest) = head.strip_prefix("--") {
            head = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = head.strip_prefix("/*") {
            head = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    head
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
        let head = head(&statement);
        let words: Vec<&str> = head.split_whitespace().take(4).collect();
        let first = words.first().map(|w| w.to_ascii_lowercase());
        let keyword = words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("concurrently"));
        let text = match (first.as_deref(), keyword) {
            (Some("create" | "drop" | "reindex"), Some(_)) => {
                // The keyword is the first whole word "concurrently" of the head.
                let at = head
                    .char_indices()
                    .filter(|(i, _)| {
                        head.get(*i..*i + 12)
                            .is_some_and(|w| w.eq_ignore_ascii_case("concurrently"))
                            && (*i == 0 || head[..*i].ends_with(char::is_whitespace))
                    })
                    .map(|(i, _)| i)
                    .next();
                match at {
                    Some(i) => format!(
                        "{}{}{}",
                        &statement[..statement.len() - head.len()],
                        &head[..i],
                        &head[i + 12..]
                    ),
                    None => statement.clone(),
                }
            }
            _ => statement.clone(),
        };
        out.push_str(&text);
        out.push_str(";\n");
    }
    out.into()
}

/// The names of the indexes `statement` builds concurrently (`CREATE [UNIQUE] INDEX
/// CONCURRENTLY [IF NOT EXISTS] name`), unquoted and lower-cased as PostgreSQL stores them.
pub fn concurrent_index(statement: &str) -> Option<String> {
    let head = head(statement);
    let words: Vec<String> = head.split_whitespace().map(|w| w.to_string()).collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let mut i = 0;
    let want = |i: usize, w: &str| lower.get(i).is_some_and(|x| x == w);
    if !want(i, "create") {
        return None;
    }
    i += 1;
    if want(i, "unique") {
        i += 1;
    }
    if !(want(i, "index") && want(i + 1, "concurrently")) {
        return None;
    }
    i += 2;
    if want(i, "if") && want(i + 1, "not") && want(i + 2, "exists") {
        i += 3;
    }
    let name = words.get(i)?;
    if name.eq_ignore_ascii_case("on") {
        return None;
    }
    // A quoted name keeps its case; one with spaces is not read (its clean-up is skipped).
    match name.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').map(str::to_string),
        None => Some(name.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (sql, want) in cases {
            assert_eq!(concurrent_index(sql).as_deref(), want, "{sql}");
        }
    }
}
