//! Values in transit: the forms a source can hand over ([`Raw`]), the typed value a target
//! column takes ([`Value`]), the exact conversion between them for each column kind (with
//! every odd form real SQLite databases hold), and the dialect-independent encodings used for
//! JSON export and for the content checksum.

use base64::Engine as _;
use std::fmt;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// What a column holds, from its declared type in either dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// `integer` (PostgreSQL: 4 bytes; SQLite: 8 bytes).
    Int {
        /// Whether the column is 4 bytes wide (PostgreSQL `integer`).
        int4: bool,
    },
    /// `double precision` / `REAL`.
    Float,
    /// `varchar(n)` / `text`.
    Text,
    /// `boolean`.
    Bool,
    /// `timestamptz` / `DATETIME`.
    Timestamp,
    /// `jsonb` / `JSON`.
    Json,
    /// `bytea` / `BLOB`.
    Bytes,
}

/// The kind of a column from its catalog type (as `schema` reports it, lower case).
pub fn kind_of(data_type: &str, postgres: bool) -> Option<ColKind> {
    let t = data_type.trim();
    Some(
        if t == "integer" || t == "int" || t == "int4" || t == "bigint" || t == "smallint" {
            ColKind::Int {
                int4: postgres && t != "bigint",
            }
        } else if t == "double precision" || t == "real" || t == "float" || t == "double" {
            ColKind::Float
        } else if t == "text"
            || t.starts_with("varchar")
            || t.starts_with("character varying")
            || t.starts_with("char")
        {
            ColKind::Text
        } else if t == "boolean" || t == "bool" {
            ColKind::Bool
        } else if t.starts_with("timestamp") || t == "datetime" {
            ColKind::Timestamp
        } else if t == "jsonb" || t == "json" {
            ColKind::Json
        } else if t == "bytea" || t == "blob" {
            ColKind::Bytes
        } else {
            return None;
        },
    )
}

/// A value as a source hands it over, before it is checked against the target column.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// A boolean (PostgreSQL, JSON).
    Bool(bool),
    /// A parsed JSON value (PostgreSQL `jsonb`, JSON export).
    Json(serde_json::Value),
    /// A timestamp (PostgreSQL).
    Time(OffsetDateTime),
}

impl fmt::Display for Raw {
    /// The value as an error message shows it (long values shortened).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Null => f.write_str("NULL"),
            Raw::Int(i) => write!(f, "{i}"),
            Raw::Real(r) => write!(f, "{r}"),
            Raw::Text(t) => {
                let short: String = t.chars().take(80).collect();
                let more = if t.chars().count() > 80 { "..." } else { "" };
                write!(f, "{:?}{more}", short)
            }
            Raw::Blob(b) => write!(f, "<{} bytes>", b.len()),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Json(v) => {
                let s = v.to_string();
                write!(f, "{}", s.chars().take(80).collect::<String>())
            }
            Raw::Time(t) => write!(f, "{t}"),
        }
    }
}

