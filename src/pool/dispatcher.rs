//! The dispatcher: the one thread that talks to the fork server and reads from
//! the workers. It turns results into finished jobs, notices deaths (channel
//! EOF), enforces job timeouts, carries out cancels, keeps the number of workers
//! up, and hands queued jobs to workers whenever room appears (submitters hand
//! them over directly when there is room already).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::id_map::{IdMap, IdSet};
use super::inbox::{Inbox, Received};
use super::jobs::{Loss, WorkerId};
use super::links::{Fill, Removed};
use super::shared::{Shared, State};
use super::supervisor::Supervisor;
use crate::config::LogLevel;
use crate::error::Error;
use crate::forkserver::{self, ForkServer};
use crate::ipc::{self, Control, ControlRecv};
use crate::sys::{self, EpollEvent};
use crate::worker::WorkerSpec;

/// How long busy workers get to finish on their own at pool_destroy before SIGKILL.
const DESTROY_GRACE: Duration = Duration::from_millis(100);
/// How long pool_destroy waits for the fork server before killing it.
const SERVER_EXIT_LIMIT: Duration = Duration::from_secs(2);
/// How long pool_create waits for its first set of worker processes to exist
/// (far longer than forking MAX_WORKERS takes): past it, POOL_ESPAWN.
const FIRST_SET_LIMIT: Duration = Duration::from_secs(20);
/// How soon a channel left unread for want of memory is read again.
const STARVED_RETRY: Duration = Duration::from_millis(10);

const TOKEN_WAKE: u64 = 0;
const TOKEN_CONTROL: u64 = 1;
const FIRST_WORKER_TOKEN: u64 = 2;

/// The receive side of a worker (its send side is in [`super::links`]).
struct Worker {
    pid: i32,
    inbox: Arc<Mutex<Inbox>>,
}

/// Runs the dispatcher thread: forks the fork server and the first workers,
/// reports the outcome on `started`, then serves until the pool is destroyed.
pub fn run(shared: Arc<Shared>, spec: WorkerSpec, started: SyncSender<Result<(), Error>>) {
    let mut dispatcher = match Dispatcher::start(&shared, spec) {
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
        log_engine(&shared, &dispatcher.spec);
        dispatcher.serve();
    }
    dispatcher.shut_down();
}

/// Says which kernel engine the workers run (once, after pool_create returned,
/// so that a host's log sink can never hold pool_create up).
fn log_engine(shared: &Shared, spec: &WorkerSpec) {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (lanes, workers) = (spec.engine.lanes(), shared.settings.workers);
    shared.log(
        LogLevel::Info,
        &format!(
            "md5pool: engine {}, {lanes} lane{} per worker, {workers} worker{}",
            spec.engine.kind().name(),
            plural(lanes),
            plural(workers)
        ),
    );
}

struct Dispatcher<'a> {
    shared: &'a Shared,
    spec: WorkerSpec,
    /// `None` while the fork server is dead (it is restarted like a worker).
    server: Option<ForkServer>,
    workers: IdMap<WorkerId, Worker>,
    pending_starts: IdSet<WorkerId>,
    supervisor: Supervisor,
    next_worker: WorkerId,
    first_set_left: usize,
    /// A process of the first set could not be forked: pool_create fails.
    first_set_failed: bool,
    shutting_down: bool,
    /// Control messages the fork server's full socket did not take yet, sent in
    /// order when it becomes writable (epoll reports it while this is not empty).
    control_out: VecDeque<Control>,
    /// A channel was left unread for want of memory: read it again soon.
    starved: bool,
    /// Reused for every read, so that reading results allocates nothing.
    received: Received,
}

