//! Property tests over the two inputs an outsider controls: `DATABASE_URL` and an import file.
//! Whatever they hold, parsing never panics, a password marker never reaches a message, and a
//! damaged import ends with an error or its explicit end, never silently shorter.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use yogaflow_migrate::transfer::read::{json_reader, Event, TableSpec};
use yogaflow_migrate::transfer::value::ColKind;
use yogaflow_migrate::{redact, url};

const MARK: &str = "S3CRET";

/// The same cases on every run, so CI is repeatable; `FUZZ_SEED=n` explores others.
fn seed() -> RngSeed {
    RngSeed::Fixed(
        std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
    )
}

fn parse(text: &str) -> Result<String, String> {
    url::parse(text, &|_| None)
        .map(|p| format!("{} {:?}", p.url, p.warnings))
        .map_err(|e| redact::scrub(&e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() })]

    /// URLs with a password holding the marker among URL-hostile characters.
    #[test]
    fn urls_with_a_password_never_show_it(
        scheme in "(postgres|postgresql|postgresql\\+asyncpg|sqlite|sqlite\\+aiosqlite)",
        user in "[a-z%@:]{0,4}",
        before in "[-_.~!$&'()*+,;=:@?#%A-Za-z0-9]{0,5}",
        after in "[-_.~!$&'()*+,;=:@?#%A-Za-z0-9]{0,5}",
        tail in "[a-z0-9.:\\[\\],/?=&%@_-]{0,40}",
    ) {
        let text = format!("{scheme}://{user}:{before}{MARK}{after}@{tail}");
        let shown = match parse(&text) {
            Ok(s) | Err(s) => s,
        };
        prop_assert!(!shown.contains(MARK), "{text} -> {shown}");
    }

    /// Any text at all: a result or an error, never a panic.
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "\\PC{0,120}") {
        let _ = parse(&text);
        let _ = parse(&format!("postgresql://{text}"));
        let _ = parse(&format!("sqlite:///{text}"));
    }
}

fn specs() -> Vec<TableSpec> {
    let spec = |name: &str, cols: &[(&str, ColKind)]| TableSpec {
        name: name.into(),
        columns: cols.iter().map(|(c, _)| c.to_string()).collect(),
        source_kinds: cols.iter().map(|(_, k)| *k).collect(),
        target_kinds: cols.iter().map(|(_, k)| *k).collect(),
        target_nullable: cols.iter().map(|_| true).collect(),
        target_max_chars: cols.iter().map(|_| None).collect(),
        checksum: true,
    };
    let int4 = ColKind::Int { int4: true };
    vec![
        spec(
            "users",
            &[
                ("id", int4),
                ("email", ColKind::Text),
                ("is_active", ColKind::Bool),
                ("created_at", ColKind::Timestamp),
                ("score", ColKind::Float),
            ],
        ),
        spec(
            "poses",
            &[
                ("id", int4),
                ("metadata", ColKind::Json),
                ("image", ColKind::Bytes),
            ],
        ),
    ]
}

const GOOD: &str = r#"{"format":"yogaflow-export","format_version":1,"schema_version":5,"source_dialect":"sqlite","exported_at":"2025-12-06T10:11:12Z","tables":{
"users":[
{"id":1,"email":"zoë@example.com","is_active":true,"created_at":"2025-12-06T10:11:12.123456Z","score":1.5},
{"id":2,"email":"b@example.com","is_active":false,"created_at":"2025-12-06T10:11:12Z","score":"NaN"}],
"poses":[
{"id":1,"metadata":{"a":[1,2,{"b":null}]},"image":"AAEC"},
{"id":2,"metadata":null,"image":null}]}}
"#;

/// What a reader sent, in order: the last event tells how it ended.
fn read_all(bytes: Vec<u8>) -> (Vec<String>, Option<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let reader =
        std::thread::spawn(move || json_reader(Box::new(std::io::Cursor::new(bytes)), specs(), tx));
    let mut seen = Vec::new();
    let mut end = None;
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Table(s) => seen.push(s.name),
            Event::End => end = Some("end".to_string()),
            Event::Failed(e) => end = Some(redact::scrub(&e.to_string())),
            _ => {}
        }
    }
    reader.join().expect("the reader panicked");
    (seen, end)
}

#[test]
fn the_good_file_is_read_to_its_end() {
    let (seen, end) = read_all(GOOD.as_bytes().to_vec());
    assert_eq!(seen, vec!["users", "poses"]);
    assert_eq!(end.as_deref(), Some("end"));
}

#[test]
fn a_huge_name_is_not_echoed_whole() {
    let huge = "k".repeat(5 << 20);
    for text in [
        GOOD.replacen("\"email\"", &format!("\"{huge}\""), 1),
        GOOD.replacen("\"users\"", &format!("\"{huge}\""), 1),
    ] {
        let (_, end) = read_all(text.into_bytes());
        let message = end.expect("an ending");
        assert!(message.len() < 500, "{} bytes of message", message.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() })]

    /// A damaged export (bytes changed, cut, inserted) never panics the reader, and always
    /// ends with an explicit end or an error: a shorter read is never taken for a whole one.
    #[test]
    fn a_damaged_import_fails_or_ends_explicitly(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..6)
    ) {
        let mut bytes = GOOD.as_bytes().to_vec();
        for (at, how, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let (seen, end) = read_all(bytes);
        prop_assert!(end.is_some(), "no ending");
        if end.as_deref() == Some("end") {
            // A file read to its end held every table.
            prop_assert_eq!(seen, vec!["users".to_string(), "poses".to_string()]);
        }
    }
}
