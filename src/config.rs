//! Pool configuration for the safe API, with the defaults of the C contract.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::kernel::EngineKind;

/// Runs once inside each worker process, after it has closed the descriptors it
/// inherited and before its first job.
pub type WorkerInit = Arc<dyn Fn() + Send + Sync>;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
}

/// Receives the pool's log lines, from the pool's own thread.
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Default `queue_capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65536;
/// Default `max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default `max_message_bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Default `max_queued_bytes`.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 256 << 20;
/// The most workers one pool may have.
pub const MAX_WORKERS: usize = 1024;

/// How to build a [`crate::Pool`]. `Config::default()` gives the contract's defaults.
#[derive(Clone)]
pub struct Config {
    /// Worker processes; 0 = the CPUs this process may run on.
    pub workers: usize,
    /// Most outstanding (submitted, not yet collected) jobs.
    pub queue_capacity: usize,
    /// Tries per job when its worker dies.
    pub max_attempts: u32,
    /// Limit on one attempt's run time in a worker.
    pub job_timeout: Option<Duration>,
    /// Recycle a worker after this many jobs.
    pub max_jobs_per_worker: Option<u64>,
    /// Longest accepted message.
    pub max_message_bytes: usize,
    /// Cap on the message bytes held for outstanding jobs not finished yet.
    pub max_queued_bytes: usize,
    /// Per-worker initializer.
    pub worker_init: Option<WorkerInit>,
    /// Log sink.
    pub log: Option<LogSink>,
    /// Kernel engine for the workers; `None` = the `MD5POOL_KERNEL` environment
    /// variable (`scalar`, `avx2`, `avx512`) if set, else the fastest this CPU runs.
    pub engine: Option<EngineKind>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 0,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            job_timeout: None,
            max_jobs_per_worker: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            worker_init: None,
            log: None,
            engine: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("workers", &self.workers)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_attempts", &self.max_attempts)
            .field("job_timeout", &self.job_timeout)
            .field("max_jobs_per_worker", &self.max_jobs_per_worker)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("worker_init", &self.worker_init.is_some())
            .field("log", &self.log.is_some())
            .field("engine", &self.engine)
            .finish()
    }
}
