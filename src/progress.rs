//! Progress of long work over a table's rows (a transfer, a backfill): a bar per table at a
//! terminal (rows, rate, time left), a log line every few seconds otherwise, and a summary at
//! the end.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Progress of one table.
pub struct TableProgress {
    table: String,
    total: Option<u64>,
    rows: u64,
    start: Instant,
    last_log: Instant,
    bar: Option<indicatif::ProgressBar>,
}

/// How often a line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

impl TableProgress {
    /// Starts reporting on `table`; `total` rows when known.
    pub fn start(table: &str, total: Option<u64>) -> TableProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:>18} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(table.to_string());
            bar
        });
        TableProgress {
            table: table.to_string(),
            total,
            rows: 0,
            start: Instant::now(),
            last_log: Instant::now(),
            bar,
        }
    }

    /// Counts `n` more rows.
    pub fn add(&mut self, n: u64) {
        self.rows += n;
        if let Some(bar) = &self.bar {
            bar.set_position(self.rows);
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
            let rate = self.rows as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
            log::info!("{}: {} rows{of} ({rate:.0} rows/s)", self.table, self.rows);
        }
    }

    /// Ends the table and logs its summary; returns (rows, seconds).
    pub fn finish(self) -> (u64, f64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.start.elapsed().as_secs_f64();
        log::info!("{}: {} rows in {secs:.2} s", self.table, self.rows);
        (self.rows, secs)
    }
}
