//! The dispatcher: the one thread that talks to the fork server and the
//! workers. It hands queued jobs to workers, turns their results into finished
//! jobs, notices deaths (channel EOF), enforces job timeouts, carries out
//! cancels and keeps the number of workers up.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::jobs::{Loss, Outcome, WorkerId};
use super::supervisor::Supervisor;
use super::Shared;
use crate::config::LogLevel;
use crate::error::Error;
use crate::forkserver::{self, ForkServer};
use crate::ipc::{self, Control, ControlRecv, Frame, FrameReader, ReadStatus};
use crate::sys::{self, retry_eintr, SyscallReturn};
use crate::worker::WorkerSpec;

/// How long busy workers get to finish on their own at pool_destroy before SIGKILL.
const DESTROY_GRACE: Duration = Duration::from_millis(100);
/// How long pool_destroy waits for the fork server before killing it.
const SERVER_EXIT_LIMIT: Duration = Duration::from_secs(2);

const TOKEN_WAKE: u64 = 0;
const TOKEN_CONTROL: u64 = 1;
const FIRST_WORKER_TOKEN: u64 = 2;

struct InFlight {
    job: u64,
    cost: u64,
    deadline: Option<Instant>,
}

/// Beyond its engine's lanes, a worker is sent more jobs only while all it holds
/// costs at most this many MD5 blocks (about a millisecond of work): tiny jobs
/// travel in batches, so per-job syscalls vanish, while a long job never waits
/// behind another one in a worker when a worker elsewhere could run it.
const PIPELINE_BUDGET_BLOCKS: u64 = 12_000;
/// And at most this many jobs in flight per worker.
const PIPELINE_MAX_JOBS: usize = 1024;

struct Worker {
    pid: i32,
    conn: OwnedFd,
    reader: FrameReader,
    out: Vec<u8>,
    /// Jobs its engine runs at once; `None` until `worker_init` has returned.
    lanes: Option<usize>,
    in_flight: Vec<InFlight>,
    /// Sum of `in_flight` costs.
    in_flight_cost: u64,
    jobs_sent: u64,
    /// The pool is killing it for a canceled or timed-out job: its other jobs in
    /// flight do not count as failed attempts.
    killed: bool,
    /// EPOLLOUT is registered (output is waiting for room in the channel).
    wants_write: bool,
}

/// MD5 blocks a job compresses: its message (and padding) once, then about 1.5
/// blocks per further iteration (a 32-byte append every time, a final block each).
fn cost_in_blocks(len: usize, iterations: u64) -> u64 {
    (len as u64 / 64 + 1).saturating_add(iterations.saturating_sub(1).saturating_mul(3) / 2)
}

impl Worker {
    /// True if this worker should be sent a job of `cost` blocks now.
    fn can_take(&self, cost: u64, max_jobs: u64) -> bool {
        let Some(lanes) = self.lanes else { return false };
        if self.killed || self.jobs_sent >= max_jobs {
            return false;
        }
        let held = self.in_flight.len();
        held < lanes || (held < PIPELINE_MAX_JOBS && self.in_flight_cost + cost <= PIPELINE_BUDGET_BLOCKS)
    }

    /// Drops a job from the in-flight list (it finished or timed out).
    fn forget(&mut self, job: u64) {
        if let Some(at) = self.in_flight.iter().position(|f| f.job == job) {
            self.in_flight_cost -= self.in_flight.swap_remove(at).cost;
        }
    }
}

/// Runs the dispatcher thread: forks the fork server and the first workers,
/// reports the outcome on `started`, then serves until the pool is destroyed.
pub fn run(shared: Arc<Shared>, spec: WorkerSpec, started: SyncSender<Result<(), Error>>) {
    let mut dispatcher = match Dispatcher::start(&shared, &spec) {
        Ok(d) => d,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let first_set = dispatcher.start_first_workers();
    let ok = first_set.is_ok();
    let _ = started.send(first_set);
    if ok {
        dispatcher.serve();
    }
    dispatcher.shut_down();
}

struct Dispatcher<'a> {
    shared: &'a Shared,
    epoll: OwnedFd,
    server: ForkServer,
    server_alive: bool,
    workers: HashMap<WorkerId, Worker>,
    pending_starts: HashSet<WorkerId>,
    supervisor: Supervisor,
    next_worker: WorkerId,
    first_set_left: usize,
    shutting_down: bool,
}

