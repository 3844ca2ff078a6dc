//! The send side of every worker: the jobs it holds and the bytes waiting to be
//! written to it. It lives under the pool lock, so the thread that submits a job
//! hands it straight to a worker with room (no dispatcher wake-up on the way in),
//! and the dispatcher does the same whenever room appears.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::inbox::Inbox;
use super::jobs::{JobTable, WorkerId};
use super::IdMap;
use crate::ipc::{self, Frame};
use crate::kernel;

/// Beyond its engine's lanes, a worker is sent more jobs only while all it holds
/// costs at most this many MD5 blocks: tiny jobs
/// travel in batches, so per-job syscalls vanish, while a long job never waits
/// behind another one in a worker when a worker elsewhere could run it.
const PIPELINE_BUDGET_BLOCKS: u64 = 12_000;
/// And at most this many jobs in flight per worker.
const PIPELINE_MAX_JOBS: usize = 1024;
/// A submitting thread writes a job to a busy worker's free lane itself only when
/// the job costs at least this many blocks, against which one system call is
/// noise. Cheaper jobs wait for the dispatcher, which sends them
/// in one batch when the worker's results come back.
const DIRECT_MIN_BLOCKS: u64 = 1_000;

/// A worker that does not confirm a stop within this long is killed (and replaced).
pub const STOP_GRACE: Duration = Duration::from_millis(100);

struct InFlight {
    cost: u64,
    /// When job_timeout_ms runs out (set when the worker reports the start).
    deadline: Option<Instant>,
    /// The worker was asked to drop the job (canceled, timed out); it must confirm
    /// by then. The job still takes its lane until it does.
    stop_by: Option<Instant>,
}

impl InFlight {
    fn is_timed(&self) -> bool {
        self.deadline.is_some() || self.stop_by.is_some()
    }
}

struct Link {
    conn: Arc<OwnedFd>,
    /// The receive side, for a waiter that reads the channel itself.
    inbox: Arc<Mutex<Inbox>>,
    /// The worker's epoll token (EPOLLOUT is added while output waits).
    token: u64,
    out: Vec<u8>,
    /// Jobs its engine runs at once; `None` until `worker_init` has returned.
    lanes: Option<usize>,
    /// By job id.
    in_flight: IdMap<u64, InFlight>,
    in_flight_cost: u64,
    /// Jobs in flight with a deadline or a stop to confirm: the timers to look at.
    timed: usize,
    jobs_sent: u64,
    /// The pool is killing it for a canceled or timed-out job: its other jobs in
    /// flight do not count as failed attempts, and it gets no new ones.
    killed: bool,
    wants_write: bool,
}

impl Link {
    fn can_take(&self, cost: u64, max_jobs: u64, fill: Fill) -> bool {
        let Some(lanes) = self.lanes else {
            return false;
        };
        if self.killed || self.jobs_sent >= max_jobs {
            return false;
        }
        let held = self.in_flight.len();
        match fill {
            Fill::Lanes => held == 0 || (held < lanes && cost >= DIRECT_MIN_BLOCKS),
            Fill::LanesAndPipeline => {
                held < lanes
                    || (held < PIPELINE_MAX_JOBS
                        && self.in_flight_cost + cost <= PIPELINE_BUDGET_BLOCKS)
            }
        }
    }

    fn has_free_lane(&self) -> bool {
        !self.killed && self.lanes.is_some_and(|lanes| self.in_flight.len() < lanes)
    }

    /// Not being killed, and all it holds costs at most `max_cost` blocks: its
    /// results are due any moment.
    fn is_light(&self, max_cost: u64) -> bool {
        !self.killed && self.in_flight_cost <= max_cost
    }

    fn forget(&mut self, job: u64) {
        if let Some(f) = self.in_flight.remove(&job) {
            self.in_flight_cost -= f.cost;
            self.timed -= usize::from(f.is_timed());
        }
    }

    /// Whether its timers need looking at.
    fn is_timed(&self) -> bool {
        self.timed > 0 && !self.killed
    }
}

/// How far `dispatch` fills the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// What a submitting thread does: an idle worker takes any job, so that a
    /// lone job starts at once; a busy worker's free lanes take only jobs worth a
    /// system call of their own (see `DIRECT_MIN_BLOCKS`).
    Lanes,
    /// Free lanes, then the pipeline budget: what the dispatcher does each time
    /// results come back.
    LanesAndPipeline,
}

/// What a worker held when it was removed.
pub struct Removed {
    pub jobs: Vec<u64>,
    pub killed: bool,
    pub started: bool,
}

pub struct Links {
    map: IdMap<WorkerId, Link>,
    epoll: Arc<OwnedFd>,
    max_jobs_per_worker: u64,
    job_timeout: Option<Duration>,
}

