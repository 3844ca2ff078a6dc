//! Errors of the safe API. Each maps one-to-one onto a C status code in `ffi.rs`.

use std::ffi::CStr;
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
    /// Static, human-readable text (NUL-terminated, for `pool_strerror`).
    pub fn c_message(self) -> &'static CStr {
        match self {
            Error::InvalidArgument => {
                c"invalid argument (NULL pointer, zero iterations or malformed config)"
            }
            Error::TooBig => c"message longer than max_message_bytes",
            Error::Full => c"queue full: queue_capacity jobs are outstanding",
            Error::TimedOut => c"wait timed out; the job is still pending",
            Error::NoJob => c"no such job, or its result was already collected",
            Error::Worker => c"the job's worker died on every attempt",
            Error::JobTimeout => c"the job ran past job_timeout_ms; its worker was killed",
            Error::Canceled => c"the job was canceled",
            Error::Spawn => c"worker processes could not be started",
            Error::NoMemory => c"out of memory",
            Error::Forked => c"called in a forked child of the process that created the pool",
            Error::Internal => c"internal error in md5pool",
        }
    }

    /// Static, human-readable text.
    pub fn message(self) -> &'static str {
        self.c_message().to_str().expect("the messages are ASCII")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