impl<'a> Dispatcher<'a> {
    fn start(shared: &'a Shared, spec: WorkerSpec) -> Result<Dispatcher<'a>, Error> {
        let mut dispatcher = Dispatcher {
            shared,
            spec,
            server: None,
            workers: IdMap::default(),
            pending_starts: IdSet::default(),
            supervisor: Supervisor::new(shared.settings.workers, Instant::now()),
            next_worker: 1,
            first_set_left: shared.settings.workers,
            first_set_failed: false,
            shutting_down: false,
            control_out: VecDeque::new(),
            starved: false,
            received: Received::default(),
        };
        shared
            .epoll
            .add(shared.wake.as_fd(), TOKEN_WAKE, false)
            .map_err(|_| Error::Spawn)?;
        dispatcher.start_server().map_err(|_| Error::Spawn)?;
        Ok(dispatcher)
    }

    /// Forks a fork server (from this thread, which lives as long as the pool).
    fn start_server(&mut self) -> std::io::Result<()> {
        let server = forkserver::start(&self.spec)?;
        let control = server.control.as_fd();
        sys::set_nonblocking(control)
            .and_then(|()| self.shared.epoll.add(control, TOKEN_CONTROL, false))
            .inspect_err(|_| sys::kill_and_reap(server.pid))?;
        self.server = Some(server);
        Ok(())
    }

    /// The fork server's channel closed or failed: it exited, or cannot be
    /// talked to any more. Kill it (it may still live) and reap it; its workers
    /// die with it (PR_SET_PDEATHSIG) and their jobs are re-run on the next fork
    /// server.
    fn on_server_gone(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        sys::kill_and_reap(server.pid);
        self.pending_starts.clear();
        self.control_out.clear();
        if !self.shutting_down {
            self.start_failed("the fork server died; starting a new one");
        }
    }

    /// Requests the first set of workers and waits until each one exists. A
    /// worker that dies in its worker_init does not fail the creation: that is
    /// the pool's business from now on (retries, then POOL_ESPAWN on submit).
    fn start_first_workers(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + FIRST_SET_LIMIT;
        self.request_starts(Instant::now());
        let failed = |d: &Self| d.server.is_none() || d.first_set_failed;
        while self.first_set_left > 0 && !failed(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.shared.log(
                    LogLevel::Error,
                    "md5pool: the first workers did not start in time",
                );
                return Err(Error::Spawn);
            }
            self.wait_events(Some(left));
        }
        if failed(self) {
            Err(Error::Spawn)
        } else {
            Ok(())
        }
    }

    fn serve(&mut self) {
        loop {
            let timeout = self
                .next_timer()
                .map(|t| t.saturating_duration_since(Instant::now()));
            self.wait_events(timeout);
            if self.take_host_requests() {
                return;
            }
            let now = Instant::now();
            self.expire_deadlines(now);
            self.supervise(now);
            self.shared.lock().dispatch(Fill::LanesAndPipeline);
        }
    }

    // ----- events

