//! What the PostgreSQL and SQLite parsers share: libpq's percent-decoding, the `?key=value`
//! query string, and the rule that an error must not quote a URL part that may hold a password.

use crate::error::{Error, Result};

/// Percent-decoding as libpq does it: `%` must be followed by two hex digits, `%00` is
/// refused, and the result must be UTF-8. Errors name the part, never its text (it may be
/// the password).
pub(super) fn decode(part: &str, what: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err(Error::config(format!(
                "DATABASE_URL {what} holds an invalid percent-encoded token ('%' must be \
                 followed by two hex digits; a literal '%' is %25)"
            )));
        };
        let byte = (hi * 16 + lo) as u8;
        if byte == 0 {
            return Err(Error::config(format!(
                "DATABASE_URL {what} holds %00, which libpq forbids"
            )));
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        Error::config(format!(
            "DATABASE_URL {what} is not valid UTF-8 once decoded"
        ))
    })
}

/// Splits `rest` at its first `?` into the part before and the decoded `key=value` pairs, in
/// order. A `password` value is registered with [`crate::redact`] before it can be printed.
pub(super) fn split_query(rest: &str) -> Result<(&str, Vec<(String, String)>)> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // As in libpq: exactly one '=' per parameter.
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::config(format!(
                "DATABASE_URL parameter '{}' has no '=' (key=value)",
                decode(pair, "parameter name")?
            )));
        };
        let key = decode(k, "parameter name")?;
        if v.contains('=') {
            return Err(Error::config(format!(
                "DATABASE_URL parameter '{key}' has a second '=' (percent-encode it as %3D)"
            )));
        }
        // A parameter value may be the password: register it (as given and decoded) before
        // anything can print it.
        if key == "password" {
            crate::redact::register(v);
        }
        let value = decode(v, &format!("parameter '{key}'"))?;
        if key == "password" {
            crate::redact::register(&value);
        }
        params.push((key, value));
    }
    Ok((main, params))
}

/// `e`, or when the URL part it quotes may hold part of the password, a message that quotes
/// nothing.
pub(super) fn unechoed(e: Error, may_hold_password: bool) -> Error {
    if !may_hold_password {
        return e;
    }
    Error::config(
        "DATABASE_URL cannot be read past the user part, and it holds an '@' there: a \
         password with '/', '@', ':', '?', '=' or '%' must be percent-encoded (%2F, %40, %3A, \
         %3F, %3D, %25)",
    )
}
