//! A [`Config`] checked, with every default resolved: what the pool, its job
//! table and its workers are built from.

use std::time::Duration;

use crate::config::{Config, LogSink, MAX_WORKERS};
use crate::error::Error;
use crate::kernel::{Engine, EngineKind};
use crate::sys;
use crate::worker::WorkerSpec;

/// Settings fixed at creation, with every default resolved.
pub struct Settings {
    pub workers: usize,
    pub max_message_bytes: usize,
    pub job_timeout: Option<Duration>,
    pub max_jobs_per_worker: Option<u64>,
    pub log: Option<LogSink>,
    /// Spinning pays only with another CPU to run the other side.
    pub spin: bool,
}

/// The job table's limits.
pub struct TableLimits {
    pub queue_capacity: usize,
    pub max_queued_bytes: usize,
    pub max_attempts: u32,
}

/// Everything a pool is built from.
pub struct Resolved {
    pub settings: Settings,
    pub table: TableLimits,
    pub spec: WorkerSpec,
}

impl Config {
    /// Checks the configuration and resolves its defaults (worker count, engine);
    /// `InvalidArgument` for a value out of range.
    pub(crate) fn resolve(&self) -> Result<Resolved, Error> {
        let workers = if self.workers == 0 {
            sys::usable_cpus()
        } else {
            self.workers
        };
        if workers > MAX_WORKERS
            || self.queue_capacity == 0
            || self.max_attempts == 0
            || self.max_queued_bytes == 0
            || !(1..=u32::MAX as usize).contains(&self.max_message_bytes)
        {
            return Err(Error::InvalidArgument);
        }
        if self.job_timeout == Some(Duration::ZERO) || self.max_jobs_per_worker == Some(0) {
            return Err(Error::InvalidArgument);
        }
        let engine = match self.engine.or_else(engine_from_env) {
            Some(kind) => Engine::new(kind).unwrap_or_else(Engine::best),
            None => Engine::best(),
        };
        let spin = sys::usable_cpus() > 1;
        Ok(Resolved {
            settings: Settings {
                workers,
                max_message_bytes: self.max_message_bytes,
                job_timeout: self.job_timeout,
                max_jobs_per_worker: self.max_jobs_per_worker,
                log: self.log.clone(),
                spin,
            },
            table: TableLimits {
                queue_capacity: self.queue_capacity,
                max_queued_bytes: self.max_queued_bytes,
                max_attempts: self.max_attempts,
            },
            spec: WorkerSpec {
                engine,
                init: self.worker_init.clone(),
                report_starts: self.job_timeout.is_some(),
                poll_when_idle: spin,
            },
        })
    }
}

/// `MD5POOL_KERNEL=scalar|avx2|avx512` forces an engine (read in the host, at
/// creation, never in a forked child).
fn engine_from_env() -> Option<EngineKind> {
    std::env::var("MD5POOL_KERNEL")
        .ok()
        .and_then(|name| EngineKind::from_name(&name))
}