/// A value ready for a target column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// Integer.
    Int(i64),
    /// Float (non-finite allowed: PostgreSQL stores them).
    Float(f64),
    /// Text without NUL characters.
    Text(String),
    /// Boolean.
    Bool(bool),
    /// UTC timestamp, microsecond precision.
    Timestamp(OffsetDateTime),
    /// JSON document.
    Json(serde_json::Value),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Converts `raw` for a column of `kind`, or says why it cannot be (the caller adds table,
/// row id and column). Empty text in a non-text column becomes NULL (SQLite forms leave empty
/// strings where Python wrote `""` for "no value"); a NOT NULL column then rejects it.
pub fn convert(raw: Raw, kind: ColKind) -> Result<Value, String> {
    use ColKind as K;
    Ok(match (kind, raw) {
        (_, Raw::Null) => Value::Null,
        (K::Text, Raw::Text(t)) => check_text(t)?,
        (K::Int { .. } | K::Float | K::Bool | K::Timestamp | K::Json, Raw::Text(t))
            if t.trim().is_empty() =>
        {
            Value::Null
        }
        (K::Int { int4 }, raw) => {
            let i = match raw {
                Raw::Int(i) => i,
                Raw::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => r as i64,
                Raw::Text(t) => t
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| "not an integer".to_string())?,
                other => return Err(format!("not an integer ({})", type_name(&other))),
            };
            if int4 && i32::try_from(i).is_err() {
                return Err("out of range for a 4-byte integer".into());
            }
            Value::Int(i)
        }
        (K::Float, raw) => Value::Float(match raw {
            Raw::Real(r) => r,
            Raw::Int(i) => i as f64,
            Raw::Text(t) => parse_float(&t).ok_or("not a number")?,
            other => return Err(format!("not a number ({})", type_name(&other))),
        }),
        (K::Text, Raw::Int(i)) => Value::Text(i.to_string()),
        (K::Text, Raw::Real(r)) => Value::Text(r.to_string()),
        (K::Text, Raw::Blob(b)) => {
            check_text(String::from_utf8(b).map_err(|_| "bytes that are not UTF-8 text")?)?
        }
        (K::Text, other) => return Err(format!("not text ({})", type_name(&other))),
        (K::Bool, raw) => Value::Bool(match raw {
            Raw::Bool(b) => b,
            Raw::Int(0) => false,
            Raw::Int(1) => true,
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "0" | "false" | "f" => false,
                "1" | "true" | "t" => true,
                _ => return Err("not a boolean (0/1/true/false)".into()),
            },
            _ => return Err("not a boolean (0/1/true/false)".into()),
        }),
        (K::Timestamp, Raw::Time(t)) => Value::Timestamp(t.to_offset(UtcOffset::UTC)),
        (K::Timestamp, Raw::Text(t)) => Value::Timestamp(parse_timestamp(&t)?),
        (K::Timestamp, other) => return Err(format!("not a timestamp ({})", type_name(&other))),
        (K::Json, Raw::Json(v)) => check_json(v)?,
        (K::Json, Raw::Text(t)) => {
            check_json(serde_json::from_str(&t).map_err(|e| format!("invalid JSON ({e})"))?)?
        }
        (K::Json, other) => return Err(format!("not JSON ({})", type_name(&other))),
        (K::Bytes, Raw::Blob(b)) => Value::Bytes(b),
        (K::Bytes, Raw::Text(t)) => Value::Bytes(t.into_bytes()),
        (K::Bytes, other) => return Err(format!("not bytes ({})", type_name(&other))),
    })
}

fn type_name(raw: &Raw) -> &'static str {
    match raw {
        Raw::Null => "null",
        Raw::Int(_) => "an integer",
        Raw::Real(_) => "a float",
        Raw::Text(_) => "text",
        Raw::Blob(_) => "bytes",
        Raw::Bool(_) => "a boolean",
        Raw::Json(_) => "JSON",
        Raw::Time(_) => "a timestamp",
    }
}

/// The one JSON null rule of `copy`, `import` and `export`: to the app (SQLAlchemy's `JSON`
/// reads both as `None`) a JSON `null` and SQL NULL are one value, and the JSON export cannot
/// tell them apart. So in a JSON column that allows NULL both are SQL NULL, and in a NOT NULL
/// JSON column both are the JSON value `null`: every route gives the same result, and a row
/// the backend wrote (`'null'` text in SQLite for `None`) loads on PostgreSQL.
pub fn json_null_rule(v: Value, kind: ColKind, nullable: bool) -> Value {
    match (kind, v, nullable) {
        (ColKind::Json, Value::Json(serde_json::Value::Null), true) => Value::Null,
        (ColKind::Json, Value::Null, false) => Value::Json(serde_json::Value::Null),
        (_, v, _) => v,
    }
}

/// NUL is refused on every target, SQLite included, so that data can always move on to
/// PostgreSQL (whose text and jsonb cannot hold it) and be exported again.
fn check_json(v: serde_json::Value) -> Result<Value, String> {
    if json_has_nul(&v) {
        return Err("JSON holding a NUL character, which PostgreSQL cannot store".into());
    }
    Ok(Value::Json(v))
}

fn check_text(t: String) -> Result<Value, String> {
    if t.contains('\0') {
        return Err("text holding a NUL character, which PostgreSQL cannot store".into());
    }
    Ok(Value::Text(t))
}

fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// Parses a float, including the non-finite spellings the JSON export writes.
fn parse_float(t: &str) -> Option<f64> {
    match t.trim() {
        "NaN" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        s => s.parse::<f64>().ok(),
    }
}