impl<'a> Dispatcher<'a> {
    fn start(shared: &'a Shared, spec: &WorkerSpec) -> Result<Dispatcher<'a>, Error> {
        // SAFETY: plain system call creating a new descriptor that we own.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }.into_result().map_err(|_| Error::Spawn)?;
        // SAFETY: `epoll` was just created and nothing else owns it.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let server = forkserver::start(spec).map_err(|_| Error::Spawn)?;
        let dispatcher = Dispatcher {
            shared,
            epoll,
            server,
            server_alive: true,
            workers: HashMap::new(),
            pending_starts: HashSet::new(),
            supervisor: Supervisor::new(shared.settings.workers, Instant::now()),
            next_worker: 1,
            first_set_left: shared.settings.workers,
            shutting_down: false,
        };
        sys::set_nonblocking(dispatcher.server.control.as_fd()).map_err(|_| Error::Spawn)?;
        dispatcher.watch(shared.wake.as_fd(), TOKEN_WAKE, false).map_err(|_| Error::Spawn)?;
        dispatcher.watch(dispatcher.server.control.as_fd(), TOKEN_CONTROL, false).map_err(|_| Error::Spawn)?;
        Ok(dispatcher)
    }

    /// Requests the first set of workers and waits until each one exists.
    fn start_first_workers(&mut self) -> Result<(), Error> {
        self.request_starts(Instant::now());
        while self.first_set_left > 0 {
            if !self.server_alive || self.supervisor.next_start().is_some() {
                return Err(Error::Spawn);
            }
            self.wait_events(None);
        }
        Ok(())
    }

    fn serve(&mut self) {
        loop {
            let timeout = self.next_timer().map(|t| t.saturating_duration_since(Instant::now()));
            self.wait_events(timeout);
            if self.take_host_requests() {
                return;
            }
            let now = Instant::now();
            self.expire_deadlines(now);
            self.supervise(now);
            self.dispatch(now);
        }
    }

    // ----- events

    fn watch(&self, fd: BorrowedFd<'_>, token: u64, writable: bool) -> io::Result<()> {
        self.epoll_ctl(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), token, writable)
    }

