//! How a thread waits for a job: it collects the job if it has finished; while
//! the result is due any moment, it reads the worker's channel itself (spins)
//! instead of sleeping until the dispatcher has read it; otherwise it sleeps
//! until a job finishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::inbox::{Inbox, Received};
use super::jobs::{JobTable, WorkerId};
use super::links::Fill;
use super::shared::State;
use super::Pool;
use crate::error::Error;

/// pool_wait reads the channel of its job's worker itself, rather than sleeping
/// until the dispatcher has read it, for at most this long ...
const SPIN_LIMIT: Duration = Duration::from_micros(50);
/// ... when all that worker holds costs at most this many blocks (its results are
/// due within about SPIN_LIMIT).
const SPIN_MAX_BLOCKS: u64 = 500;

/// What a wait is for, which says which worker it may read itself.
#[derive(Clone, Copy)]
pub enum SpinOn {
    /// One job: its worker.
    Job(u64),
    /// Any job: any worker holding little work.
    AnyJob,
}

impl Pool {
    /// Runs `attempt` under the lock until it yields something or `timeout` passes.
    /// While a result it waits for is due any moment (see [`SpinOn`]), reads the
    /// worker's channel instead of sleeping (for SPIN_LIMIT at most).
    pub(super) fn wait_until<T>(
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
            if let Some(result) = self.shared.update_jobs(&mut state, &mut attempt) {
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
                let worker = state.jobs().running_on(job)?;
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
        // The dispatcher will not hear of these results: refill the worker as it would.
        state.dispatch(Fill::LanesAndPipeline);
        // A Ready frame, EOF or a recycled worker need the dispatcher to read it
        // again; new deadlines need it to re-time its sleep.
        let reread = inbox.needs_dispatcher() || state.links.used_up(worker);
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
