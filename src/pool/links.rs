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
/// costs at most this many MD5 blocks (about a millisecond of work): tiny jobs
/// travel in batches, so per-job syscalls vanish, while a long job never waits
/// behind another one in a worker when a worker elsewhere could run it.
const PIPELINE_BUDGET_BLOCKS: u64 = 12_000;
/// And at most this many jobs in flight per worker.
const PIPELINE_MAX_JOBS: usize = 1024;
/// A submitting thread writes a job to a busy worker's free lane itself only when
/// the job costs at least this many blocks (~80 µs of work), against which one
/// system call is noise. Cheaper jobs wait for the dispatcher, which sends them
/// in one batch when the worker's results come back.
const DIRECT_MIN_BLOCKS: u64 = 1_000;

struct InFlight {
    cost: u64,
    deadline: Option<Instant>,
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

    /// Not being killed, and all it holds costs at most `max_cost` blocks: its
    /// results are due any moment.
    fn is_light(&self, max_cost: u64) -> bool {
        !self.killed && self.in_flight_cost <= max_cost
    }

    fn forget(&mut self, job: u64) {
        if let Some(f) = self.in_flight.remove(&job) {
            self.in_flight_cost -= f.cost;
        }
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

    /// True while `job` is in flight on worker `id`.
    pub fn holds(&self, id: WorkerId, job: u64) -> bool {
        self.map
            .get(&id)
            .is_some_and(|link| link.in_flight.contains_key(&job))
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
                f.deadline.get_or_insert(now + timeout);
            }
        }
    }

    /// Takes every job whose deadline has passed off its worker.
    pub fn expire(&mut self, now: Instant) -> Vec<(WorkerId, u64)> {
        let mut expired = Vec::new();
        for (&id, link) in &mut self.map {
            let late: Vec<u64> = link
                .in_flight
                .iter()
                .filter(|(_, f)| f.deadline.is_some_and(|d| d <= now))
                .map(|(&job, _)| job)
                .collect();
            for job in late {
                link.forget(job);
                expired.push((id, job));
            }
        }
        expired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.map
            .values()
            .flat_map(|l| l.in_flight.values().filter_map(|f| f.deadline))
            .min()
    }

    /// Gives queued jobs to workers, each to the least loaded one that can take
    /// it, until no worker can take the next job or the queue is empty. Out of
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
                .min_by_key(|(_, l)| l.in_flight.len());
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