    fn epoll_ctl(&self, op: libc::c_int, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        let events = libc::EPOLLIN | libc::EPOLLRDHUP | if writable { libc::EPOLLOUT } else { 0 };
        let mut event = libc::epoll_event { events: events as u32, u64: token };
        // SAFETY: `event` is a live epoll_event; the descriptors are ours.
        unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) }.into_result().map(drop)
    }

    fn wait_events(&mut self, timeout: Option<Duration>) {
        const MAX_EVENTS: usize = 64;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        // Round up, so that a deadline is never seen as not yet passed on wake-up.
        let timeout_ms = timeout.map_or(-1, |t| t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32);
        // SAFETY: `events` is a live array of MAX_EVENTS entries.
        let n = retry_eintr(|| unsafe {
            libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), MAX_EVENTS as i32, timeout_ms)
        })
        .unwrap_or(0);
        for event in &events[..n as usize] {
            let token = event.u64;
            match token {
                TOKEN_WAKE => {}
                TOKEN_CONTROL => self.on_control(),
                worker => self.on_worker_event(worker - FIRST_WORKER_TOKEN, event.events),
            }
        }
    }

    /// Takes what callers asked for; returns true when the pool is being destroyed.
    fn take_host_requests(&mut self) -> bool {
        let mut state = self.shared.lock();
        if state.wake_pending {
            state.wake_pending = false;
            self.shared.wake.clear();
        }
        let doomed = std::mem::take(&mut state.doomed_workers);
        let shutdown = state.shutdown;
        drop(state);
        for worker in doomed {
            self.kill_worker(worker);
        }
        shutdown
    }

    // ----- the fork server

    fn on_control(&mut self) {
        loop {
            match ipc::recv_control(self.server.control.as_fd()) {
                ControlRecv::Message(Control::Spawned { worker, pid }, Some(conn)) => self.on_spawned(worker, pid, conn),
                ControlRecv::Message(Control::Spawned { worker, .. }, None)
                | ControlRecv::Message(Control::SpawnFailed { worker, .. }, _) => {
                    if self.pending_starts.remove(&worker) {
                        self.first_set_left = self.first_set_left.saturating_sub(1);
                        self.start_failed("could not fork a worker process");
                    }
                }
                ControlRecv::Message(Control::Exited { pid, status }, _) => self.on_exited(pid, status),
                ControlRecv::Message(..) => {}
                ControlRecv::WouldBlock => return,
                ControlRecv::Closed => {
                    let unexpected = self.server_alive && !self.shutting_down;
                    self.server_alive = false;
                    if unexpected {
                        self.shared.log(LogLevel::Error, "md5pool: the fork server died; no worker can be started");
                        self.pending_starts.clear();
                        self.become_unable();
                    }
                    return;
                }
            }
        }
    }

    fn on_spawned(&mut self, id: WorkerId, pid: i32, conn: OwnedFd) {
        if !self.pending_starts.remove(&id) {
            return;
        }
        if self.first_set_left > 0 {
            self.first_set_left -= 1;
        } else {
            self.shared.lock().worker_restarts += 1;
        }
        if sys::set_nonblocking(conn.as_fd()).is_err() || self.watch(conn.as_fd(), FIRST_WORKER_TOKEN + id, false).is_err() {
            self.kill(pid);
            return;
        }
        let worker = Worker {
            pid,
            conn,
            reader: FrameReader::default(),
            out: Vec::new(),
            lanes: None,
            in_flight: Vec::new(),
            in_flight_cost: 0,
            jobs_sent: 0,
            killed: false,
            wants_write: false,
        };
        self.workers.insert(id, worker);
        self.publish_pids();
    }

    fn on_exited(&mut self, pid: i32, status: i32) {
        if let Some((&id, _)) = self.workers.iter().find(|(_, w)| w.pid == pid) {
            // Its channel may still hold results it sent before dying.
            self.read_worker(id);
            if self.workers.contains_key(&id) {
                self.bury(id);
            }
        }
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) != libc::SIGKILL {
            self.shared.log(
                LogLevel::Warn,
                &format!("md5pool: worker {pid} was killed by signal {}", libc::WTERMSIG(status)),
            );
        }
    }

    fn kill(&self, pid: i32) {
        if self.server_alive {
            let _ = ipc::send_control(self.server.control.as_fd(), Control::Kill { pid }, None);
        }
    }

    // ----- workers

    fn on_worker_event(&mut self, id: WorkerId, events: u32) {
        if events & libc::EPOLLOUT as u32 != 0 {
            self.flush(id);
        }
        if events & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            self.read_worker(id);
        }
    }

    /// Reads whatever the worker sent; buries it on EOF or a protocol error.
    fn read_worker(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get_mut(&id) else { return };
        let mut results: Vec<(u64, Outcome)> = Vec::new();
        let mut ready_lanes = None;
        let alive = loop {
            let status = worker.reader.fill(worker.conn.as_fd());
            let parsed = loop {
                match worker.reader.next_frame() {
                    Ok(Some(Frame::Result { id: job, hex })) => results.push((job, Ok(*hex))),
                    Ok(Some(Frame::Ready { lanes })) => ready_lanes = Some((lanes as usize).clamp(1, 1024)),
                    Ok(Some(Frame::Job { .. })) | Err(_) => break false,
                    Ok(None) => break true,
                }
            };
            match status {
                ReadStatus::Data if parsed => continue,
                ReadStatus::WouldBlock if parsed => break true,
                _ => break false,
            }
        };
        if let Some(lanes) = ready_lanes {
            worker.lanes = Some(lanes);
            if self.supervisor.start_succeeded() {
                self.shared.lock().unable_to_start = false;
            }
        }
        self.record_results(id, results);
        if !alive {
            self.bury(id);
        }
    }

    fn record_results(&mut self, id: WorkerId, results: Vec<(u64, Outcome)>) {
        if results.is_empty() {
            return;
        }
        let worker = self.workers.get_mut(&id).expect("caller checked");
        let mut state = self.shared.lock();
        let ready_before = state.jobs.ready();
        for (job, outcome) in results {
            state.jobs.finish_running(job, id, outcome);
            worker.forget(job);
        }
        self.shared.after_change(&state, ready_before);
        drop(state);
        self.retire_if_used_up(id);
    }

    /// Recycles a worker that has run max_jobs_per_worker jobs: closing its
    /// channel makes it exit; a replacement is started by `supervise`.
    fn retire_if_used_up(&mut self, id: WorkerId) {
        let Some(limit) = self.shared.settings.max_jobs_per_worker else { return };
        let Some(worker) = self.workers.get(&id) else { return };
        if worker.jobs_sent >= limit && worker.in_flight.is_empty() && !worker.killed {
            self.workers.remove(&id);
            self.publish_pids();
        }
    }

    /// A worker's channel closed: it is dead (or dying). Decides what becomes of
    /// its jobs in flight and whether its start failed.
    fn bury(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.remove(&id) else { return };
        self.publish_pids();
        let loss = if worker.killed { Loss::Innocent } else { Loss::WorkerDied };
        if !worker.in_flight.is_empty() {
            let mut state = self.shared.lock();
            let ready_before = state.jobs.ready();
            for f in &worker.in_flight {
                state.jobs.lose_running(f.job, id, loss);
            }
            self.shared.after_change(&state, ready_before);
        }
        if !worker.killed {
            if worker.lanes.is_none() {
                self.start_failed("a worker died before its worker_init returned");
            } else {
                self.shared.log(LogLevel::Warn, &format!("md5pool: worker {} died; replacing it", worker.pid));
            }
        }
    }

    fn start_failed(&mut self, why: &str) {
        self.shared.log(LogLevel::Warn, &format!("md5pool: {why}"));
        if self.supervisor.start_failed(Instant::now()) {
            self.shared.log(LogLevel::Error, "md5pool: 5 worker starts failed in a row; failing queued jobs");
            self.become_unable();
        }
    }

    /// Queued jobs finish with POOL_ESPAWN and submissions are refused until a
    /// worker starts cleanly again.
    fn become_unable(&mut self) {
        let mut state = self.shared.lock();
        state.unable_to_start = true;
        let ready_before = state.jobs.ready();
        state.jobs.fail_queued(Error::Spawn);
        self.shared.after_change(&state, ready_before);
    }

    /// Kills a worker for a canceled or timed-out job; `supervise` replaces it.
    fn kill_worker(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get_mut(&id) else { return };
        if !worker.killed {
            worker.killed = true;
            let pid = worker.pid;
            self.kill(pid);
        }
    }

    fn publish_pids(&self) {
        let pids = self.workers.values().map(|w| w.pid).collect();
        self.shared.lock().worker_pids = pids;
    }

    // ----- timers

    fn next_timer(&self) -> Option<Instant> {
        let deadlines = self.workers.values().flat_map(|w| w.in_flight.iter().filter_map(|f| f.deadline));
        let start = if self.missing_workers() > 0 { self.supervisor.next_start() } else { None };
        deadlines.chain(start).min()
    }

    /// Jobs past job_timeout_ms finish with POOL_EJOBTIMEOUT and their worker is killed.
    fn expire_deadlines(&mut self, now: Instant) {
        if self.shared.settings.job_timeout.is_none() {
            return;
        }
        let mut expired = Vec::new();
        for (&id, worker) in &mut self.workers {
            let late: Vec<u64> =
                worker.in_flight.iter().filter(|f| f.deadline.is_some_and(|d| d <= now)).map(|f| f.job).collect();
            for job in late {
                worker.forget(job);
                expired.push((id, job));
            }
        }
        if expired.is_empty() {
            return;
        }
        let mut state = self.shared.lock();
        let ready_before = state.jobs.ready();
        for &(worker, job) in &expired {
            state.jobs.finish_running(job, worker, Err(Error::JobTimeout));
        }
        self.shared.after_change(&state, ready_before);
        drop(state);
        for (worker, _) in expired {
            self.kill_worker(worker);
        }
    }

    // ----- starting workers

    fn missing_workers(&self) -> usize {
        let alive = self.workers.values().filter(|w| !w.killed).count();
        self.shared.settings.workers.saturating_sub(alive + self.pending_starts.len())
    }

    fn supervise(&mut self, now: Instant) {
        self.request_starts(now);
        if self.supervisor.unable() || !self.server_alive {
            let mut state = self.shared.lock();
            let ready_before = state.jobs.ready();
            state.jobs.fail_queued(Error::Spawn);
            self.shared.after_change(&state, ready_before);
        }
    }

    fn request_starts(&mut self, now: Instant) {
        if !self.server_alive {
            return;
        }
        let alive = self.workers.values().filter(|w| !w.killed).count();
        for _ in 0..self.supervisor.starts_due(now, alive, self.pending_starts.len()) {
            let id = self.next_worker;
            self.next_worker += 1;
            if ipc::send_control(self.server.control.as_fd(), Control::Spawn { worker: id }, None).is_err() {
                return;
            }
            self.pending_starts.insert(id);
        }
    }

    // ----- handing out jobs

    /// Gives queued jobs to ready workers, each to the least loaded one that
    /// can take it, until no worker can take the next job or the queue is empty.
    fn dispatch(&mut self, now: Instant) {
        let deadline = self.shared.settings.job_timeout.map(|t| now + t);
        let limit = self.shared.settings.max_jobs_per_worker.unwrap_or(u64::MAX);
        let mut touched = Vec::new();
        let mut state = self.shared.lock();
        while let Some((len, iterations)) = state.jobs.peek_next() {
            let cost = cost_in_blocks(len, iterations);
            let taker = self
                .workers
                .iter_mut()
                .filter(|(_, w)| w.can_take(cost, limit))
                .min_by_key(|(_, w)| w.in_flight.len());
            let Some((&id, worker)) = taker else { break };
            let job = state.jobs.start_next(id).expect("the queue is not empty");
            ipc::encode(&Frame::Job { id: job.id, iterations: job.iterations, msg: &job.msg }, &mut worker.out);
            worker.in_flight.push(InFlight { job: job.id, cost, deadline });
            worker.in_flight_cost += cost;
            worker.jobs_sent += 1;
            touched.push(id);
        }
        drop(state);
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            self.flush(id);
        }
    }

    /// Sends as much pending output as the worker's channel takes; waits for
    /// EPOLLOUT for the rest.
    fn flush(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get_mut(&id) else { return };
        let sent = match ipc::send_some(worker.conn.as_fd(), &worker.out) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // A dead worker: its EOF arrives through epoll and buries it.
            Err(_) => worker.out.len(),
        };
        worker.out.drain(..sent);
        let wants_write = !worker.out.is_empty();
        if wants_write != worker.wants_write {
            worker.wants_write = wants_write;
            let fd = worker.conn.as_raw_fd();
            let _ = self.epoll_ctl(libc::EPOLL_CTL_MOD, fd, FIRST_WORKER_TOKEN + id, wants_write);
        }
    }

    // ----- pool_destroy

    /// Closes every worker's channel (idle workers exit at once), tells the fork
    /// server to kill what is still busy after a short grace, and reaps it.
    fn shut_down(mut self) {
        self.shutting_down = true;
        self.workers.clear();
        self.shared.lock().worker_pids.clear();
        if self.server_alive {
            let grace_ms = DESTROY_GRACE.as_millis() as u64;
            let _ = ipc::send_control(self.server.control.as_fd(), Control::Shutdown { grace_ms }, None);
            let limit = Instant::now() + DESTROY_GRACE + SERVER_EXIT_LIMIT;
            while self.server_alive && Instant::now() < limit {
                self.wait_events(Some(limit.saturating_duration_since(Instant::now())));
            }
            if self.server_alive {
                // SAFETY: the fork server has not closed its channel, so it has not
                // exited and its pid cannot have been reused.
                unsafe { libc::kill(self.server.pid, libc::SIGKILL) };
            }
        }
        let mut status = 0;
        // SAFETY: reaps our own child; ECHILD (the host reaped it) is fine.
        let _ = retry_eintr(|| unsafe { libc::waitpid(self.server.pid, &mut status, 0) });
    }
}
