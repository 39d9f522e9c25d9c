//! The one backoff every bounded wait uses (waiting for the server, for the migration lock,
//! for a migration's table locks): pauses that double up to a cap, and a last pause that ends
//! exactly at the bound, so the whole documented wait is used and never exceeded.

use std::time::{Duration, Instant};

/// Doubling pauses within a bound, counted from [`Backoff::new`].
#[derive(Debug)]
pub struct Backoff {
    start: Instant,
    bound: Duration,
    delay: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts the clock: pauses begin at `first`, double up to `cap`, and end by `bound`.
    pub fn new(first: Duration, cap: Duration, bound: Duration) -> Backoff {
        Backoff {
            start: Instant::now(),
            bound,
            delay: first,
            cap,
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether the bound has passed.
    pub fn expired(&self) -> bool {
        self.elapsed() >= self.bound
    }

    /// The next pause (never past the bound), doubling the one after it.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.delay.min(self.bound.saturating_sub(self.elapsed()));
        self.delay = (self.delay * 2).min(self.cap);
        pause
    }

    /// Sleeps for [`Backoff::next_pause`].
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_end_at_the_bound() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(20), ms(50), Duration::from_secs(3600));
        assert_eq!(
            [
                b.next_pause(),
                b.next_pause(),
                b.next_pause(),
                b.next_pause()
            ],
            [ms(20), ms(40), ms(50), ms(50)]
        );
        let mut done = Backoff::new(ms(20), ms(50), Duration::ZERO);
        assert!(done.expired());
        assert_eq!(done.next_pause(), Duration::ZERO);
    }
}
