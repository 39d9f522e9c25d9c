//! The one place that keeps secrets out of output: every password the tool learns is
//! registered here, and every line that leaves the process (logs, errors, panics) goes
//! through [`scrub`].

use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Remembers `secret` and its fully percent-encoded spelling so that [`scrub`] masks both from
/// then on. Callers register the spelling a URL held too (it may encode only some characters,
/// `%40` but not `-`), so every spelling that can reach an output is masked.
pub fn register(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for s in [secret.to_string(), encoded] {
        if !secrets.contains(&s) {
            secrets.push(s);
        }
    }
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn scrub(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Installs a panic hook that scrubs the panic message before printing it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "yogaflow-migrate: internal error (panic{location}): {}",
            scrub(&payload)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_raw_and_encoded_forms() {
        register("s3cr@t/pw");
        assert_eq!(scrub("pw=s3cr@t/pw"), "pw=***");
        assert_eq!(scrub("url=u:s3cr%40t%2Fpw@h"), "url=u:***@h");
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
