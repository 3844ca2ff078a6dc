//! Errors of the safe API. Each maps one-to-one onto a C status code, whose
//! table in `ffi/status.rs` also holds its text.

use std::fmt;

/// Why a call failed, or how a job ended when it did not produce a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// A malformed argument: zero iterations, a bad config, a missing out-parameter.
    InvalidArgument,
    /// The message is longer than the pool's `max_message_bytes`.
    TooBig,
    /// `queue_capacity` jobs are already outstanding.
    Full,
    /// The wait's own timeout passed; the job is still pending.
    TimedOut,
    /// No such job, or its result was already collected.
    NoJob,
    /// The job's worker died on each of its `max_attempts` tries.
    Worker,
    /// The job ran past `job_timeout`; its worker was killed.
    JobTimeout,
    /// The job was canceled.
    Canceled,
    /// Worker processes or their channels could not be created.
    Spawn,
    /// Out of memory.
    NoMemory,
    /// Called in a forked child of the process that created the pool.
    Forked,
    /// A bug inside the library (a caught panic); the pool stays usable.
    Internal,
}

impl Error {
    /// Static, human-readable text.
    pub fn message(self) -> &'static str {
        let text = crate::ffi::pool_status::from(self).text();
        text.to_str().expect("the status texts are ASCII")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
