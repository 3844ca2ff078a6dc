//! The pool: state shared between the caller's threads and the dispatcher
//! thread, and the operations the safe API exposes.

mod dispatcher;
mod inbox;
pub(crate) mod jobs;
mod links;
mod supervisor;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, LogLevel, LogSink, MAX_WORKERS};
use crate::error::Error;
use crate::kernel::{Engine, EngineKind};
use crate::sys::{self, EventFd, SyscallReturn};
use crate::worker::WorkerSpec;
use crate::{Digest, JobId, Stats};
use inbox::{Inbox, Received};
use jobs::{JobTable, WorkerId};
use links::{Fill, Links};

/// pool_wait reads the channel of its job's worker itself, rather than sleeping
/// until the dispatcher has read it, for at most this long ...
const SPIN_LIMIT: Duration = Duration::from_micros(50);
/// ... when all that worker holds costs at most this many blocks (its results are
/// due within about SPIN_LIMIT).
const SPIN_MAX_BLOCKS: u64 = 500;

/// Maps keyed by ids the pool assigns itself (sequential integers): a
/// multiplicative hash is enough, as no HashDoS is possible, and it is far
/// cheaper than SipHash on every job. (`RandomState` would also ask the kernel
/// for random keys, which without getrandom, Linux < 3.17, makes Rust's std keep
/// /dev/urandom open for the rest of the host's life.)
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Settings fixed at creation, with every default resolved.
pub(crate) struct Settings {
    pub workers: usize,
    pub max_message_bytes: usize,
    pub job_timeout: Option<Duration>,
    pub max_jobs_per_worker: Option<u64>,
    pub log: Option<LogSink>,
    /// Spinning pays only with another CPU to run the other side.
    pub spin: bool,
}

/// What the caller's threads and the dispatcher share, under one lock.
pub(crate) struct State {
    pub jobs: JobTable,
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
    pub ready_fd_in_use: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signaled whenever a job finishes.
    job_finished: Condvar,
    /// Readable while a finished job awaits collection (pool_fd).
    ready_fd: EventFd,
    /// Wakes the dispatcher.
    wake: EventFd,
    /// The dispatcher's epoll set (any thread may register interest in it).
    epoll: Arc<OwnedFd>,
    /// A waiter is spinning on a worker's channel: one at a time, so that
    /// threads waiting in numbers sleep instead of taking the workers' CPUs.
    spinner: AtomicBool,
    settings: Settings,
}

impl Shared {
    /// Locks the state. A panic while it was held (a bug) does not make the
    /// pool unusable: the job table stays consistent between operations.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the dispatcher (one eventfd write however many callers ask).
    pub fn wake_dispatcher(&self, state: &mut State) {
        if !state.wake_pending {
            state.wake_pending = true;
            self.wake.set();
        }
    }

    /// Keeps `pool_fd` readable exactly while a finished job awaits collection,
    /// and wakes the waiters when jobs finished. Call after every change of the
    /// job table, with the lock still held, passing the ready count before it.
    pub fn after_change(&self, state: &State, ready_before: usize) {
        if self.sync_ready_fd(state, ready_before) {
            self.wake_waiters();
        }
    }

    /// The `pool_fd` half of `after_change`; returns true when jobs finished and
    /// threads sleep waiting, so that a hot path can call `wake_waiters` after
    /// releasing the lock (a waiter woken while the lock is held only spins on it
    /// and sleeps again).
    pub fn sync_ready_fd(&self, state: &State, ready_before: usize) -> bool {
        let ready_now = state.jobs.ready();
        if state.ready_fd_in_use {
            if ready_before == 0 && ready_now > 0 {
                self.ready_fd.set();
            } else if ready_before > 0 && ready_now == 0 {
                self.ready_fd.clear();
            }
        }
        ready_now > ready_before && state.sleepers > 0
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
        let ready_before = state.jobs.ready();
        for &(job, hex) in &received.results {
            state.jobs.finish_running(job, id, Ok(hex));
            state.links.finished(id, job);
        }
        self.sync_ready_fd(state, ready_before)
    }

    pub fn wake_waiters(&self) {
        self.job_finished.notify_all();
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        if let Some(log) = &self.settings.log {
            log(level, message);
        }
    }
}

/// A pool of pre-forked worker processes. See the crate documentation.
pub struct Pool {
    shared: Arc<Shared>,
    dispatcher: Option<JoinHandle<()>>,
    creator: i32,
    engine: EngineKind,
}

/// The job table's limits: (queue_capacity, max_queued_bytes, max_attempts).
type TableLimits = (usize, usize, u32);

