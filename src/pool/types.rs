//! What the pool's callers hold: job ids, digests and counters.

use std::fmt;

use crate::kernel;

/// Names a submitted job; never 0, never reused within a pool's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// A job's result: 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub kernel::Hex);

impl Digest {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.as_str())
    }
}

/// A pool's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub workers_configured: usize,
    pub workers_alive: usize,
    /// Submitted, not yet sent to a worker.
    pub jobs_queued: u64,
    pub jobs_running: u64,
    /// Finished, not yet collected.
    pub jobs_ready: u64,
    /// Total finished with a digest.
    pub jobs_completed: u64,
    /// Total finished with an error.
    pub jobs_failed: u64,
    /// Total re-runs after a worker died.
    pub jobs_retried: u64,
    /// Total workers started after the first set, for any reason.
    pub worker_restarts: u64,
    /// Message bytes held for jobs not finished yet (see `Config::max_queued_bytes`).
    pub queued_bytes: u64,
}