/// Parses the timestamp forms found in SQLite databases: `YYYY-MM-DD HH:MM:SS[.ffffff]`, with
/// `T` instead of the space, with `Z` or a `+HH:MM` offset; naive values are UTC. More than
/// six fractional digits would be rounded by PostgreSQL, so they are refused.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let t = text.trim().as_bytes();
    let bad = || "not a timestamp (expected YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH:MM])".to_string();
    // Fixed layout, parsed by hand: this runs for every timestamp of every row.
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        t.get(range)?.iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let shape_ok = t.len() >= 19
        && t[4] == b'-'
        && t[7] == b'-'
        && (t[10] == b' ' || t[10] == b'T')
        && t[13] == b':'
        && t[16] == b':';
    if !shape_ok {
        return Err(bad());
    }
    let (year, month, day) = (
        num(0..4).ok_or_else(bad)?,
        num(5..7).ok_or_else(bad)?,
        num(8..10).ok_or_else(bad)?,
    );
    let (hour, minute, second) = (
        num(11..13).ok_or_else(bad)?,
        num(14..16).ok_or_else(bad)?,
        num(17..19).ok_or_else(bad)?,
    );
    let mut rest = &t[19..];
    let mut micros = 0u32;
    if let Some(r) = rest.strip_prefix(b".") {
        let digits = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        if digits > 6 {
            return Err("timestamp with more than microsecond precision".into());
        }
        micros = r[..digits]
            .iter()
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
            * 10u32.pow(6 - digits as u32);
        rest = &r[digits..];
    }
    let offset = match rest {
        b"" | b"Z" | b"z" => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let h = ((h1 - b'0') * 10 + (h2 - b'0')) as i8;
            let m = ((m1 - b'0') * 10 + (m2 - b'0')) as i8;
            let s = if *sign == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(s * h, s * m, 0).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    let month = time::Month::try_from(month as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| bad())?;
    let clock = time::Time::from_hms_micro(hour as u8, minute as u8, second as u8, micros)
        .map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, clock)
        .assume_offset(offset)
        .to_offset(UtcOffset::UTC))
}

/// ISO 8601 UTC with a `Z`, fraction only when there is one (`2025-12-06T10:11:12.123456Z`).
pub fn format_iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    // Digits written by hand: export formats every timestamp of every row.
    let mut out = Vec::with_capacity(27);
    push_num(&mut out, t.year().max(0) as u32, 4);
    out.push(b'-');
    push_num(&mut out, t.month() as u32, 2);
    out.push(b'-');
    push_num(&mut out, t.day().into(), 2);
    out.push(b'T');
    push_num(&mut out, t.hour().into(), 2);
    out.push(b':');
    push_num(&mut out, t.minute().into(), 2);
    out.push(b':');
    push_num(&mut out, t.second().into(), 2);
    if t.microsecond() != 0 {
        out.push(b'.');
        push_num(&mut out, t.microsecond(), 6);
    }
    out.push(b'Z');
    String::from_utf8(out).expect("ASCII digits")
}

fn push_num(out: &mut Vec<u8>, n: u32, width: usize) {
    let start = out.len();
    let mut n = n;
    for _ in 0..width {
        out.push(b'0' + (n % 10) as u8);
        n /= 10;
    }
    out[start..].reverse();
}

/// The SQLite spelling SQLAlchemy uses: `2025-12-06 10:11:12[.123456]`, UTC.
pub fn format_sqlite(t: OffsetDateTime) -> String {
    let iso = format_iso(t);
    iso.trim_end_matches('Z').replacen('T', " ", 1)
}

