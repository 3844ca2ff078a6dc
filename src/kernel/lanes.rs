//! Resumable, open engines: a worker's running jobs advance in bounded slices, and jobs come
//! and go between slices.
//!
//! A job takes any free lane and leaves the moment it completes; lanes never wait for each
//! other (the "out of order" scheduling of multi-buffer job managers). A job's chain moves
//! freely between the scalar chain and a SIMD lane (both hold it as a [`Cursor`]), so the
//! lone job of a SIMD engine runs at scalar speed and joins the lanes when another one starts.

use std::collections::VecDeque;
use std::time::Duration;

use super::scalar::{words_to_hex, ChainState, Cursor};
use super::{Engine, Hex, Inner};

/// What the engine tells its caller about the jobs it holds.
pub trait Events {
    /// Job `tag` entered a lane: its run time starts now.
    fn started(&mut self, tag: u64);
    /// Job `tag` finished with `hex` and has left the engine.
    fn finished(&mut self, tag: u64, hex: &Hex);
}

/// A job past iteration 0 that has iterations left.
#[derive(Clone, Copy)]
pub(crate) struct Chain {
    pub(crate) tag: u64,
    pub(crate) cursor: Cursor,
    pub(crate) remaining: u64,
}

impl Chain {
    /// Runs up to `max` iterations on the scalar chain, as many as fit in about `left` ns (at
    /// least one), and charges them to `left`; returns the job's hex if it finished.
    pub(crate) fn advance(&mut self, max: u64, left: &mut u64) -> Option<Hex> {
        let cost = self.cursor.iteration_ns();
        let n = self.remaining.min(max).min((*left / cost).max(1));
        *left = left.saturating_sub(n.saturating_mul(cost));
        let hex = self.cursor.advance(n);
        self.remaining -= n;
        (self.remaining == 0).then(|| words_to_hex(&hex))
    }
}

/// Where an engine keeps its running jobs.
pub(crate) trait Driver: Send {
    /// Jobs it runs at once.
    fn capacity(&self) -> usize;
    fn running(&self) -> usize;
    /// Starts `job` (below the capacity). Returns its hex instead if it finished on the way
    /// in (a SIMD lane first brings a job to the lanes' phase with one scalar iteration).
    fn start(&mut self, job: Chain, left: &mut u64) -> Option<Hex>;
    /// Drops running job `tag`; false if it does not hold it.
    fn remove(&mut self, tag: u64) -> bool;
    /// Advances the running jobs until one of them finishes or about `left` ns are used (at
    /// least one iteration); reports the jobs that finished, whose lanes are then free.
    fn step(&mut self, left: &mut u64, events: &mut dyn Events);
}

/// The scalar engine: a few chains that share the time, so that a short job never waits
/// behind a long one there either.
struct Chains {
    slots: [Option<Chain>; Chains::CAPACITY],
}

impl Chains {
    const CAPACITY: usize = 4;
}

impl Driver for Chains {
    fn capacity(&self) -> usize {
        Chains::CAPACITY
    }

    fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn start(&mut self, job: Chain, _left: &mut u64) -> Option<Hex> {
        let free = self.slots.iter_mut().find(|s| s.is_none());
        *free.expect("a free chain: jobs start only below the capacity") = Some(job);
        None
    }

    fn remove(&mut self, tag: u64) -> bool {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|s| s.tag == tag));
        slot.map(|s| s.take()).is_some()
    }

    fn step(&mut self, left: &mut u64, events: &mut dyn Events) {
        let share = *left / self.running().max(1) as u64;
        for slot in &mut self.slots {
            if let Some(chain) = slot {
                let max = share / chain.cursor.iteration_ns();
                if let Some(hex) = chain.advance(max.max(1), left) {
                    events.finished(chain.tag, &hex);
                    *slot = None;
                }
            }
        }
    }
}

/// The jobs one worker runs: up to `capacity()` at once, the rest wait inside in FIFO order.
pub struct Lanes {
    driver: Box<dyn Driver>,
    /// Jobs that iteration 0 finished: they need no lane and are reported at the next `run`.
    done: VecDeque<(u64, Hex)>,
    waiting: VecDeque<Chain>,
}

