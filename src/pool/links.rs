//! The send side of every worker: the jobs it holds and the bytes waiting to be
//! written to it. It lives under the pool lock, so the thread that submits a job
//! hands it straight to a worker with room (no dispatcher wake-up on the way in),
//! and the dispatcher does the same whenever room appears.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::id_map::IdMap;
use super::inbox::Inbox;
use super::jobs::{JobTable, WorkerId};
use crate::ipc::{self, Frame};
use crate::kernel;
use crate::sys::Epoll;

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
    epoll: Arc<Epoll>,
    max_jobs_per_worker: u64,
    job_timeout: Option<Duration>,
}

impl Links {
    pub fn new(
        epoll: Arc<Epoll>,
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
            let _ = self
                .epoll
                .modify(link.conn.as_fd(), link.token, wants_write);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::ipc::{FrameReader, ReadStatus};

    /// Links to workers over socketpairs, a job table, and the workers' ends.
    struct Bench {
        links: Links,
        jobs: JobTable,
        worker_ends: Vec<UnixStream>,
    }

    const CHEAP: u64 = 10;
    const EXPENSIVE: u64 = 4_000;
    /// More than a pipeline's worth of work.
    const LONG: u64 = 3 * PIPELINE_BUDGET_BLOCKS / 2 + 1;

    impl Bench {
        /// Workers 0 .. `workers`, all still in their `worker_init` (see `ready`).
        fn new(workers: usize, job_timeout: Option<Duration>) -> Bench {
            let epoll = Arc::new(Epoll::new().unwrap());
            let mut links = Links::new(epoll.clone(), None, job_timeout);
            let mut worker_ends = Vec::new();
            for id in 0..workers as WorkerId {
                let (host_end, worker_end) = UnixStream::pair().unwrap();
                host_end.set_nonblocking(true).unwrap();
                worker_end.set_nonblocking(true).unwrap();
                let conn = Arc::new(OwnedFd::from(host_end));
                epoll.add(conn.as_fd(), id, false).unwrap();
                let inbox = Arc::new(Mutex::new(Inbox::new(conn.clone())));
                links.add(id, conn, inbox, id);
                worker_ends.push(worker_end);
            }
            Bench {
                links,
                jobs: JobTable::new(4096, usize::MAX, 3).unwrap(),
                worker_ends,
            }
        }

        /// Worker `id`'s `worker_init` returned.
        fn ready(&mut self, id: WorkerId, lanes: usize) -> &mut Bench {
            self.links.set_ready(id, lanes);
            self
        }

        /// Queues a job that costs exactly `blocks`.
        fn submit(&mut self, blocks: u64) -> u64 {
            let iterations = (blocks - 1) * 2 / 3 + 1;
            // A message block more where the iterations fall one short.
            let short = blocks - kernel::cost_in_blocks(0, iterations);
            let msg = vec![0; 64 * short as usize];
            assert_eq!(kernel::cost_in_blocks(msg.len(), iterations), blocks);
            self.jobs.submit(msg, iterations).unwrap()
        }

        fn dispatch(&mut self, fill: Fill) {
            self.links.dispatch(&mut self.jobs, fill);
        }

        /// Queues a job of `blocks` and dispatches; returns where it runs.
        fn place(&mut self, blocks: u64, fill: Fill) -> Option<WorkerId> {
            let id = self.submit(blocks);
            self.dispatch(fill);
            self.jobs.running_on(id)
        }

        /// Its result came back.
        fn finish(&mut self, id: WorkerId, job: u64) {
            assert!(self.jobs.finish_running(job, id, Ok([b'0'; 32])));
            self.links.finished(id, job);
        }

        /// Every frame worker `id` has been sent since the last look.
        fn frames_to(&self, id: WorkerId) -> Vec<String> {
            let mut reader = FrameReader::new(usize::MAX);
            while reader.fill_now(self.worker_ends[id as usize].as_fd()) == ReadStatus::Data {}
            let mut frames = Vec::new();
            while let Some(frame) = reader.next_frame().unwrap() {
                frames.push(format!("{frame:?}"));
            }
            frames
        }
    }

    #[test]
    fn an_idle_worker_takes_the_next_job_first() {
        let mut b = Bench::new(2, None);
        b.ready(0, 4);
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(0));
        b.ready(1, 4);
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(1));
        assert!(b.place(CHEAP, Fill::LanesAndPipeline).is_some());
        let to_0 = b.frames_to(0);
        assert!(
            to_0[0].starts_with("Job { id: 1, iterations: 7, msg: []"),
            "{to_0:?}"
        );
        assert_eq!(to_0.len() + b.frames_to(1).len(), 3);
    }

    #[test]
    fn a_worker_with_a_free_lane_comes_before_one_without() {
        let mut b = Bench::new(2, None);
        b.ready(0, 1);
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(0));
        b.ready(1, 4);
        assert_eq!(b.place(EXPENSIVE, Fill::LanesAndPipeline), Some(1));
        // Worker 0 holds less work, but its only lane is taken.
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(1));
        // Until its lanes are full.
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(1));
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(1));
        // Then, with no free lane anywhere, the pipeline of the least loaded worker.
        assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(0));
    }

    #[test]
    fn a_submitter_sends_only_expensive_jobs_to_a_busy_workers_free_lane() {
        let mut b = Bench::new(1, None);
        b.ready(0, 4);
        assert_eq!(
            b.place(CHEAP, Fill::Lanes),
            Some(0),
            "an idle worker takes any job"
        );
        let cheap = b.submit(DIRECT_MIN_BLOCKS - 1);
        b.dispatch(Fill::Lanes);
        assert_eq!(b.jobs.running_on(cheap), None);
        assert_eq!(b.jobs.queued(), 1);
        // The dispatcher sends it.
        b.dispatch(Fill::LanesAndPipeline);
        assert_eq!(b.jobs.running_on(cheap), Some(0));
        assert_eq!(b.place(DIRECT_MIN_BLOCKS, Fill::Lanes), Some(0));
        assert_eq!(b.frames_to(0).len(), 3);
    }

    #[test]
    fn beyond_its_lanes_a_worker_takes_jobs_up_to_the_pipeline_budget() {
        let mut b = Bench::new(1, None);
        b.ready(0, 1);
        let ids: Vec<u64> = (0..4).map(|_| b.submit(EXPENSIVE)).collect();
        b.dispatch(Fill::Lanes);
        assert_eq!(b.jobs.queued(), 3, "a submitter fills lanes only");
        b.dispatch(Fill::LanesAndPipeline);
        // The lane's job, then two more within the budget.
        assert_eq!(3 * EXPENSIVE, PIPELINE_BUDGET_BLOCKS);
        let sent: Vec<bool> = ids
            .iter()
            .map(|&id| b.jobs.running_on(id).is_some())
            .collect();
        assert_eq!(sent, [true, true, true, false]);
        // A result makes room.
        b.finish(0, ids[0]);
        b.dispatch(Fill::LanesAndPipeline);
        assert_eq!(b.jobs.running_on(ids[3]), Some(0));
        assert_eq!(b.frames_to(0).len(), 4);
    }

    #[test]
    fn the_pipeline_holds_at_most_pipeline_max_jobs() {
        let mut b = Bench::new(1, None);
        b.ready(0, 1);
        for _ in 0..PIPELINE_MAX_JOBS + 5 {
            b.submit(1);
        }
        b.dispatch(Fill::LanesAndPipeline);
        assert_eq!(b.jobs.queued(), 5);
        assert_eq!(b.frames_to(0).len(), PIPELINE_MAX_JOBS);
    }

    #[test]
    fn a_worker_in_its_init_or_being_killed_takes_no_job() {
        let mut b = Bench::new(3, None);
        b.ready(0, 4).ready(1, 4);
        assert!(b.links.mark_killed(0));
        assert!(!b.links.mark_killed(0));
        for _ in 0..3 {
            assert_eq!(b.place(CHEAP, Fill::LanesAndPipeline), Some(1));
        }
        assert_eq!(b.links.initializing(), 1);
        assert_eq!(b.links.healthy(), 2);
        assert!(b.frames_to(0).is_empty() && b.frames_to(2).is_empty());
    }

    #[test]
    fn stop_sends_a_stop_frame_and_awaits_the_confirmation_for_the_grace() {
        let mut b = Bench::new(1, None);
        b.ready(0, 4);
        let job = b.submit(EXPENSIVE);
        b.dispatch(Fill::Lanes);
        assert_eq!(b.links.next_deadline(), None);
        let t0 = Instant::now();
        assert!(b.links.stop(0, job, t0));
        assert!(!b.links.stop(0, job, t0), "one stop per job");
        assert!(!b.links.stop(0, job + 1, t0), "not a job of this worker");
        let frames = b.frames_to(0);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], format!("Stop {{ id: {job} }}"));
        assert_eq!(b.links.next_deadline(), Some(t0 + STOP_GRACE));
        assert!(b.links.overdue(t0).is_empty());
        assert_eq!(b.links.overdue(t0 + STOP_GRACE), [0]);
        // The stopped job keeps its lane and its cost until confirmed.
        assert!(b.links.inbox_if_light(0, EXPENSIVE - 1).is_none());
        b.links.finished(0, job);
        assert!(b.links.inbox_if_light(0, 0).is_some());
        assert_eq!(b.links.next_deadline(), None);
        assert!(b.links.overdue(t0 + STOP_GRACE).is_empty());
    }

    #[test]
    fn a_job_times_out_from_its_reported_start() {
        let timeout = Duration::from_secs(1);
        let mut b = Bench::new(1, Some(timeout));
        b.ready(0, 4);
        let first = b.submit(CHEAP);
        let second = b.submit(CHEAP);
        b.dispatch(Fill::LanesAndPipeline);
        assert_eq!(b.links.next_deadline(), None, "not started yet");
        let t0 = Instant::now();
        b.links.started(0, &[first], t0);
        b.links.started(0, &[second], t0 + timeout);
        assert_eq!(b.links.next_deadline(), Some(t0 + timeout));
        assert!(b.links.timed_out(t0 + timeout / 2).is_empty());
        assert_eq!(b.links.timed_out(t0 + timeout), [(0, first)]);
        // Stopping it replaces its deadline with the stop's grace.
        assert!(b.links.stop(0, first, t0 + timeout));
        assert!(b.links.timed_out(t0 + timeout).is_empty());
        assert_eq!(b.links.next_deadline(), Some(t0 + timeout + STOP_GRACE));
        b.links.finished(0, first);
        assert_eq!(b.links.next_deadline(), Some(t0 + 2 * timeout));
    }

    #[test]
    fn a_free_lane_beside_long_work_is_reported() {
        let mut b = Bench::new(3, None);
        b.ready(0, 2).ready(1, 2).ready(2, 1);
        assert!(!b.links.has_free_lane_beside_long_work());
        b.links.mark_killed(1);
        b.links.mark_killed(2);
        let short = b.submit(EXPENSIVE);
        b.dispatch(Fill::Lanes);
        assert!(
            !b.links.has_free_lane_beside_long_work(),
            "within a pipeline's worth"
        );
        b.finish(0, short);
        let long = b.submit(LONG);
        b.dispatch(Fill::Lanes);
        assert_eq!(b.jobs.running_on(long), Some(0));
        assert!(b.links.has_free_lane_beside_long_work());
        // A one-lane worker busy with long work has no free lane.
        let mut one_lane = Bench::new(1, None);
        one_lane.ready(0, 1);
        assert_eq!(one_lane.place(LONG, Fill::Lanes), Some(0));
        assert!(!one_lane.links.has_free_lane_beside_long_work());
    }
}
