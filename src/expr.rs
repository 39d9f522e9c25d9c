//! CHECK expressions by meaning: a small parser for the part of SQL that constraints use
//! (AND/OR/NOT, comparisons, BETWEEN, IN, `= ANY (ARRAY[...])`, IS [NOT] NULL, literals,
//! columns, calls, casts) and one canonical spelling of what it read, so that
//! `rating BETWEEN 1 AND 5`, `(rating >= 1) AND (rating <= 5)` and PostgreSQL's
//! `((rating >= (1)::double precision) AND (rating <= (5)::double precision))` compare equal.
//! Pure; what it cannot parse is compared by its spelling instead.

/// The canonical spelling of `expr`, or `None` when it is outside the subset read here.
pub fn canonical(expr: &str) -> Option<String> {
    let tokens = tokenize(expr)?;
    let mut p = Parser { tokens, at: 0 };
    let node = p.or()?;
    (p.at == p.tokens.len()).then(|| node.show(0))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(String),
    Open,
    Close,
    Comma,
    OpenBracket,
    CloseBracket,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == '[' {
            out.push(Tok::OpenBracket);
            i += 1;
        } else if ch == ']' {
            out.push(Tok::CloseBracket);
            i += 1;
        } else if ch == '\'' || ch == '"' {
            let (text, next) = quoted(&c, i)?;
            i = next;
            out.push(if ch == '\'' {
                Tok::Str(text)
            } else {
                Tok::Quoted(text)
            });
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < c.len()
                && (c[i].is_ascii_digit() || c[i] == '.' || c[i] == 'e' || c[i] == 'E')
            {
                i += 1;
            }
            out.push(Tok::Num(number(&c[start..i].iter().collect::<String>())));
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '$') {
                i += 1;
            }
            out.push(Tok::Word(
                c[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let op = match two.as_str() {
                "<=" | ">=" | "<>" | "!=" | "::" | "||" => two,
                _ if "=<>+-*/%".contains(ch) => ch.to_string(),
                _ => return None,
            };
            i += op.chars().count();
            out.push(Tok::Op(if op == "!=" { "<>".into() } else { op }));
        }
    }
    Some(out)
}

/// The text of the quoted token opening at `start` (a doubled quote stands for one), and the
/// position after it; `None` when it never closes.
fn quoted(c: &[char], start: usize) -> Option<(String, usize)> {
    let q = c[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match *c.get(i)? {
            ch if ch == q && c.get(i + 1) == Some(&q) => {
                text.push(q);
                i += 2;
            }
            ch if ch == q => return Some((text, i + 1)),
            other => {
                text.push(other);
                i += 1;
            }
        }
    }
}

/// `1.0` and `1` are the same number to a CHECK.
fn number(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Ok(v) => format!("{v}"),
        Err(_) => text.to_string(),
    }
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp(Box<Node>, String, Box<Node>),
    In(Box<Node>, Vec<Node>, bool),
    IsNull(Box<Node>, bool),
    Call(String, Vec<Node>),
    Leaf(String),
}

