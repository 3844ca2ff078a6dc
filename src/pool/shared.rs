//! What the caller's threads and the dispatcher thread share: the state under
//! one lock, and the descriptors and condition variable that tell others it
//! changed.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use super::inbox::Received;
use super::jobs::{JobTable, WorkerId};
use super::links::{Fill, Links};
use super::settings::Settings;
use crate::config::LogLevel;
use crate::error::Error;
use crate::sys::{Epoll, EventFd};

/// What the caller's threads and the dispatcher share, under one lock.
pub struct State {
    /// Changed only through [`Shared::update_jobs`] (or by calls that leave its
    /// ready count alone), so that pool_fd and the waiters never miss a finished job.
    jobs: JobTable,
    /// The send side of every worker.
    pub links: Links,
    /// The dispatcher has been woken and has not looked at the state since.
    pub wake_pending: bool,
    pub shutdown: bool,
    /// Workers whose inbox holds what a waiter read but only the dispatcher
    /// handles (see `inbox`).
    pub deferred_reads: Vec<WorkerId>,
    /// Threads asleep in a wait for a job to finish.
    pub sleepers: usize,
    /// Five starts in a row failed: submissions fail with POOL_ESPAWN.
    pub unable_to_start: bool,
    /// Live workers' process ids, kept by the dispatcher for stats and pids.
    pub worker_pids: Vec<i32>,
    pub worker_restarts: u64,
    /// pool_fd was asked for: keep its readiness up to date (two system calls
    /// per batch of finished jobs that callers who never poll do not pay).
    ready_fd_in_use: bool,
}

impl State {
    pub fn jobs(&self) -> &JobTable {
        &self.jobs
    }

    /// Queues a job (see [`JobTable::submit`]).
    pub fn submit(&mut self, msg: Vec<u8>, iterations: u64) -> Result<u64, Error> {
        self.jobs.submit(msg, iterations)
    }

    /// Hands queued jobs to workers with room (see [`Links::dispatch`]).
    pub fn dispatch(&mut self, fill: Fill) {
        self.links.dispatch(&mut self.jobs, fill);
    }
}

pub struct Shared {
    state: Mutex<State>,
    /// Signaled whenever a job finishes.
    pub(super) job_finished: Condvar,
    /// Readable while a finished job awaits collection (pool_fd).
    ready_fd: EventFd,
    /// Wakes the dispatcher.
    pub(super) wake: EventFd,
    /// The dispatcher's epoll set (any thread may register interest in it).
    pub(super) epoll: Arc<Epoll>,
    /// A waiter is spinning on a worker's channel: one at a time, so that
    /// threads waiting in numbers sleep instead of taking the workers' CPUs.
    pub(super) spinner: AtomicBool,
    pub(super) settings: Settings,
}

impl Shared {
    /// The state of a new pool holding `jobs`, its epoll set and eventfds.
    pub fn new(settings: Settings, jobs: JobTable) -> Result<Shared, Error> {
        let epoll = Arc::new(Epoll::new().map_err(|_| Error::Spawn)?);
        let links = Links::new(
            epoll.clone(),
            settings.max_jobs_per_worker,
            settings.job_timeout,
        );
        Ok(Shared {
            state: Mutex::new(State {
                jobs,
                links,
                wake_pending: false,
                shutdown: false,
                deferred_reads: Vec::new(),
                sleepers: 0,
                unable_to_start: false,
                worker_pids: Vec::new(),
                worker_restarts: 0,
                ready_fd_in_use: false,
            }),
            job_finished: Condvar::new(),
            ready_fd: EventFd::new().map_err(|_| Error::Spawn)?,
            wake: EventFd::new().map_err(|_| Error::Spawn)?,
            epoll,
            spinner: AtomicBool::new(false),
            settings,
        })
    }

    /// Locks the state. A panic while it was held (a bug) does not make the
    /// pool unusable: the job table stays consistent between operations.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Some thread holds the lock now (in a forked child: held when the parent forked).
    pub fn is_locked(&self) -> bool {
        matches!(self.state.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// Wakes the dispatcher (one eventfd write however many callers ask).
    pub fn wake_dispatcher(&self, state: &mut State) {
        if !state.wake_pending {
            state.wake_pending = true;
            self.wake.set();
        }
    }

    /// Changes the job table with the lock held, then keeps `pool_fd` readable
    /// exactly while a finished job awaits collection and wakes the threads
    /// waiting when jobs finished.
    pub fn update_jobs<R>(&self, state: &mut State, change: impl FnOnce(&mut JobTable) -> R) -> R {
        let (result, finished) = self.update_jobs_waking_later(state, change);
        if finished {
            self.wake_waiters();
        }
        result
    }

    /// [`Self::update_jobs`] for hot paths: also returns true when jobs finished
    /// and threads sleep waiting, so that the caller calls `wake_waiters` after
    /// releasing the lock (a waiter woken while the lock is held only spins on it
    /// and sleeps again).
    pub fn update_jobs_waking_later<R>(
        &self,
        state: &mut State,
        change: impl FnOnce(&mut JobTable) -> R,
    ) -> (R, bool) {
        let ready_before = state.jobs.ready();
        let result = change(&mut state.jobs);
        let ready_now = state.jobs.ready();
        if state.ready_fd_in_use {
            if ready_before == 0 && ready_now > 0 {
                self.ready_fd.set();
            } else if ready_before > 0 && ready_now == 0 {
                self.ready_fd.clear();
            }
        }
        (result, ready_now > ready_before && state.sleepers > 0)
    }

    /// Applies frames read from worker `id`'s channel; returns true when jobs
    /// finished that sleeping threads wait for (call `wake_waiters` once the lock
    /// is released).
    pub fn apply(&self, state: &mut State, id: WorkerId, received: &Received) -> bool {
        if !received.started.is_empty() {
            state.links.started(id, &received.started, Instant::now());
        }
        for &job in &received.stopped {
            state.links.finished(id, job);
        }
        if received.results.is_empty() {
            return false;
        }
        let ((), finished) = self.update_jobs_waking_later(state, |jobs| {
            for &(job, hex) in &received.results {
                jobs.finish_running(job, id, Ok(hex));
            }
        });
        for &(job, _) in &received.results {
            state.links.finished(id, job);
        }
        finished
    }

    pub fn wake_waiters(&self) {
        self.job_finished.notify_all();
    }

    /// The descriptor that polls readable while a finished job awaits
    /// collection; kept up to date from the first call on.
    pub fn ready_fd(&self) -> BorrowedFd<'_> {
        let mut state = self.lock();
        if !state.ready_fd_in_use {
            state.ready_fd_in_use = true;
            if state.jobs.ready() > 0 {
                self.ready_fd.set();
            }
        }
        self.ready_fd.as_fd()
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        if let Some(log) = &self.settings.log {
            log(level, message);
        }
    }
}
