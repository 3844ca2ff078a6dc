//! When to start workers: all missing ones at once while starts succeed; one at
//! a time with a growing delay after failures, so that a worker_init that always
//! dies backs off instead of fork-bombing.

use std::time::{Duration, Instant};

/// After this many failed starts in a row the pool is "unable to start workers".
pub const FAILURES_UNTIL_UNABLE: u32 = 5;

pub struct Supervisor {
    target: usize,
    consecutive_failures: u32,
    next_start: Instant,
}

/// The delay before the next start after `failures` failed starts in a row:
/// quick retries at first, then never more than one start a second and never
/// more than 5 seconds between tries.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n if n < FAILURES_UNTIL_UNABLE => Duration::from_millis(25 << (n - 1)),
        n => {
            Duration::from_secs(1 << (n - FAILURES_UNTIL_UNABLE).min(3)).min(Duration::from_secs(5))
        }
    }
}

impl Supervisor {
    pub fn new(target: usize, now: Instant) -> Supervisor {
        Supervisor {
            target,
            consecutive_failures: 0,
            next_start: now,
        }
    }

    /// How many starts to request now, given the workers alive (not being
    /// stopped) and the starts already requested.
    pub fn starts_due(&self, now: Instant, alive: usize, pending: usize) -> usize {
        let missing = self.target.saturating_sub(alive + pending);
        if self.consecutive_failures == 0 {
            missing
        } else if pending == 0 && now >= self.next_start {
            missing.min(1)
        } else {
            0
        }
    }

    /// When `starts_due` may next say yes, if a start is waiting for the backoff.
    pub fn next_start(&self) -> Option<Instant> {
        (self.consecutive_failures > 0).then_some(self.next_start)
    }

    /// Records a failed start; returns true when the pool just became unable to start workers.
    pub fn start_failed(&mut self, now: Instant) -> bool {
        self.consecutive_failures += 1;
        self.next_start = now + backoff(self.consecutive_failures);
        self.consecutive_failures == FAILURES_UNTIL_UNABLE
    }

    /// Records a worker that finished its init; returns true if the pool was unable until now.
    pub fn start_succeeded(&mut self) -> bool {
        let was_unable = self.unable();
        self.consecutive_failures = 0;
        was_unable
    }

    pub fn unable(&self) -> bool {
        self.consecutive_failures >= FAILURES_UNTIL_UNABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_one_start_a_second_and_caps_at_five() {
        let delays: Vec<u64> = (1..=9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(delays, [25, 50, 100, 200, 1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn starts_all_missing_while_healthy_then_one_at_a_time() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(4, t0);
        assert_eq!(s.starts_due(t0, 0, 0), 4);
        assert_eq!(s.starts_due(t0, 1, 2), 1);
        assert!(!s.start_failed(t0));
        assert_eq!(s.starts_due(t0, 0, 0), 0, "backing off");
        assert_eq!(
            s.starts_due(t0 + backoff(1), 0, 1),
            0,
            "one start at a time"
        );
        assert_eq!(s.starts_due(t0 + backoff(1), 0, 0), 1);
        for _ in 2..FAILURES_UNTIL_UNABLE {
            assert!(!s.start_failed(t0));
        }
        assert!(s.start_failed(t0));
        assert!(s.unable());
        assert!(s.start_succeeded());
        assert!(!s.unable());
        assert_eq!(s.starts_due(t0, 1, 0), 3);
    }
}
