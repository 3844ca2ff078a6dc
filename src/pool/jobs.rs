//! The job table: every outstanding job, the FIFO queue and the ready list.
//! Pure bookkeeping under the pool's lock; no I/O, no threads. Its room for
//! `capacity` jobs is reserved at creation, so that out of memory a submit
//! fails with POOL_ENOMEM and nothing else here ever allocates.

use std::collections::VecDeque;

use super::id_map::IdMap;
use crate::error::Error;
use crate::kernel::Hex;

/// How a finished job ended.
pub type Outcome = Result<Hex, Error>;

/// A worker, named by the number the pool gave it (never reused).
pub type WorkerId = u64;

/// Where a job is in its life.
#[derive(Debug)]
enum Phase {
    Queued,
    Running { worker: WorkerId },
    Finished { outcome: Outcome },
}

#[derive(Debug)]
struct Job {
    msg: Vec<u8>,
    iterations: u64,
    attempts: u32,
    phase: Phase,
}

/// A job handed to a worker.
pub struct Assignment<'a> {
    pub id: u64,
    pub msg: &'a [u8],
    pub iterations: u64,
}

/// Totals since the pool was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
}

/// Why a running job left its worker without a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The worker died on its own: the attempt counts toward max_attempts.
    WorkerDied,
    /// The pool stopped the worker for another job's sake (cancel, timeout):
    /// the attempt does not count.
    Innocent,
}

pub struct JobTable {
    next_id: u64,
    jobs: IdMap<u64, Job>,
    /// Queued jobs, oldest first. A job canceled while queued stays here until
    /// it reaches the front (or `make_queue_room` sweeps), which keeps a cancel
    /// O(1) however deep the queue; `queued` counts the live entries.
    queue: VecDeque<u64>,
    queued: usize,
    /// Finished jobs in the order they finished. A job collected by id stays
    /// here until `collect_any` passes it (or `note_ready` sweeps), which keeps
    /// collecting by id O(1); `ready_count` counts the live entries.
    ready: VecDeque<u64>,
    ready_count: usize,
    running: usize,
    capacity: usize,
    /// Message bytes held for outstanding jobs, and their cap.
    held_bytes: usize,
    max_held_bytes: usize,
    max_attempts: u32,
    totals: Totals,
}

impl JobTable {
    /// A table with room for `capacity` jobs and `max_held_bytes` of messages;
    /// `NoMemory` when that room cannot be reserved.
    pub fn new(
        capacity: usize,
        max_held_bytes: usize,
        max_attempts: u32,
    ) -> Result<JobTable, Error> {
        let mut table = JobTable {
            next_id: 1,
            jobs: IdMap::default(),
            queue: VecDeque::new(),
            queued: 0,
            ready: VecDeque::new(),
            ready_count: 0,
            running: 0,
            capacity,
            held_bytes: 0,
            max_held_bytes,
            max_attempts,
            totals: Totals::default(),
        };
        let reserved = table.jobs.try_reserve(capacity).is_ok()
            && table.queue.try_reserve_exact(capacity).is_ok()
            && table
                .ready
                .try_reserve_exact(capacity.saturating_mul(2))
                .is_ok();
        if reserved {
            Ok(table)
        } else {
            Err(Error::NoMemory)
        }
    }

    /// Queues a job; its id is never 0 and never reused. `Full` when it would
    /// pass the job or byte cap, `TooBig` when its message alone passes the byte cap.
    pub fn submit(&mut self, msg: Vec<u8>, iterations: u64) -> Result<u64, Error> {
        if msg.len() > self.max_held_bytes {
            return Err(Error::TooBig);
        }
        if self.jobs.len() >= self.capacity || msg.len() > self.max_held_bytes - self.held_bytes {
            return Err(Error::Full);
        }
        // Collected jobs leave tombstones in the map; clearing them may need a
        // new table, which must not abort when memory is short.
        self.jobs.try_reserve(1).map_err(|_| Error::NoMemory)?;
        self.held_bytes += msg.len();
        let id = self.next_id;
        self.next_id += 1;
        self.jobs.insert(
            id,
            Job {
                msg,
                iterations,
                attempts: 0,
                phase: Phase::Queued,
            },
        );
        self.make_queue_room();
        self.queue.push_back(id);
        self.queued += 1;
        Ok(id)
    }

