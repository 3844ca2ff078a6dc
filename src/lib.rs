//! md5pool: run the md5 chain kernel in a pool of pre-forked worker processes.
//!
//! Workers are forked once (from a small fork server the pool forks at
//! creation), initialized once, and fed jobs over their own socketpair; results
//! come back to the host, where any thread can submit and wait.
//!
//! ```
//! use md5pool::{Config, Pool};
//!
//! let pool = Pool::new(Config { workers: 2, ..Config::default() })?;
//! let job = pool.submit(b"Hello World", 1)?;
//! let digest = pool.wait(job, None)?;
//! assert_eq!(digest.as_str(), "b10a8db164e0754105b7a99be72e3fe5");
//! assert_eq!(digest, md5pool::md5_chain(b"Hello World", 1)?);
//! # Ok::<(), md5pool::Error>(())
//! ```
//!
//! The C API (`include/md5pool.h`) is a thin layer over this one, in `ffi/`.

mod config;
mod error;
pub mod ffi;
mod forkserver;
mod ipc;
pub mod kernel;
mod pool;
mod sys;
mod worker;

use std::fmt;

pub use config::{Config, LogLevel, LogSink, WorkerInit};
pub use error::Error;
pub use kernel::EngineKind;
pub use pool::Pool;

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// Runs the kernel in the calling thread, no pool involved.
/// `iterations` must be at least 1.
pub fn md5_chain(msg: &[u8], iterations: u64) -> Result<Digest, Error> {
    if iterations == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(Digest(kernel::md5_chain(msg, iterations)))
}
