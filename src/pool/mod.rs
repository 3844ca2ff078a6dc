//! The pool: the operations the safe API exposes. Each concern has its room:
//! the shared state and its bookkeeping in `shared`, waiting in `wait`, the job
//! table in `jobs`, the send side of the workers in `links`, their receive side
//! in `inbox`, the dispatcher thread in `dispatcher`, worker starts in
//! `supervisor`, configuration checks in `settings`.

mod dispatcher;
mod id_map;
mod inbox;
mod jobs;
mod links;
mod settings;
mod shared;
mod supervisor;
mod types;
mod wait;

use std::os::fd::BorrowedFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::Error;
use crate::kernel::EngineKind;
use crate::sys;
use jobs::JobTable;
use links::Fill;
use settings::Resolved;
use shared::Shared;
pub use types::{Digest, JobId, Stats};
use wait::SpinOn;

/// A pool of pre-forked worker processes. See the crate documentation.
pub struct Pool {
    shared: Arc<Shared>,
    dispatcher: Option<JoinHandle<()>>,
    creator: i32,
    engine: EngineKind,
}

impl Pool {
    /// Forks the fork server and the first set of workers, and returns once every
    /// worker process exists (their `worker_init` may still be running).
    pub fn new(config: Config) -> Result<Pool, Error> {
        let Resolved {
            settings,
            table,
            spec,
        } = config.resolve()?;
        let jobs = JobTable::new(
            table.queue_capacity,
            table.max_queued_bytes,
            table.max_attempts,
        )?;
        let engine = spec.engine.kind();
        let shared = Arc::new(Shared::new(settings, jobs)?);
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        // The dispatcher must never run a host signal handler: it starts with every
        // signal blocked. The caller's own mask is restored before we return.
        let old_mask = sys::block_all_signals();
        let spawned = std::thread::Builder::new()
            .name("md5pool-dispatch".into())
            .spawn(move || dispatcher::run(thread_shared, spec, started_tx));
        sys::restore_signal_mask(&old_mask);
        let dispatcher = spawned.map_err(|_| Error::Spawn)?;
        let started = started_rx.recv().unwrap_or(Err(Error::Spawn));
        let pool = Pool {
            shared,
            dispatcher: Some(dispatcher),
            creator: sys::current_pid(),
            engine,
        };
        started.map(|()| pool)
    }

    /// The kernel engine the workers run.
    pub fn engine(&self) -> Result<EngineKind, Error> {
        self.check_process()?;
        Ok(self.engine)
    }

    fn check_process(&self) -> Result<(), Error> {
        if sys::current_pid() == self.creator {
            Ok(())
        } else {
            Err(Error::Forked)
        }
    }

    /// Queues one job; never blocks on a full queue.
    pub fn submit(&self, msg: &[u8], iterations: u64) -> Result<JobId, Error> {
        self.check_process()?;
        if iterations == 0 {
            return Err(Error::InvalidArgument);
        }
        if msg.len() > self.shared.settings.max_message_bytes {
            return Err(Error::TooBig);
        }
        let mut copy = Vec::new();
        copy.try_reserve_exact(msg.len())
            .map_err(|_| Error::NoMemory)?;
        copy.extend_from_slice(msg);
        let mut state = self.shared.lock();
        if state.unable_to_start {
            return Err(Error::Spawn);
        }
        let id = state.submit(copy, iterations)?;
        state.dispatch(Fill::Lanes);
        // The dispatcher keeps the clock on running jobs, and sends a cheap job to
        // the free lane of a worker busy with long ones (with whatever else queued
        // meanwhile, in one write).
        let dispatcher_needed = self.shared.settings.job_timeout.is_some()
            || (state.jobs().queued() > 0 && state.links.has_free_lane_beside_long_work());
        if dispatcher_needed {
            self.shared.wake_dispatcher(&mut state);
        }
        Ok(JobId(id))
    }