impl Links {
    pub fn new(
        epoll: Arc<OwnedFd>,
        max_jobs_per_worker: Option<u64>,
        job_timeout: Option<Duration>,
    ) -> Links {
        Links {
            map: IdMap::default(),
            epoll,
            max_jobs_per_worker: max_jobs_per_worker.unwrap_or(u64::MAX),
            job_timeout,
        }
    }

    pub fn add(&mut self, id: WorkerId, conn: Arc<OwnedFd>, inbox: Arc<Mutex<Inbox>>, token: u64) {
        let link = Link {
            conn,
            inbox,
            token,
            out: Vec::new(),
            lanes: None,
            in_flight: IdMap::default(),
            in_flight_cost: 0,
            timed: 0,
            jobs_sent: 0,
            killed: false,
            wants_write: false,
        };
        self.map.insert(id, link);
    }

    pub fn remove(&mut self, id: WorkerId) -> Option<Removed> {
        let link = self.map.remove(&id)?;
        Some(Removed {
            jobs: link.in_flight.keys().copied().collect(),
            killed: link.killed,
            started: link.lanes.is_some(),
        })
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The worker's `worker_init` returned: it takes jobs from now on.
    pub fn set_ready(&mut self, id: WorkerId, lanes: usize) {
        if let Some(link) = self.map.get_mut(&id) {
            link.lanes = Some(lanes);
        }
    }

    /// Marks a worker as being killed; false if it already was, or is gone.
    pub fn mark_killed(&mut self, id: WorkerId) -> bool {
        self.map
            .get_mut(&id)
            .is_some_and(|link| !std::mem::replace(&mut link.killed, true))
    }

    pub fn is_killed(&self, id: WorkerId) -> bool {
        self.map.get(&id).is_some_and(|link| link.killed)
    }

    /// The inbox of worker `id` if it is light (see `Link::is_light`).
    pub fn inbox_if_light(&self, id: WorkerId, max_cost: u64) -> Option<Arc<Mutex<Inbox>>> {
        self.map
            .get(&id)
            .filter(|link| link.is_light(max_cost))
            .map(|link| link.inbox.clone())
    }

    /// A light worker that holds jobs, and its inbox.
    pub fn some_light_busy_inbox(&self, max_cost: u64) -> Option<(WorkerId, Arc<Mutex<Inbox>>)> {
        self.map
            .iter()
            .find(|(_, link)| !link.in_flight.is_empty() && link.is_light(max_cost))
            .map(|(&id, link)| (id, link.inbox.clone()))
    }

    /// Workers still in their worker_init.
    pub fn initializing(&self) -> usize {
        self.map
            .values()
            .filter(|link| link.lanes.is_none() && !link.killed)
            .count()
    }

    /// Workers not being killed.
    pub fn healthy(&self) -> usize {
        self.map.values().filter(|link| !link.killed).count()
    }

    /// A job's result arrived.
    pub fn finished(&mut self, id: WorkerId, job: u64) {
        if let Some(link) = self.map.get_mut(&id) {
            link.forget(job);
        }
    }

    /// True when worker `id` has run max_jobs_per_worker jobs and holds none.
    pub fn used_up(&self, id: WorkerId) -> bool {
        self.map.get(&id).is_some_and(|l| {
            l.jobs_sent >= self.max_jobs_per_worker && l.in_flight.is_empty() && !l.killed
        })
    }

    /// Worker `id` started running `jobs`: job_timeout_ms counts from now.
    pub fn started(&mut self, id: WorkerId, jobs: &[u64], now: Instant) {
        let (Some(link), Some(timeout)) = (self.map.get_mut(&id), self.job_timeout) else {
            return;
        };
        for job in jobs {
            if let Some(f) = link.in_flight.get_mut(job) {
                if !f.is_timed() {
                    f.deadline = Some(now + timeout);
                    link.timed += 1;
                }
            }
        }
    }

    /// Asks worker `id` to drop `job` (canceled or timed out) and keep its other
    /// jobs going. Returns true when a confirmation is now awaited (see `overdue`).
    pub fn stop(&mut self, id: WorkerId, job: u64, now: Instant) -> bool {
        let Some(link) = self.map.get_mut(&id) else {
            return false;
        };
        let Some(f) = link.in_flight.get_mut(&job) else {
            return false;
        };
        if link.killed || f.stop_by.is_some() {
            return false;
        }
        link.timed += usize::from(!f.is_timed());
        f.deadline = None;
        if link.out.try_reserve(ipc::FRAME_HEADER).is_err() {
            // No memory to ask: the worker is overdue at once, and killed.
            f.stop_by = Some(now);
            return true;
        }
        f.stop_by = Some(now + STOP_GRACE);
        ipc::encode(&Frame::Stop { id: job }, &mut link.out);
        self.flush(id);
        true
    }

    /// Every running job whose job_timeout_ms has run out, by worker.
    pub fn timed_out(&self, now: Instant) -> Vec<(WorkerId, u64)> {
        self.jobs_where(|f| f.deadline.is_some_and(|d| d <= now))
    }

    /// Workers that did not confirm a stop in time.
    pub fn overdue(&self, now: Instant) -> Vec<WorkerId> {
        let mut late: Vec<WorkerId> = self
            .jobs_where(|f| f.stop_by.is_some_and(|d| d <= now))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        late.dedup();
        late
    }

    fn jobs_where(&self, pick: impl Fn(&InFlight) -> bool) -> Vec<(WorkerId, u64)> {
        self.map
            .iter()
            .filter(|(_, link)| link.is_timed())
            .flat_map(|(&id, link)| {
                link.in_flight
                    .iter()
                    .filter(|(_, f)| pick(f))
                    .map(move |(&job, _)| (id, job))
            })
            .collect()
    }

    /// The next job timeout or stop confirmation due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.map
            .values()
            .filter(|link| link.is_timed())
            .flat_map(|l| {
                l.in_flight
                    .values()
                    .filter_map(|f| f.deadline.or(f.stop_by))
            })
            .min()
    }