    fn is_queued(&self, id: u64) -> bool {
        matches!(
            self.jobs.get(&id),
            Some(Job {
                phase: Phase::Queued,
                ..
            })
        )
    }

    /// Drops canceled jobs from the front of the queue.
    fn skip_canceled(&mut self) {
        while let Some(&id) = self.queue.front() {
            if self.is_queued(id) {
                return;
            }
            self.queue.pop_front();
        }
    }

    /// Sweeps canceled jobs out of a full queue: it never grows past the room
    /// reserved at creation, as at most `capacity` of its entries are live.
    fn make_queue_room(&mut self) {
        if self.queue.len() == self.queue.capacity() {
            let mut queue = std::mem::take(&mut self.queue);
            queue.retain(|&id| self.is_queued(id));
            self.queue = queue;
        }
    }

    /// The oldest queued job, now running on `worker`.
    pub fn start_next(&mut self, worker: WorkerId) -> Option<Assignment<'_>> {
        self.skip_canceled();
        let id = self.queue.pop_front()?;
        self.queued -= 1;
        let job = self.jobs.get_mut(&id).expect("queued ids are in the table");
        job.attempts += 1;
        job.phase = Phase::Running { worker };
        self.running += 1;
        Some(Assignment {
            id,
            msg: &job.msg,
            iterations: job.iterations,
        })
    }

    /// (message length, iterations) of the job `start_next` would hand out.
    pub fn peek_next(&mut self) -> Option<(usize, u64)> {
        self.skip_canceled();
        let job = &self.jobs[self.queue.front()?];
        Some((job.msg.len(), job.iterations))
    }

    /// The worker running job `id`, if it runs.
    pub fn running_on(&self, id: u64) -> Option<WorkerId> {
        match self.jobs.get(&id)?.phase {
            Phase::Running { worker } => Some(worker),
            _ => None,
        }
    }

    /// Records the outcome of a job running on `worker`. Returns false (and changes
    /// nothing) when the job no longer runs there: canceled, or already lost.
    pub fn finish_running(&mut self, id: u64, worker: WorkerId, outcome: Outcome) -> bool {
        match self.jobs.get(&id) {
            Some(Job {
                phase: Phase::Running { worker: w },
                ..
            }) if *w == worker => {
                self.running -= 1;
                self.finish(id, outcome);
                true
            }
            _ => false,
        }
    }

    /// A job running on `worker` lost its worker: run it again, or finish it with
    /// POOL_EWORKER once it has had max_attempts tries. Returns true if it finished.
    pub fn lose_running(&mut self, id: u64, worker: WorkerId, loss: Loss) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        if !matches!(job.phase, Phase::Running { worker: w } if w == worker) {
            return false;
        }
        self.running -= 1;
        match loss {
            Loss::Innocent => job.attempts -= 1,
            Loss::WorkerDied if job.attempts >= self.max_attempts => {
                self.finish(id, Err(Error::Worker));
                return true;
            }
            Loss::WorkerDied => self.totals.retried += 1,
        }
        job.phase = Phase::Queued;
        self.make_queue_room();
        self.queue.push_front(id);
        self.queued += 1;
        false
    }

    /// Finishes every queued job with `error` (the pool cannot start workers).
    /// Returns how many finished.
    pub fn fail_queued(&mut self, error: Error) -> usize {
        let mut failed = 0;
        while let Some(id) = self.queue.pop_front() {
            if self.is_queued(id) {
                self.finish(id, Err(error));
                failed += 1;
            }
        }
        self.queued = 0;
        failed
    }

    /// Cancels an outstanding job: it finishes (or its result is replaced) with
    /// POOL_ECANCELED. Returns the worker to stop when the job was running.
    pub fn cancel(&mut self, id: u64) -> Result<Option<WorkerId>, Error> {
        let job = self.jobs.get_mut(&id).ok_or(Error::NoJob)?;
        match job.phase {
            Phase::Queued => {
                self.queued -= 1;
                self.finish(id, Err(Error::Canceled));
                Ok(None)
            }
            Phase::Running { worker } => {
                self.running -= 1;
                self.finish(id, Err(Error::Canceled));
                Ok(Some(worker))
            }
            Phase::Finished {
                ref mut outcome, ..
            } => {
                *outcome = Err(Error::Canceled);
                Ok(None)
            }
        }
    }

    /// Collects job `id` if it has finished: `Ok(None)` while it is pending.
    pub fn collect(&mut self, id: u64) -> Result<Option<Outcome>, Error> {
        match self.jobs.get(&id) {
            None => Err(Error::NoJob),
            Some(Job {
                phase: Phase::Finished { .. },
                ..
            }) => Ok(Some(self.take_outcome(id))),
            Some(_) => Ok(None),
        }
    }

    /// Collects the earliest finished job.
    pub fn collect_any(&mut self) -> Option<(u64, Outcome)> {
        while let Some(id) = self.ready.pop_front() {
            if self.is_finished(id) {
                return Some((id, self.take_outcome(id)));
            }
        }
        None
    }

    fn is_finished(&self, id: u64) -> bool {
        matches!(
            self.jobs.get(&id),
            Some(Job {
                phase: Phase::Finished { .. },
                ..
            })
        )
    }

    /// Adds a finished job to the ready list, first sweeping out collected
    /// jobs when the list is full: it never grows past its reserved room, as at
    /// most `capacity` of its entries are live.
    fn note_ready(&mut self, id: u64) {
        if self.ready.len() == self.ready.capacity() {
            let mut ready = std::mem::take(&mut self.ready);
            ready.retain(|&r| self.is_finished(r));
            self.ready = ready;
        }
        self.ready.push_back(id);
        self.ready_count += 1;
    }

    fn take_outcome(&mut self, id: u64) -> Outcome {
        self.ready_count -= 1;
        match self.jobs.remove(&id) {
            Some(Job {
                phase: Phase::Finished { outcome, .. },
                ..
            }) => outcome,
            _ => unreachable!("only finished jobs are collected"),
        }
    }

    fn finish(&mut self, id: u64, outcome: Outcome) {
        match outcome {
            Ok(_) => self.totals.completed += 1,
            Err(_) => self.totals.failed += 1,
        }
        let job = self
            .jobs
            .get_mut(&id)
            .expect("finished ids are in the table");
        job.phase = Phase::Finished { outcome };
        // Its message is not needed any more: the room is free for new jobs.
        self.held_bytes -= job.msg.len();
        job.msg = Vec::new();
        self.note_ready(id);
    }

    /// Submitted and not yet collected.
    pub fn outstanding(&self) -> usize {
        self.jobs.len()
    }

    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn running(&self) -> usize {
        self.running
    }

    /// Finished and not yet collected.
    pub fn ready(&self) -> usize {
        self.ready_count
    }

    /// Message bytes held for jobs not finished yet.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: Hex = *b"1e4110cf294414bc2ac346ad274a7af3";

    fn table(capacity: usize, max_attempts: u32) -> JobTable {
        JobTable::new(capacity, usize::MAX, max_attempts).unwrap()
    }

    fn submit(t: &mut JobTable) -> u64 {
        t.submit(b"msg".to_vec(), 5).unwrap()
    }

    #[test]
    fn ids_start_at_one_and_are_never_reused() {
        let mut t = table(2, 3);
        let a = submit(&mut t);
        let b = submit(&mut t);
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.submit(Vec::new(), 1), Err(Error::Full));
        t.cancel(a).unwrap();
        assert_eq!(t.collect(a), Ok(Some(Err(Error::Canceled))));
        assert_eq!(submit(&mut t), 3);
    }

    #[test]
    fn jobs_run_in_fifo_order_and_collect_once() {
        let mut t = table(10, 3);
        let ids: Vec<u64> = (0..3).map(|_| submit(&mut t)).collect();
        let started: Vec<u64> = (0..3).map(|_| t.start_next(7).unwrap().id).collect();
        assert_eq!(started, ids);
        assert_eq!(t.running(), 3);
        assert_eq!(t.collect(ids[0]), Ok(None));
        assert!(t.finish_running(ids[2], 7, Ok(HEX)));
        assert!(t.finish_running(ids[0], 7, Ok(HEX)));
        assert_eq!(t.ready(), 2);
        assert_eq!(t.collect_any(), Some((ids[2], Ok(HEX))));
        assert_eq!(t.collect(ids[0]), Ok(Some(Ok(HEX))));
        assert_eq!(t.collect(ids[0]), Err(Error::NoJob));
        assert_eq!(t.collect_any(), None);
        assert_eq!(t.collect(999), Err(Error::NoJob));
        assert_eq!(t.outstanding(), 1);
    }

    #[test]
    fn a_result_from_the_wrong_worker_is_ignored() {
        let mut t = table(10, 3);
        let id = submit(&mut t);
        t.start_next(1).unwrap();
        assert!(!t.finish_running(id, 2, Ok(HEX)));
        assert_eq!(t.collect(id), Ok(None));
    }

    #[test]
    fn worker_death_retries_then_fails_with_eworker() {
        let mut t = table(10, 2);
        let id = submit(&mut t);
        assert_eq!(t.start_next(1).unwrap().id, id);
        assert!(!t.lose_running(id, 1, Loss::WorkerDied));
        assert_eq!(t.queued(), 1);
        assert_eq!(t.start_next(2).unwrap().id, id);
        assert!(t.lose_running(id, 2, Loss::WorkerDied));
        assert_eq!(t.collect(id), Ok(Some(Err(Error::Worker))));
        assert_eq!(
            t.totals(),
            Totals {
                completed: 0,
                failed: 1,
                retried: 1
            }
        );
    }

    #[test]
    fn innocent_losses_do_not_use_up_attempts() {
        let mut t = table(10, 1);
        let id = submit(&mut t);
        for worker in 1..5 {
            t.start_next(worker).unwrap();
            assert!(!t.lose_running(id, worker, Loss::Innocent));
        }
        t.start_next(9).unwrap();
        assert!(t.finish_running(id, 9, Ok(HEX)));
    }

    #[test]
    fn retried_jobs_go_to_the_front_of_the_queue() {
        let mut t = table(10, 3);
        let first = submit(&mut t);
        let second = submit(&mut t);
        t.start_next(1).unwrap();
        t.lose_running(first, 1, Loss::WorkerDied);
        assert_eq!(t.start_next(2).unwrap().id, first);
        assert_eq!(t.start_next(2).unwrap().id, second);
    }

    #[test]
    fn cancel_in_every_state() {
        let mut t = table(10, 3);
        let queued = submit(&mut t);
        let running = submit(&mut t);
        let finished = submit(&mut t);
        t.queue.retain(|&q| q != queued);
        t.queue.push_back(queued);
        assert_eq!(t.start_next(4).unwrap().id, running);
        assert_eq!(t.start_next(4).unwrap().id, finished);
        assert!(t.finish_running(finished, 4, Ok(HEX)));
        assert_eq!(t.cancel(queued), Ok(None));
        assert_eq!(t.cancel(running), Ok(Some(4)));
        assert_eq!(t.cancel(finished), Ok(None));
        assert_eq!(t.queued(), 0);
        assert_eq!(t.running(), 0);
        // The canceled running job's late result is ignored.
        assert!(!t.finish_running(running, 4, Ok(HEX)));
        for id in [queued, running, finished] {
            assert_eq!(t.collect(id), Ok(Some(Err(Error::Canceled))));
        }
        assert_eq!(t.cancel(queued), Err(Error::NoJob));
    }

    #[test]
    fn canceled_queued_jobs_never_grow_the_queue_past_its_room() {
        let mut t = table(4, 3);
        let room = t.queue.capacity();
        // Three more than the four live and canceled entries do not fit unswept.
        assert!(room < 7);
        let first: Vec<u64> = (0..4).map(|_| submit(&mut t)).collect();
        for &id in &first[..3] {
            assert_eq!(t.cancel(id), Ok(None));
            assert_eq!(t.collect(id), Ok(Some(Err(Error::Canceled))));
        }
        assert_eq!(t.queued(), 1);
        let more: Vec<u64> = (0..3).map(|_| submit(&mut t)).collect();
        assert_eq!(t.queue.capacity(), room);
        assert_eq!(t.queued(), 4);
        let started: Vec<u64> = (0..4).map(|_| t.start_next(1).unwrap().id).collect();
        assert_eq!(started, [first[3], more[0], more[1], more[2]]);
        assert!(t.start_next(1).is_none());
        assert_eq!(t.queued(), 0);
    }

    #[test]
    fn fail_queued_leaves_running_jobs_alone() {
        let mut t = table(10, 3);
        let running = submit(&mut t);
        let queued = submit(&mut t);
        t.start_next(1).unwrap();
        assert_eq!(t.fail_queued(Error::Spawn), 1);
        assert_eq!(t.collect(queued), Ok(Some(Err(Error::Spawn))));
        assert_eq!(t.collect(running), Ok(None));
    }
}