    /// Waits for job `job` and collects it. `None` waits forever;
    /// `Some(Duration::ZERO)` polls.
    pub fn wait(&self, job: JobId, timeout: Option<Duration>) -> Result<Digest, Error> {
        self.check_process()?;
        let outcome = self.wait_until(timeout, SpinOn::Job(job.0), |jobs| {
            jobs.collect(job.0).transpose()
        })?;
        outcome.map(Digest)
    }

    /// Waits for whichever outstanding job finishes first and collects it.
    /// The outer error is the wait's own (`NoJob` at once when nothing is
    /// outstanding, `TimedOut`); the inner result is the job's status.
    pub fn wait_any(
        &self,
        timeout: Option<Duration>,
    ) -> Result<(JobId, Result<Digest, Error>), Error> {
        self.check_process()?;
        let (id, outcome) = self.wait_until(timeout, SpinOn::AnyJob, |jobs| {
            if jobs.outstanding() == 0 {
                return Some(Err(Error::NoJob));
            }
            jobs.collect_any().map(Ok)
        })?;
        Ok((JobId(id), outcome.map(Digest)))
    }

    /// Cancels an outstanding job; it is then collected with `Error::Canceled`.
    pub fn cancel(&self, job: JobId) -> Result<(), Error> {
        self.check_process()?;
        let mut state = self.shared.lock();
        let running_on = self
            .shared
            .update_jobs(&mut state, |jobs| jobs.cancel(job.0))?;
        if let Some(worker) = running_on {
            if state.links.stop(worker, job.0, Instant::now()) {
                // The dispatcher times the worker's confirmation.
                self.shared.wake_dispatcher(&mut state);
            }
        }
        Ok(())
    }

    /// Counters and gauges at this moment.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.check_process()?;
        let state = self.shared.lock();
        let jobs = state.jobs();
        let totals = jobs.totals();
        Ok(Stats {
            workers_configured: self.shared.settings.workers,
            workers_alive: state.worker_pids.len(),
            jobs_queued: jobs.queued() as u64,
            jobs_running: jobs.running() as u64,
            jobs_ready: jobs.ready() as u64,
            jobs_completed: totals.completed,
            jobs_failed: totals.failed,
            jobs_retried: totals.retried,
            worker_restarts: state.worker_restarts,
            queued_bytes: jobs.held_bytes() as u64,
        })
    }

    /// Process ids of the live workers.
    pub fn worker_pids(&self) -> Result<Vec<i32>, Error> {
        self.check_process()?;
        let state = self.shared.lock();
        let mut pids = Vec::new();
        pids.try_reserve_exact(state.worker_pids.len())
            .map_err(|_| Error::NoMemory)?;
        pids.extend_from_slice(&state.worker_pids);
        Ok(pids)
    }

    /// A descriptor that polls readable while a finished job awaits collection.
    /// Never read from it or close it.
    pub fn ready_fd(&self) -> Result<BorrowedFd<'_>, Error> {
        self.check_process()?;
        Ok(self.shared.ready_fd())
    }
}

impl Drop for Pool {
    /// Stops and reaps every process of the pool. In a forked child of the
    /// creator, only releases this process's copy of the memory.
    fn drop(&mut self) {
        let Some(dispatcher) = self.dispatcher.take() else {
            return;
        };
        if self.check_process().is_err() {
            // The dispatcher thread does not exist in this process, but its
            // reference to `shared` was copied by fork: give it up on its behalf.
            std::mem::forget(dispatcher);
            if self.shared.is_locked() {
                // Another thread of the parent was changing the state when it forked:
                // this copy may be half-written, and walking it to free it could
                // crash the child. Leaving it (the dispatcher's phantom reference
                // keeps it alive) is the only safe release.
                return;
            }
            // SAFETY: the dispatcher holds exactly one strong reference for its whole
            // life (it returns only after `shutdown`, which this process never
            // sets), and no thread of this process can use it any more.
            unsafe { Arc::decrement_strong_count(Arc::as_ptr(&self.shared)) };
            return;
        }
        {
            let mut state = self.shared.lock();
            state.shutdown = true;
            self.shared.wake_dispatcher(&mut state);
        }
        let _ = dispatcher.join();
    }
}
