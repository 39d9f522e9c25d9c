//! Log output: env_logger on stderr, `RUST_LOG` honoured (default `info` for this tool,
//! `warn` for libraries), plain lines or one JSON object per line, every line scrubbed of
//! secrets.

use crate::config::LogFormat;
use std::io::Write;

/// Installs the logger; call once, before anything logs.
pub fn init(format: LogFormat) {
    let env = env_logger::Env::default().default_filter_or("warn,yogaflow_migrate=info");
    let mut builder = env_logger::Builder::from_env(env);
    match format {
        LogFormat::Plain => builder.format(|buf, record| {
            let msg = crate::redact::scrub(&record.args().to_string());
            writeln!(
                buf,
                "{} {:<5} {msg}",
                buf.timestamp_millis(),
                record.level()
            )
        }),
        LogFormat::Json => builder.format(|buf, record| {
            let line = serde_json::json!({
                "time": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": crate::redact::scrub(&record.args().to_string()),
            });
            writeln!(buf, "{line}")
        }),
    };
    builder.write_style(env_logger::WriteStyle::Never).init();
}