fn resolve(config: &Config) -> Result<(Settings, TableLimits, WorkerSpec), Error> {
    let workers = if config.workers == 0 {
        sys::usable_cpus()
    } else {
        config.workers
    };
    if workers > MAX_WORKERS
        || config.queue_capacity == 0
        || config.max_attempts == 0
        || config.max_queued_bytes == 0
        || !(1..=u32::MAX as usize).contains(&config.max_message_bytes)
    {
        return Err(Error::InvalidArgument);
    }
    if config.job_timeout == Some(Duration::ZERO) || config.max_jobs_per_worker == Some(0) {
        return Err(Error::InvalidArgument);
    }
    let engine = match config.engine.or_else(engine_from_env) {
        Some(kind) => Engine::new(kind).unwrap_or_else(Engine::best),
        None => Engine::best(),
    };
    let spin = sys::usable_cpus() > 1;
    let settings = Settings {
        workers,
        max_message_bytes: config.max_message_bytes,
        job_timeout: config.job_timeout,
        max_jobs_per_worker: config.max_jobs_per_worker,
        log: config.log.clone(),
        spin,
    };
    Ok((
        settings,
        (
            config.queue_capacity,
            config.max_queued_bytes,
            config.max_attempts,
        ),
        WorkerSpec {
            engine,
            init: config.worker_init.clone(),
            report_starts: config.job_timeout.is_some(),
            poll_when_idle: spin,
        },
    ))
}

/// `MD5POOL_KERNEL=scalar|avx2|avx512` forces an engine (read in the host, at
/// creation, never in a forked child).
fn engine_from_env() -> Option<EngineKind> {
    std::env::var("MD5POOL_KERNEL")
        .ok()
        .and_then(|name| EngineKind::from_name(&name))
}