impl Value {
    /// The JSON form used by `export`: bytes as base64, timestamps ISO 8601 UTC, non-finite
    /// floats as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers;
    /// `import` reads them back into float columns).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(i) => J::from(*i),
            Value::Float(f) if f.is_finite() => J::from(*f),
            Value::Float(f) if f.is_nan() => J::from("NaN"),
            Value::Float(f) if *f > 0.0 => J::from("Infinity"),
            Value::Float(_) => J::from("-Infinity"),
            Value::Text(t) => J::from(t.as_str()),
            Value::Bool(b) => J::from(*b),
            Value::Timestamp(t) => J::from(format_iso(*t)),
            Value::Json(v) => v.clone(),
            Value::Bytes(b) => J::from(base64::engine::general_purpose::STANDARD.encode(b)),
        }
    }

    /// Writes [`Value::to_json`]'s form straight to `out`, without building a JSON tree
    /// (export writes millions of these).
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        use std::io::Write as _;
        match self {
            Value::Null => out.write_all(b"null"),
            Value::Int(i) => out.write_all(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Float(f) if f.is_finite() => {
                out.write_all(ryu::Buffer::new().format_finite(*f).as_bytes())
            }
            Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
            Value::Text(t) => serde_json::to_writer(out, t.as_str()).map_err(std::io::Error::from),
            Value::Json(v) => serde_json::to_writer(out, v).map_err(std::io::Error::from),
            Value::Timestamp(t) => write!(out, "\"{}\"", format_iso(*t)),
            Value::Bytes(b) => {
                out.write_all(b"\"")?;
                {
                    let mut enc = base64::write::EncoderWriter::new(
                        &mut *out,
                        &base64::engine::general_purpose::STANDARD,
                    );
                    enc.write_all(b)?;
                    enc.finish()?;
                }
                out.write_all(b"\"")
            }
            Value::Float(_) => {
                serde_json::to_writer(out, &self.to_json()).map_err(std::io::Error::from)
            }
        }
    }

    /// Feeds a dialect-independent encoding into `h` (for the copy checksum): JSON objects
    /// with sorted keys (jsonb reorders them), timestamps as microseconds, floats as bits.
    pub fn hash_into(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        match self {
            Value::Null => 0u8.hash(h),
            Value::Int(i) => (1u8, i).hash(h),
            Value::Float(f) => (
                2u8,
                if f.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    f.to_bits()
                },
            )
                .hash(h),
            Value::Text(t) => (3u8, t).hash(h),
            Value::Bool(b) => (4u8, b).hash(h),
            Value::Timestamp(t) => (5u8, t.unix_timestamp_nanos() / 1000).hash(h),
            Value::Json(v) => (6u8, canonical_json(v)).hash(h),
            Value::Bytes(b) => (7u8, b).hash(h),
        }
    }
}

/// JSON text with object keys sorted at every level.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let mut keys: Vec<_> = o.keys().collect();
                keys.sort();
                let mut m = serde_json::Map::new();
                for k in keys {
                    m.insert(k.clone(), sort(&o[k]));
                }
                serde_json::Value::Object(m)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Reads a JSON export value back into a [`Raw`] for a column of `kind`: strings are base64