impl Node {
    /// The canonical text; `parent` is the binding strength around it (0 none, 1 OR, 2 AND).
    fn show(&self, parent: u8) -> String {
        let wrap = |s: String, mine: u8| {
            if parent > mine && parent != 0 {
                format!("({s})")
            } else {
                s
            }
        };
        match self {
            Node::And(items) => {
                let mut parts: Vec<String> = items.iter().map(|n| n.show(2)).collect();
                parts.sort();
                wrap(parts.join(" and "), 2)
            }
            Node::Or(items) => {
                let mut parts: Vec<String> = items.iter().map(|n| n.show(1)).collect();
                parts.sort();
                let s = parts.join(" or ");
                if parent >= 2 {
                    format!("({s})")
                } else {
                    s
                }
            }
            Node::Not(n) => format!("not {}", n.show(3)),
            Node::Cmp(a, op, b) => {
                let s = format!("{} {op} {}", a.show(4), b.show(4));
                if parent >= 4 {
                    format!("({s})")
                } else {
                    s
                }
            }
            Node::In(a, items, negated) => {
                let mut parts: Vec<String> = items.iter().map(|n| n.show(0)).collect();
                parts.sort();
                parts.dedup();
                let not = if *negated { "not " } else { "" };
                format!("{} {not}in ({})", a.show(4), parts.join(", "))
            }
            Node::IsNull(a, negated) => {
                format!(
                    "{} is {}null",
                    a.show(4),
                    if *negated { "not " } else { "" }
                )
            }
            Node::Call(name, args) => format!(
                "{name}({})",
                args.iter()
                    .map(|a| a.show(0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Node::Leaf(s) => s.clone(),
        }
    }
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.word(w) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<Node> {
        let mut items = vec![self.and()?];
        while self.eat_word("or") {
            items.push(self.and()?);
        }
        Some(flatten(items, true))
    }

    fn and(&mut self) -> Option<Node> {
        let mut items = vec![self.not()?];
        while self.eat_word("and") {
            items.push(self.not()?);
        }
        Some(flatten(items, false))
    }

    fn not(&mut self) -> Option<Node> {
        if self.eat_word("not") {
            return Some(Node::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Option<Node> {
        let left = self.sum()?;
        if self.eat_word("between") {
            let low = self.sum()?;
            if !self.eat_word("and") {
                return None;
            }
            let high = self.sum()?;
            return Some(Node::And(vec![
                Node::Cmp(Box::new(left.clone()), ">=".into(), Box::new(low)),
                Node::Cmp(Box::new(left), "<=".into(), Box::new(high)),
            ]));
        }
        let negated = self.eat_word("not");
        if self.eat_word("in") {
            if !self.eat(&Tok::Open) {
                return None;
            }
            let items = self.list(&Tok::Close)?;
            return Some(Node::In(Box::new(left), items, negated));
        }
        if negated {
            return None;
        }
        if self.eat_word("is") {
            let negated = self.eat_word("not");
            if !self.eat_word("null") {
                return None;
            }
            return Some(Node::IsNull(Box::new(left), negated));
        }
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            if ["=", "<>", "<", "<=", ">", ">="].contains(&op.as_str()) {
                self.at += 1;
                // PostgreSQL's spelling of IN: `x = ANY (ARRAY[...])`.
                if op == "=" && self.eat_word("any") {
                    if !self.eat(&Tok::Open) {
                        return None;
                    }
                    let inner = self.sum()?;
                    if !self.eat(&Tok::Close) {
                        return None;
                    }
                    let Node::Call(name, items) = inner else {
                        return None;
                    };
                    return (name == "array").then(|| Node::In(Box::new(left), items, false));
                }
                let right = self.sum()?;
                // `5 >= x` is `x <= 5`: columns on the left.
                return Some(match (&left, &right) {
                    (Node::Leaf(l), Node::Leaf(_)) if is_literal(l) => {
                        Node::Cmp(Box::new(right), flip(&op).into(), Box::new(left))
                    }
                    _ => Node::Cmp(Box::new(left), op, Box::new(right)),
                });
            }
        }
        Some(left)
    }

    /// Arithmetic and concatenation are kept as written (rare in constraints).
    fn sum(&mut self) -> Option<Node> {
        let mut left = self.cast()?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            if !["+", "-", "*", "/", "%", "||"].contains(&op.as_str()) {
                break;
            }
            self.at += 1;
            let right = self.cast()?;
            left = Node::Leaf(format!("{} {op} {}", left.show(4), right.show(4)));
        }
        Some(left)
    }

    /// A value and any `::type` casts after it, which change nothing a CHECK compares.
    fn cast(&mut self) -> Option<Node> {
        let node = self.atom()?;
        while self.eat(&Tok::Op("::".into())) {
            // The type: words, an optional (n), an optional [].
            if !matches!(self.peek(), Some(Tok::Word(_))) {
                return None;
            }
            while matches!(self.peek(), Some(Tok::Word(_))) {
                self.at += 1;
            }
            if self.eat(&Tok::Open) {
                while !self.eat(&Tok::Close) {
                    self.peek()?;
                    self.at += 1;
                }
            }
            if self.eat(&Tok::OpenBracket) && !self.eat(&Tok::CloseBracket) {
                return None;
            }
        }
        Some(node)
    }

    fn atom(&mut self) -> Option<Node> {
        match self.peek()?.clone() {
            Tok::Open => {
                self.at += 1;
                let inner = self.or()?;
                self.eat(&Tok::Close).then_some(inner)
            }
            Tok::Num(n) => {
                self.at += 1;
                Some(Node::Leaf(n))
            }
            Tok::Op(op) if op == "-" => {
                self.at += 1;
                match self.atom()? {
                    Node::Leaf(n) if is_literal(&n) => Some(Node::Leaf(format!("-{n}"))),
                    _ => None,
                }
            }
            Tok::Str(s) => {
                self.at += 1;
                Some(Node::Leaf(format!("'{}'", s.replace('\'', "''"))))
            }
            Tok::Quoted(name) => {
                self.at += 1;
                Some(Node::Leaf(name.to_lowercase()))
            }
            Tok::Word(w) if w == "array" => {
                self.at += 1;
                if !self.eat(&Tok::OpenBracket) {
                    return None;
                }
                let items = self.list(&Tok::CloseBracket)?;
                Some(Node::Call("array".into(), items))
            }
            Tok::Word(w) => {
                if ["and", "or", "not", "in", "is", "between"].contains(&w.as_str()) {
                    return None;
                }
                self.at += 1;
                if self.eat(&Tok::Open) {
                    let args = self.list(&Tok::Close)?;
                    return Some(Node::Call(w, args));
                }
                Some(Node::Leaf(w))
            }
            _ => None,
        }
    }

    /// Comma-separated expressions up to `end` (consumed).
    fn list(&mut self, end: &Tok) -> Option<Vec<Node>> {
        let mut items = Vec::new();
        if self.eat(end) {
            return Some(items);
        }
        loop {
            items.push(self.sum()?);
            if self.eat(end) {
                return Some(items);
            }
            if !self.eat(&Tok::Comma) {
                return None;
            }
        }
    }
}

fn is_literal(s: &str) -> bool {
    s.starts_with('\'')
        || s.starts_with('-')
        || s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

fn flip(op: &str) -> &'static str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        "<>" => "<>",
        _ => "=",
    }
}

/// Nested ANDs (or ORs) as one list: `(a and b) and c` is `a and b and c`.
fn flatten(items: Vec<Node>, or: bool) -> Node {
    if items.len() == 1 {
        return items.into_iter().next().expect("one item");
    }
    let mut flat = Vec::new();
    for item in items {
        match (item, or) {
            (Node::Or(inner), true) | (Node::And(inner), false) => flat.extend(inner),
            (other, _) => flat.push(other),
        }
    }
    if or {
        Node::Or(flat)
    } else {
        Node::And(flat)
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn spellings_that_mean_the_same_are_equal() {
        let same = [
            (
                "rating BETWEEN 1 AND 5",
                "((rating >= (1)::double precision) AND (rating <= (5)::double precision))",
            ),
            ("rating BETWEEN 1 AND 5", "(rating >= 1) AND (rating <= 5)"),
            ("rating BETWEEN 1 AND 5", "rating <= 5.0 and 1 <= rating"),
            (
                "difficulty IN ('beginner', 'intermediate', 'advanced')",
                "((difficulty)::text = ANY ((ARRAY['beginner'::character varying, 'intermediate'::character varying, 'advanced'::character varying])::text[]))",
            ),
            (
                "difficulty IN ('beginner', 'intermediate', 'advanced')",
                "\"difficulty\" in ('advanced','beginner','intermediate')",
            ),
            ("a IS NOT NULL OR b = 1", "(b = 1) OR (a IS NOT NULL)"),
            ("x != 0", "x <> 0"),
        ];
        for (a, b) in same {
            assert_eq!(canonical(a), canonical(b), "{a} vs {b}");
            assert!(canonical(a).is_some(), "{a}");
        }
    }

    #[test]
    fn different_meanings_stay_different() {
        let different = [
            ("rating BETWEEN 1 AND 5", "rating BETWEEN 1 AND 10"),
            ("rating BETWEEN 1 AND 5", "rating > 1 AND rating < 5"),
            (
                "difficulty IN ('beginner', 'advanced')",
                "difficulty IN ('beginner', 'intermediate', 'advanced')",
            ),
            ("a = 1 OR b = 2", "a = 1 AND b = 2"),
            ("a = 1 AND (b = 2 OR c = 3)", "(a = 1 AND b = 2) OR c = 3"),
            ("name <> ''", "name = ''"),
        ];
        for (a, b) in different {
            assert_ne!(canonical(a), canonical(b), "{a} vs {b}");
        }
    }

    #[test]
    fn outside_the_subset_is_none() {
        assert_eq!(canonical("x ~ '^a'"), None);
        assert_eq!(canonical("(a = 1"), None);
    }
}