impl Pool {
    /// Forks the fork server and the first set of workers, and returns once every
    /// worker process exists (their `worker_init` may still be running).
    pub fn new(config: Config) -> Result<Pool, Error> {
        let (settings, (capacity, max_bytes, max_attempts), spec) = resolve(&config)?;
        let jobs = JobTable::new(capacity, max_bytes, max_attempts)?;
        let engine = spec.engine.kind();
        // SAFETY: plain system call creating a new descriptor.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }
            .into_result()
            .map_err(|_| Error::Spawn)?;
        // SAFETY: `epoll` was just created and nothing else owns it.
        let epoll = Arc::new(unsafe { OwnedFd::from_raw_fd(epoll) });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jobs,
                links: Links::new(
                    epoll.clone(),
                    settings.max_jobs_per_worker,
                    settings.job_timeout,
                ),
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
        });
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
        let id = state.jobs.submit(copy, iterations)?;
        let State { jobs, links, .. } = &mut *state;
        links.dispatch(jobs, Fill::Lanes);
        // The dispatcher keeps the clock on running jobs, and sends a cheap job to
        // the free lane of a worker busy with long ones (with whatever else queued
        // meanwhile, in one write).
        let dispatcher_needed = self.shared.settings.job_timeout.is_some()
            || (jobs.queued() > 0 && links.has_free_lane_beside_long_work());
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

    /// Runs `attempt` under the lock until it yields something or `timeout` passes.
    /// While a result it waits for is due any moment (see [`SpinOn`]), reads the
    /// worker's channel instead of sleeping (for SPIN_LIMIT at most).
    fn wait_until<T>(
        &self,
        timeout: Option<Duration>,
        spin_on: SpinOn,
        mut attempt: impl FnMut(&mut JobTable) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        let start = Instant::now();
        let deadline = timeout.map(|t| start.checked_add(t).unwrap_or_else(far_future));
        let spin_end = deadline.map_or(start + SPIN_LIMIT, |d| d.min(start + SPIN_LIMIT));
        let mut spin_slot = None;
        let mut state = self.shared.lock();
        loop {
            let ready_before = state.jobs.ready();
            if let Some(result) = attempt(&mut state.jobs) {
                self.shared.after_change(&state, ready_before);
                return result;
            }
            // A poll (timeout 0) never spins.
            let may_spin = spin_end > start && Instant::now() < spin_end;
            let spin_inbox = if may_spin {
                self.spin_inbox(&state, spin_on)
            } else {
                None
            };
            if let Some((worker, inbox)) = spin_inbox {
                if spin_slot.is_none() {
                    spin_slot = SpinSlot::take(&self.shared.spinner);
                }
                if spin_slot.is_some() {
                    drop(state);
                    self.receive_directly(worker, &inbox);
                    state = self.shared.lock();
                    continue;
                }
            }
            spin_slot = None;
            let left = match deadline {
                None => None,
                Some(deadline) => match deadline.saturating_duration_since(Instant::now()) {
                    left if left.is_zero() => return Err(Error::TimedOut),
                    left => Some(left),
                },
            };
            state = self.sleep(state, left);
        }
    }

    /// Sleeps until a job finishes (or `limit` passes), counted in `sleepers` so
    /// that finishing jobs nobody sleeps on costs no wake-up system call.
    fn sleep<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        limit: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        state.sleepers += 1;
        let finished = &self.shared.job_finished;
        let mut state = match limit {
            None => finished.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some(left) => {
                finished
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        state.sleepers -= 1;
        state
    }

    /// The inbox to read while waiting: a worker whose results are due any moment
    /// and would end the wait.
    fn spin_inbox(&self, state: &State, on: SpinOn) -> Option<(WorkerId, Arc<Mutex<Inbox>>)> {
        if !self.shared.settings.spin {
            return None;
        }
        match on {
            SpinOn::Job(job) => {
                let worker = state.jobs.running_on(job)?;
                let inbox = state.links.inbox_if_light(worker, SPIN_MAX_BLOCKS)?;
                Some((worker, inbox))
            }
            SpinOn::AnyJob => state.links.some_light_busy_inbox(SPIN_MAX_BLOCKS),
        }
    }

    /// Reads a worker's channel in this thread and applies what came, as the
    /// dispatcher would. Skipped while another thread reads it.
    fn receive_directly(&self, worker: WorkerId, inbox: &Mutex<Inbox>) {
        let Ok(mut inbox) = inbox.try_lock() else {
            return;
        };
        let mut received = Received::default();
        inbox.receive(&mut received);
        if received.is_empty() && !inbox.needs_dispatcher() {
            return;
        }
        let mut state = self.shared.lock();
        let finished = self.shared.apply(&mut state, worker, &received);
        let State { jobs, links, .. } = &mut *state;
        // The dispatcher will not hear of these results: refill the worker as it would.
        links.dispatch(jobs, Fill::LanesAndPipeline);
        // A Ready frame, EOF or a recycled worker need the dispatcher to read it
        // again; new deadlines need it to re-time its sleep.
        let reread = inbox.needs_dispatcher() || links.used_up(worker);
        if reread {
            state.deferred_reads.push(worker);
        }
        if reread || !received.started.is_empty() {
            self.shared.wake_dispatcher(&mut state);
        }
        drop(state);
        drop(inbox);
        if finished {
            self.shared.wake_waiters();
        }
    }

    /// Cancels an outstanding job; it is then collected with `Error::Canceled`.
    pub fn cancel(&self, job: JobId) -> Result<(), Error> {
        self.check_process()?;
        let mut state = self.shared.lock();
        let ready_before = state.jobs.ready();
        let running_on = state.jobs.cancel(job.0)?;
        self.shared.after_change(&state, ready_before);
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
        let totals = state.jobs.totals();
        Ok(Stats {
            workers_configured: self.shared.settings.workers,
            workers_alive: state.worker_pids.len(),
            jobs_queued: state.jobs.queued() as u64,
            jobs_running: state.jobs.running() as u64,
            jobs_ready: state.jobs.ready() as u64,
            jobs_completed: totals.completed,
            jobs_failed: totals.failed,
            jobs_retried: totals.retried,
            worker_restarts: state.worker_restarts,
            queued_bytes: state.jobs.held_bytes() as u64,
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
        let mut state = self.shared.lock();
        if !state.ready_fd_in_use {
            state.ready_fd_in_use = true;
            if state.jobs.ready() > 0 {
                self.shared.ready_fd.set();
            }
        }
        Ok(self.shared.ready_fd.as_fd())
    }
}

/// What a wait is for, which says which worker it may read itself.
#[derive(Clone, Copy)]
enum SpinOn {
    /// One job: its worker.
    Job(u64),
    /// Any job: any worker holding little work.
    AnyJob,
}

/// The right to spin in a wait, held by one thread at a time.
struct SpinSlot<'a>(&'a AtomicBool);

impl<'a> SpinSlot<'a> {
    fn take(flag: &'a AtomicBool) -> Option<SpinSlot<'a>> {
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinSlot(flag))
    }
}

impl Drop for SpinSlot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
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
            if matches!(self.shared.state.try_lock(), Err(TryLockError::WouldBlock)) {
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