    /// Some worker has a free lane but will not send results for a while (it
    /// holds more than a pipeline's worth of work): a job queued now would wait
    /// for the dispatcher to notice. (A worker holding only cheap jobs sends its
    /// results soon, and the dispatcher refills it then.)
    pub fn has_free_lane_beside_long_work(&self) -> bool {
        self.map
            .values()
            .any(|link| link.has_free_lane() && link.in_flight_cost > PIPELINE_BUDGET_BLOCKS)
    }

    /// Gives queued jobs to workers until no worker can take the next job or the
    /// queue is empty. Each goes where it starts soonest: a worker with a free
    /// lane (an idle one first), else the one holding the least work. Out of
    /// memory for a job's bytes, the job stays queued for a later call.
    pub fn dispatch(&mut self, jobs: &mut JobTable, fill: Fill) {
        let mut touched: Vec<WorkerId> = Vec::new();
        while let Some((len, iterations)) = jobs.peek_next() {
            let cost = kernel::cost_in_blocks(len, iterations);
            let max_jobs = self.max_jobs_per_worker;
            let taker = self
                .map
                .iter_mut()
                .filter(|(_, l)| l.can_take(cost, max_jobs, fill))
                .min_by_key(|(_, l)| (!l.has_free_lane(), l.in_flight_cost));
            let Some((&id, link)) = taker else { break };
            let room = link.out.try_reserve(ipc::FRAME_HEADER + len).is_ok()
                && link.in_flight.try_reserve(1).is_ok()
                && touched.try_reserve(1).is_ok();
            if !room {
                break;
            }
            let job = jobs.start_next(id).expect("the queue is not empty");
            ipc::encode(
                &Frame::Job {
                    id: job.id,
                    iterations: job.iterations,
                    msg: job.msg,
                },
                &mut link.out,
            );
            // The timeout clock starts when the worker says the job started.
            link.in_flight.insert(
                job.id,
                InFlight {
                    cost,
                    deadline: None,
                    stop_by: None,
                },
            );
            link.in_flight_cost += cost;
            link.jobs_sent += 1;
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        for id in touched {
            self.flush(id);
        }
    }

    /// Sends as much pending output as the worker's channel takes, and has epoll
    /// report when the rest can go.
    pub fn flush(&mut self, id: WorkerId) {
        let Some(link) = self.map.get_mut(&id) else {
            return;
        };
        if link.out.is_empty() && !link.wants_write {
            return;
        }
        let sent = match ipc::send_some(link.conn.as_fd(), &link.out) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // A dead worker: its EOF arrives through epoll and buries it.
            Err(_) => link.out.len(),
        };
        link.out.drain(..sent);
        let wants_write = !link.out.is_empty();
        if wants_write != link.wants_write {
            link.wants_write = wants_write;
            let _ = watch(
                self.epoll.as_fd(),
                link.conn.as_fd(),
                link.token,
                libc::EPOLL_CTL_MOD,
                wants_write,
            );
        }
    }
}

/// Adds or changes a descriptor's epoll registration: readable (and hang-up)
/// always, writable on request.
pub fn watch(
    epoll: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    token: u64,
    op: libc::c_int,
    writable: bool,
) -> io::Result<()> {
    let events = libc::EPOLLIN | libc::EPOLLRDHUP | if writable { libc::EPOLLOUT } else { 0 };
    let mut event = libc::epoll_event {
        events: events as u32,
        u64: token,
    };
    // SAFETY: `event` is a live epoll_event; both descriptors are borrowed live.
    let ret = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd.as_raw_fd(), &mut event) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