    fn wait_events(&mut self, timeout: Option<Duration>) {
        const MAX_EVENTS: usize = 64;
        let mut events = [EpollEvent { events: 0, u64: 0 }; MAX_EVENTS];
        let shared = self.shared;
        for event in shared.epoll.wait(&mut events, timeout) {
            match event.u64 {
                TOKEN_WAKE => {}
                TOKEN_CONTROL => {
                    if event.events & libc::EPOLLOUT as u32 != 0 {
                        self.flush_control();
                    }
                    self.on_control()
                }
                token => self.on_worker_event(token - FIRST_WORKER_TOKEN, event.events),
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
        let deferred_reads = std::mem::take(&mut state.deferred_reads);
        let shutdown = state.shutdown;
        drop(state);
        for id in deferred_reads {
            self.read_worker(id);
        }
        shutdown
    }

    // ----- the fork server

    fn on_control(&mut self) {
        loop {
            let Some(server) = &self.server else { return };
            match ipc::recv_control(server.control.as_fd()) {
                ControlRecv::Message(Control::Spawned { worker, pid }, Some(conn)) => {
                    self.on_spawned(worker, pid, conn)
                }
                ControlRecv::Message(Control::Spawned { worker, .. }, None)
                | ControlRecv::Message(Control::SpawnFailed { worker, .. }, _) => {
                    if self.pending_starts.remove(&worker) {
                        self.first_set_failed |= self.first_set_left > 0;
                        self.first_set_left = self.first_set_left.saturating_sub(1);
                        self.start_failed("could not fork a worker process");
                    }
                }
                ControlRecv::Message(Control::Exited { pid, status }, _) => {
                    self.on_exited(pid, status)
                }
                ControlRecv::Message(..) => {}
                ControlRecv::WouldBlock => return,
                ControlRecv::Closed => return self.on_server_gone(),
            }
        }
    }

    fn on_spawned(&mut self, id: WorkerId, pid: i32, conn: OwnedFd) {
        if !self.pending_starts.remove(&id) || self.shutting_down {
            // Closing its channel makes it exit.
            return;
        }
        let first = self.first_set_left > 0;
        self.first_set_left = self.first_set_left.saturating_sub(1);
        let token = FIRST_WORKER_TOKEN + id;
        let registered = sys::set_nonblocking(conn.as_fd())
            .and_then(|()| self.shared.epoll.add(conn.as_fd(), token, false));
        if registered.is_err() {
            self.kill(pid);
            self.first_set_failed |= first;
            self.start_failed("could not watch a worker's channel");
            return;
        }
        let conn = Arc::new(conn);
        let inbox = Arc::new(Mutex::new(Inbox::new(conn.clone())));
        let mut state = self.shared.lock();
        if !first {
            state.worker_restarts += 1;
        }
        state.links.add(id, conn, inbox.clone(), token);
        self.workers.insert(id, Worker { pid, inbox });
        self.publish_pids(&mut state);
    }

    fn on_exited(&mut self, pid: i32, status: i32) {
        if let Some((&id, _)) = self.workers.iter().find(|(_, w)| w.pid == pid) {
            // Its channel may still hold results it sent before dying.
            self.read_worker(id);
            self.bury(id);
        }
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) != libc::SIGKILL {
            let signal = libc::WTERMSIG(status);
            self.shared.log(
                LogLevel::Warn,
                &format!("md5pool: worker {pid} was killed by signal {signal}"),
            );
        }
    }

    /// Asks the fork server to SIGKILL a worker (it is the parent, so the pid
    /// cannot have been reused).
    fn kill(&mut self, pid: i32) {
        self.send_control(Control::Kill { pid });
    }

    /// Sends a control message to the fork server, or queues it behind those its
    /// full socket has not taken yet; none is ever dropped while it lives.
    fn send_control(&mut self, msg: Control) {
        if self.server.is_none() {
            return;
        }
        if self.control_out.try_reserve(1).is_err() {
            return self.start_failed("no memory for a message to the fork server");
        }
        self.control_out.push_back(msg);
        if self.control_out.len() == 1 {
            self.flush_control();
        }
    }

    /// Sends queued control messages until the socket is full; epoll reports
    /// writability exactly while some remain.
    fn flush_control(&mut self) {
        let Some(server) = &self.server else { return };
        let was_waiting = !self.control_out.is_empty();
        while let Some(&msg) = self.control_out.front() {
            match ipc::send_control(server.control.as_fd(), msg, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A dead fork server: its channel's end arrives through epoll.
                Err(_) => {}
            }
            self.control_out.pop_front();
        }
        let waiting = !self.control_out.is_empty();
        if waiting || was_waiting {
            let _ = self
                .shared
                .epoll
                .modify(server.control.as_fd(), TOKEN_CONTROL, waiting);
        }
    }

    /// Kills a worker that did not drop a canceled or timed-out job in time, or
    /// that broke the protocol; `supervise` replaces it.
    fn kill_worker(&mut self, state: &mut State, id: WorkerId) {
        if state.links.mark_killed(id) {
            if let Some(pid) = self.workers.get(&id).map(|w| w.pid) {
                self.kill(pid);
            }
            self.publish_pids(state);
        }
    }

    // ----- workers

    fn on_worker_event(&mut self, id: WorkerId, events: u32) {
        if events & libc::EPOLLOUT as u32 != 0 {
            self.shared.lock().links.flush(id);
        }
        if events & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
        {
            self.read_worker(id);
        }
    }

    /// Reads whatever the worker sent; buries it on EOF, and kills and buries
    /// it on a protocol error.
    fn read_worker(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get(&id) else {
            return;
        };
        let pid = worker.pid;
        let inbox = worker.inbox.clone();
        let mut inbox = inbox.lock().unwrap_or_else(|p| p.into_inner());
        let mut received = std::mem::take(&mut self.received);
        received.clear();
        inbox.receive(&mut received);
        let mut state = self.shared.lock();
        if inbox.is_starved() && state.deferred_reads.try_reserve(1).is_ok() {
            state.deferred_reads.push(id);
            self.starved = true;
        }
        if let Some(lanes) = inbox.take_ready_lanes() {
            state.links.set_ready(id, lanes);
            if self.supervisor.start_succeeded() {
                state.unable_to_start = false;
            }
        }
        let finished = self.shared.apply(&mut state, id, &received);
        self.received = received;
        let used_up = state.links.used_up(id);
        let closed = inbox.is_closed();
        let broke_protocol = inbox.broke_protocol();
        drop(state);
        drop(inbox);
        if finished {
            self.shared.wake_waiters();
        }
        if broke_protocol {
            // User code in the worker (its worker_init) wrote into the channel,
            // or the worker is corrupt: whatever it says next cannot be trusted.
            self.shared.log(
                LogLevel::Warn,
                "md5pool: a worker wrote bytes that are not the pool's protocol; killing it",
            );
            self.kill(pid);
        }
        if used_up {
            // Recycled: closing its channel makes it exit; `supervise` replaces it.
            self.remove_worker(id);
        } else if closed {
            self.bury(id);
        }
    }

    /// Forgets a worker: closes its channel and drops its send side.
    fn remove_worker(&mut self, id: WorkerId) -> Option<Removed> {
        self.workers.remove(&id)?;
        let mut state = self.shared.lock();
        let removed = state.links.remove(id);
        self.publish_pids(&mut state);
        removed
    }

    /// A worker's channel closed: it is dead (or dying). Decides what becomes of
    /// its jobs in flight and whether its start failed.
    fn bury(&mut self, id: WorkerId) {
        let Some(pid) = self.workers.get(&id).map(|w| w.pid) else {
            return;
        };
        let Some(removed) = self.remove_worker(id) else {
            return;
        };
        let loss = if removed.killed {
            Loss::Innocent
        } else {
            Loss::WorkerDied
        };
        if !removed.jobs.is_empty() {
            let mut state = self.shared.lock();
            self.shared.update_jobs(&mut state, |jobs| {
                for &job in &removed.jobs {
                    jobs.lose_running(job, id, loss);
                }
            });
        }
        if !removed.killed {
            if removed.started {
                self.shared.log(
                    LogLevel::Warn,
                    &format!("md5pool: worker {pid} died; replacing it"),
                );
            } else {
                self.start_failed("a worker died before its worker_init returned");
            }
        }
    }

    fn start_failed(&mut self, why: &str) {
        self.shared.log(LogLevel::Warn, &format!("md5pool: {why}"));
        if self.supervisor.start_failed(Instant::now()) {
            self.shared.log(
                LogLevel::Error,
                "md5pool: 5 worker starts failed in a row; failing queued jobs",
            );
            self.become_unable();
        }
    }

    /// Queued jobs finish with POOL_ESPAWN and submissions are refused until a
    /// worker starts cleanly again.
    fn become_unable(&mut self) {
        let mut state = self.shared.lock();
        state.unable_to_start = true;
        self.shared
            .update_jobs(&mut state, |jobs| jobs.fail_queued(Error::Spawn));
    }

    /// The workers callers see (stats, pool_worker_pids): a worker the pool is
    /// killing no longer counts, so a burst of cancels cannot inflate the count
    /// while replacements start.
    fn publish_pids(&self, state: &mut State) {
        let pids = self
            .workers
            .iter()
            .filter(|(&id, _)| !state.links.is_killed(id))
            .map(|(_, w)| w.pid);
        state.worker_pids = pids.collect();
    }

    // ----- timers

    fn next_timer(&mut self) -> Option<Instant> {
        let deadline = self.shared.lock().links.next_deadline();
        let start = if self.missing_workers() > 0 {
            self.supervisor.next_start()
        } else {
            None
        };
        let retry = std::mem::take(&mut self.starved).then(|| Instant::now() + STARVED_RETRY);
        deadline.into_iter().chain(start).chain(retry).min()
    }

    /// Jobs past job_timeout_ms finish with POOL_EJOBTIMEOUT and their workers
    /// are asked to drop them; a worker that has not dropped a job it was asked
    /// to within STOP_GRACE is killed.
    fn expire_deadlines(&mut self, now: Instant) {
        let mut state = self.shared.lock();
        let expired = state.links.timed_out(now);
        self.shared.update_jobs(&mut state, |jobs| {
            for &(worker, job) in &expired {
                jobs.finish_running(job, worker, Err(Error::JobTimeout));
            }
        });
        for &(worker, job) in &expired {
            state.links.stop(worker, job, now);
        }
        for worker in state.links.overdue(now) {
            self.shared.log(
                LogLevel::Warn,
                "md5pool: a worker did not drop a stopped job in time; replacing it",
            );
            self.kill_worker(&mut state, worker);
        }
    }

    // ----- starting workers

    fn missing_workers(&self) -> usize {
        let healthy = self.shared.lock().links.healthy();
        self.shared
            .settings
            .workers
            .saturating_sub(healthy + self.pending_starts.len())
    }

    fn supervise(&mut self, now: Instant) {
        self.request_starts(now);
        if self.supervisor.unable() {
            let mut state = self.shared.lock();
            self.shared
                .update_jobs(&mut state, |jobs| jobs.fail_queued(Error::Spawn));
        }
    }

    fn request_starts(&mut self, now: Instant) {
        let (healthy, initializing) = {
            let state = self.shared.lock();
            (state.links.healthy(), state.links.initializing())
        };
        // A worker still in worker_init is a start whose outcome is not known yet.
        let in_progress = self.pending_starts.len() + initializing;
        let due = self
            .supervisor
            .starts_due(now, healthy - initializing, in_progress);
        if due == 0 || self.shutting_down {
            return;
        }
        if self.server.is_none() {
            if self.start_server().is_err() {
                self.start_failed("could not fork a new fork server");
            }
            return;
        }
        if self.pending_starts.try_reserve(due).is_err() {
            return;
        }
        for _ in 0..due {
            let id = self.next_worker;
            self.next_worker += 1;
            self.pending_starts.insert(id);
            self.send_control(Control::Spawn { worker: id });
        }
    }

    // ----- pool_destroy

    /// Closes every worker's channel (idle workers exit at once), tells the fork
    /// server to kill what is still busy after a short grace, and reaps it.
    fn shut_down(mut self) {
        self.shutting_down = true;
        {
            let mut state = self.shared.lock();
            state.links.clear();
            state.worker_pids.clear();
        }
        self.workers.clear();
        // Workers not forked yet need not be.
        self.control_out
            .retain(|msg| !matches!(msg, Control::Spawn { .. }));
        let grace_ms = DESTROY_GRACE.as_millis() as u64;
        self.send_control(Control::Shutdown { grace_ms });
        let limit = Instant::now() + DESTROY_GRACE + SERVER_EXIT_LIMIT;
        while self.server.is_some() && Instant::now() < limit {
            self.wait_events(Some(limit.saturating_duration_since(Instant::now())));
        }
        if let Some(server) = self.server.take() {
            sys::kill_and_reap(server.pid);
        }
    }
}