impl Lanes {
    pub fn new(engine: Engine) -> Lanes {
        let driver: Box<dyn Driver> = match engine.inner {
            Inner::Scalar => Box::new(Chains {
                slots: [None; Chains::CAPACITY],
            }),
            #[cfg(target_arch = "x86_64")]
            Inner::Avx2(k) => Box::new(super::multibuf::Simd::new(k)),
            #[cfg(target_arch = "x86_64")]
            Inner::Avx512(k) => Box::new(super::multibuf::Simd::new(k)),
        };
        Lanes {
            driver,
            done: VecDeque::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Jobs run at once: the SIMD lanes (64 AVX-512, 24 AVX2); for the scalar engine a few
    /// time-shared scalar chains.
    pub fn capacity(&self) -> usize {
        self.driver.capacity()
    }

    /// Jobs held: running and waiting.
    pub fn len(&self) -> usize {
        self.done.len() + self.waiting.len() + self.driver.running()
    }

    pub fn running(&self) -> usize {
        self.driver.running()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a job (`iterations` >= 1; 0 counts as 1). The message is read now (iteration 0)
    /// and not kept. Never reports events itself: [`Lanes::run`] does.
    pub fn add(&mut self, tag: u64, msg: &[u8], iterations: u64) {
        let st = ChainState::start(msg);
        if iterations <= 1 {
            self.done.push_back((tag, words_to_hex(&st.pending)));
        } else {
            self.waiting.push_back(Chain {
                tag,
                cursor: Cursor::from_chain(&st),
                remaining: iterations - 1,
            });
        }
    }

    /// Drops job `tag`, running or waiting; false if it does not hold it. Its lane is free
    /// at once.
    pub fn remove(&mut self, tag: u64) -> bool {
        if let Some(i) = self.done.iter().position(|d| d.0 == tag) {
            self.done.remove(i);
            return true;
        }
        if let Some(i) = self.waiting.iter().position(|c| c.tag == tag) {
            self.waiting.remove(i);
            return true;
        }
        self.driver.remove(tag)
    }

    /// Works for about `budget` of CPU time and returns (or earlier when it holds nothing
    /// more): moves waiting jobs into free lanes (`started`), advances every running job,
    /// reports each job that finishes (`finished`) and refills its lane from the waiting jobs
    /// at once. It overruns the budget by at most one inner step (one iteration of the lanes).
    pub fn run(&mut self, budget: Duration, events: &mut dyn Events) {
        let mut left = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        while let Some((tag, hex)) = self.done.pop_front() {
            events.started(tag);
            events.finished(tag, &hex);
        }
        loop {
            self.admit(&mut left, events);
            if self.driver.running() == 0 || left == 0 {
                return;
            }
            self.driver.step(&mut left, events);
        }
    }

    /// Starts waiting jobs while there is a free lane.
    fn admit(&mut self, left: &mut u64, events: &mut dyn Events) {
        while self.driver.running() < self.driver.capacity() {
            let Some(job) = self.waiting.pop_front() else {
                return;
            };
            events.started(job.tag);
            if let Some(hex) = self.driver.start(job, left) {
                events.finished(job.tag, &hex);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scalar::{hex_words, Md5};
    use super::super::EngineKind;
    use super::*;

    struct Results(Vec<(u64, Hex)>);

    impl Events for Results {
        fn started(&mut self, _tag: u64) {}
        fn finished(&mut self, tag: u64, hex: &Hex) {
            self.0.push((tag, *hex));
        }
    }

    /// Chains whose bit length crosses 2^32 (the SIMD lanes carry it into the high word
    /// themselves) and 2^64 (the byte count wraps), at every byte offset and in both phases,
    /// moved between the scalar chain and the lanes by slices of a few iterations; compared
    /// with the generic path. (A real chain gets there after 16M iterations or a 512 MiB
    /// message, so the states are forged: any state is a valid chain state.)
    #[test]
    fn length_word_wraps() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut jobs = Vec::new();
        for end in [1u64 << 29, 1 << 61] {
            for p in 0..64 {
                let before = 32 * (rand() % 8);
                let mut buf = [0u8; 64];
                buf.iter_mut().for_each(|b| *b = rand() as u8);
                let st = ChainState {
                    md5: Md5 {
                        s: [rand() as u32, rand() as u32, rand() as u32, rand() as u32],
                        len: end - 32 - before + p,
                        buf,
                    },
                    pending: hex_words([
                        rand() as u32,
                        rand() as u32,
                        rand() as u32,
                        rand() as u32,
                    ]),
                };
                jobs.push((st, 1 + rand() % 20));
            }
        }
        for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
            let Some(engine) = Engine::new(kind) else {
                continue;
            };
            let mut lanes = Lanes::new(engine);
            let mut results = Results(Vec::new());
            for (tag, (st, n)) in jobs.iter().enumerate() {
                lanes.waiting.push_back(Chain {
                    tag: tag as u64,
                    cursor: Cursor::from_chain(st),
                    remaining: *n,
                });
            }
            while !lanes.is_empty() {
                lanes.run(Duration::from_nanos(rand() % 2_000), &mut results);
            }
            assert_eq!(results.0.len(), jobs.len());
            for (tag, hex) in results.0 {
                let (mut st, n) = jobs[tag as usize];
                for _ in 0..n {
                    st.step();
                }
                assert_eq!(
                    hex,
                    words_to_hex(&st.pending),
                    "{}: job {tag}, length {}",
                    kind.name(),
                    jobs[tag as usize].0.md5.len
                );
            }
        }
    }
}
