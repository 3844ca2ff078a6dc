//! TEMPORARY stand-in for the resumable lane engine (replaced by the real one):
//! round-robin generic-path chains, correct but slow.
use super::scalar::{words_to_hex, ChainState};
use super::{Engine, Hex};
use std::collections::VecDeque;
use std::time::Duration;

pub trait Events {
    fn started(&mut self, tag: u64);
    fn finished(&mut self, tag: u64, hex: &Hex);
}

struct Job {
    tag: u64,
    st: ChainState,
    left: u64,
}

pub struct Lanes {
    capacity: usize,
    running: Vec<Job>,
    waiting: VecDeque<Job>,
}

impl Lanes {
    pub fn new(engine: Engine) -> Lanes {
        Lanes {
            capacity: engine.lanes().max(4),
            running: Vec::new(),
            waiting: VecDeque::new(),
        }
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn len(&self) -> usize {
        self.running.len() + self.waiting.len()
    }
    pub fn running(&self) -> usize {
        self.running.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn add(&mut self, tag: u64, msg: &[u8], iterations: u64) {
        self.waiting.push_back(Job {
            tag,
            st: ChainState::start(msg),
            left: iterations - 1,
        });
    }
    pub fn remove(&mut self, tag: u64) -> bool {
        let n = self.len();
        self.running.retain(|j| j.tag != tag);
        self.waiting.retain(|j| j.tag != tag);
        n != self.len()
    }
    pub fn run(&mut self, budget: Duration, events: &mut dyn Events) {
        let mut steps = budget.as_nanos() as u64 / 300;
        loop {
            while self.running.len() < self.capacity {
                let Some(j) = self.waiting.pop_front() else {
                    break;
                };
                events.started(j.tag);
                self.running.push(j);
            }
            let mut i = 0;
            while i < self.running.len() {
                if self.running[i].left == 0 {
                    let j = self.running.swap_remove(i);
                    events.finished(j.tag, &words_to_hex(&j.st.pending));
                } else {
                    i += 1;
                }
            }
            if self.running.is_empty() && self.waiting.is_empty() || steps == 0 {
                return;
            }
            for j in &mut self.running {
                let n = j.left.min(64);
                for _ in 0..n {
                    j.st.step();
                }
                j.left -= n;
                steps = steps.saturating_sub(n);
            }
        }
    }
}