/// for bytes columns, and any JSON value is the document itself for JSON columns.
pub fn raw_from_json(v: serde_json::Value, kind: ColKind) -> Result<Raw, String> {
    use serde_json::Value as J;
    Ok(match (kind, v) {
        (_, J::Null) => Raw::Null,
        (ColKind::Json, v) => Raw::Json(v),
        (ColKind::Bytes, J::String(s)) => Raw::Blob(
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|_| "not base64".to_string())?,
        ),
        (_, J::Bool(b)) => Raw::Bool(b),
        (_, J::Number(n)) => match n.as_i64() {
            Some(i) => Raw::Int(i),
            None => Raw::Real(n.as_f64().ok_or("number out of range")?),
        },
        (_, J::String(s)) => Raw::Text(s),
        (_, other) => {
            return Err(format!(
                "unexpected JSON {}",
                if other.is_array() { "array" } else { "object" }
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use ColKind as K;

    fn ts(s: &str) -> Value {
        Value::Timestamp(OffsetDateTime::parse(s, &Rfc3339).unwrap())
    }

    #[test]
    fn accepted_forms_convert_exactly() {
        let int4 = K::Int { int4: true };
        let cases: Vec<(Raw, ColKind, Value)> = vec![
            (Raw::Int(42), int4, Value::Int(42)),
            (Raw::Text(" 42 ".into()), int4, Value::Int(42)),
            (Raw::Real(3.0), int4, Value::Int(3)),
            (Raw::Text("".into()), int4, Value::Null),
            (
                Raw::Int(i64::MAX),
                K::Int { int4: false },
                Value::Int(i64::MAX),
            ),
            (Raw::Int(1), K::Bool, Value::Bool(true)),
            (Raw::Int(0), K::Bool, Value::Bool(false)),
            (Raw::Text("true".into()), K::Bool, Value::Bool(true)),
            (Raw::Text("FALSE".into()), K::Bool, Value::Bool(false)),
            (
                Raw::Text("2025-12-06 10:11:12".into()),
                K::Timestamp,
                ts("2025-12-06T10:11:12Z"),
            ),
            (
                Raw::Text("2025-12-06 10:11:12.123456".into()),
                K::Timestamp,
                ts("2025-12-06T10:11:12.123456Z"),
            ),
            (
                Raw::Text("2025-12-06 10:11:12.5".into()),
                K::Timestamp,
                ts("2025-12-06T10:11:12.5Z"),
            ),
            (
                Raw::Text("2025-12-06T10:11:12Z".into()),
                K::Timestamp,
                ts("2025-12-06T10:11:12Z"),
            ),
            (
                Raw::Text("2025-12-06T10:11:12+02:00".into()),
                K::Timestamp,
                ts("2025-12-06T08:11:12Z"),
            ),
            (
                Raw::Text("2025-12-06T10:11:12.000001-05:30".into()),
                K::Timestamp,
                ts("2025-12-06T15:41:12.000001Z"),
            ),
            (
                Raw::Text("[\"a\",\"b\"]".into()),
                K::Json,
                Value::Json(serde_json::json!(["a", "b"])),
            ),
            (
                Raw::Text("héllo 🧘 \"q\" \\".into()),
                K::Text,
                Value::Text("héllo 🧘 \"q\" \\".into()),
            ),
            (Raw::Int(7), K::Text, Value::Text("7".into())),
            (Raw::Int(2), K::Float, Value::Float(2.0)),
            (
                Raw::Text("Infinity".into()),
                K::Float,
                Value::Float(f64::INFINITY),
            ),
            (
                Raw::Blob(vec![0, 255]),
                K::Bytes,
                Value::Bytes(vec![0, 255]),
            ),
            (Raw::Null, K::Bool, Value::Null),
        ];
        for (raw, kind, want) in cases {
            let shown = raw.to_string();
            assert_eq!(convert(raw, kind).unwrap(), want, "{shown} as {kind:?}");
        }
    }

    #[test]
    fn bad_values_say_why() {
        let int4 = K::Int { int4: true };
        let cases: Vec<(Raw, ColKind, &str)> = vec![
            (Raw::Text("abc".into()), int4, "not an integer"),
            (Raw::Int(1 << 40), int4, "out of range"),
            (Raw::Text("{not json".into()), K::Json, "invalid JSON"),
            (Raw::Text("a\0b".into()), K::Text, "NUL"),
            (
                Raw::Json(serde_json::json!({"note": "a\u{0}b"})),
                K::Json,
                "NUL",
            ),
            (Raw::Text(r#"{"a\u0000": 1}"#.into()), K::Json, "NUL"),
            (
                Raw::Text("2025-13-45 99:00:00".into()),
                K::Timestamp,
                "not a timestamp",
            ),
            (
                Raw::Text("2025-12-06 10:11:12.1234567".into()),
                K::Timestamp,
                "microsecond",
            ),
            (Raw::Int(2), K::Bool, "not a boolean"),
            (Raw::Text("yes please".into()), K::Bool, "not a boolean"),
        ];
        for (raw, kind, want) in cases {
            let shown = raw.to_string();
            let e = convert(raw, kind).unwrap_err();
            assert!(e.contains(want), "{shown}: {e}");
        }
    }

    #[test]
    fn json_round_trip_of_every_class() {
        let values = [
            (Value::Int(-5), K::Int { int4: true }),
            (Value::Float(1.5e300), K::Float),
            (Value::Float(f64::NEG_INFINITY), K::Float),
            (Value::Text("x".into()), K::Text),
            (Value::Bool(true), K::Bool),
            (ts("2025-12-06T10:11:12.000042Z"), K::Timestamp),
            (
                Value::Json(serde_json::json!({"b": 1, "a": [null]})),
                K::Json,
            ),
            (Value::Bytes(vec![1, 2, 3, 0]), K::Bytes),
            (Value::Null, K::Text),
        ];
        for (v, kind) in values {
            let back = convert(raw_from_json(v.to_json(), kind).unwrap(), kind).unwrap();
            assert_eq!(back, v);
        }
        let nan = convert(
            raw_from_json(Value::Float(f64::NAN).to_json(), K::Float).unwrap(),
            K::Float,
        )
        .unwrap();
        assert!(matches!(nan, Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn formats() {
        let t = parse_timestamp("2025-12-06 10:11:12.120000").unwrap();
        assert_eq!(format_iso(t), "2025-12-06T10:11:12.120000Z");
        assert_eq!(
            format_sqlite(parse_timestamp("2025-12-06T10:11:12Z").unwrap()),
            "2025-12-06 10:11:12"
        );
        assert_eq!(
            canonical_json(&serde_json::json!({"b": {"d": 1, "c": 2}, "a": 0})),
            r#"{"a":0,"b":{"c":2,"d":1}}"#
        );
    }
}
