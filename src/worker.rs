//! What runs in a worker process: initialize once, then run jobs from the
//! channel until it closes. Never returns: a worker leaves with `_exit`, so the
//! host's atexit handlers and stdio buffers are never run or flushed here.

use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::config::WorkerInit;
use crate::ipc::{self, Frame, FrameReader, ReadStatus};
use crate::kernel::{self, Engine, Hex, JobInput};
use crate::sys;

/// What every worker of a pool is given at fork.
#[derive(Clone)]
pub struct WorkerSpec {
    pub engine: Engine,
    pub init: Option<WorkerInit>,
    /// Tell the host when each batch starts (it enforces job timeouts from then).
    pub report_starts: bool,
    /// Poll the channel for a moment after each batch before sleeping (see IDLE_SPIN).
    pub poll_after_batch: bool,
}

/// A worker sends finished results at least this often while a long batch runs.
const RESULT_FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// Becomes a worker: called in the child right after the fork server forked it.
pub fn run(channel: OwnedFd, spec: &WorkerSpec, fork_server: i32) -> ! {
    sys::child_die_with_parent(fork_server);
    sys::child_reset_signals(&[]);
    sys::child_close_inherited_fds(&[channel.as_raw_fd()]);
    let code = match catch_unwind(AssertUnwindSafe(|| serve(&channel, spec))) {
        Ok(()) => 0,
        Err(_) => 70,
    };
    // SAFETY: _exit ends the process without running the host's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn serve(channel: &OwnedFd, spec: &WorkerSpec) {
    if let Some(init) = &spec.init {
        init();
    }
    let mut out = Vec::with_capacity(4096);
    ipc::encode(
        &Frame::Ready {
            lanes: spec.engine.lanes() as u64,
        },
        &mut out,
    );
    if ipc::send_all(channel.as_fd(), &out).is_err() {
        return;
    }
    let mut reader = FrameReader::new(u32::MAX as usize);
    let mut batch = Batch::default();
    let lanes = spec.engine.lanes();
    loop {
        if !receive(channel, &mut reader, &mut batch) {
            return;
        }
        // A host submitting in a loop sends jobs one by one: while they keep coming,
        // gather them for a moment (1% of what the batch costs, at most 0.5 ms) so
        // that they share the engine's lanes instead of queueing behind a lone job.
        let deadline = Instant::now() + gather_time(batch.cost);
        while !reader.is_empty() || (batch.ids.len() < lanes && more_within(channel, deadline)) {
            if !receive(channel, &mut reader, &mut batch) {
                return;
            }
        }
        if spec.report_starts && !batch.is_empty() {
            out.clear();
            ipc::encode_started(&batch.ids, &mut out);
            if ipc::send_all(channel.as_fd(), &out).is_err() {
                return;
            }
        }
        if !batch.is_empty() && batch.run(spec.engine, channel, &mut out).is_err() {
            return;
        }
        if spec.poll_after_batch {
            poll_briefly(channel, IDLE_SPIN);
        }
    }
}

/// After a batch, a worker polls its channel this long before it sleeps: a host
/// waiting on a result often sends the next job within microseconds, and waking
/// a sleeping process costs tens of microseconds on a virtual machine.
const IDLE_SPIN: Duration = Duration::from_micros(50);

/// Returns as soon as the channel is readable, or after `limit`.
fn poll_briefly(channel: &OwnedFd, limit: Duration) {
    let end = Instant::now() + limit;
    while !sys::wait_readable(channel.as_fd(), Duration::ZERO) && Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// The longest pause between two jobs that still counts as "they keep coming".
const GATHER_GAP: Duration = Duration::from_micros(50);

fn gather_time(cost_in_blocks: u64) -> Duration {
    // 1% of about 80 ns per block.
    Duration::from_nanos(cost_in_blocks.saturating_mul(8) / 10).min(Duration::from_micros(500))
}

/// True if the channel becomes readable within GATHER_GAP and before `deadline`.
fn more_within(channel: &OwnedFd, deadline: Instant) -> bool {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(GATHER_GAP);
    !left.is_zero() && sys::wait_readable(channel.as_fd(), left)
}

/// Reads from the channel (blocking) and adds every complete job to the batch;
/// false when the channel closed or spoke nonsense.
fn receive(channel: &OwnedFd, reader: &mut FrameReader, batch: &mut Batch) -> bool {
    if reader.fill(channel.as_fd()) != ReadStatus::Data {
        return false;
    }
    loop {
        match reader.next_frame() {
            Ok(Some(Frame::Job {
                id,
                iterations,
                msg,
            })) => batch.push(id, iterations, msg),
            Ok(Some(_)) | Err(_) => return false,
            Ok(None) => return true,
        }
    }
}

/// Jobs received together, run together (one engine call fills its lanes).
#[derive(Default)]
struct Batch {
    ids: Vec<u64>,
    iterations: Vec<u64>,
    spans: Vec<Range<usize>>,
    bytes: Vec<u8>,
    /// Sum of the jobs' costs in MD5 blocks.
    cost: u64,
}

impl Batch {
    fn push(&mut self, id: u64, iterations: u64, msg: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(msg);
        self.ids.push(id);
        self.iterations.push(iterations);
        self.spans.push(start..self.bytes.len());
        self.cost = self
            .cost
            .saturating_add(kernel::cost_in_blocks(msg.len(), iterations));
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Runs every job, sending results as they finish (coalesced), then empties the batch.
    fn run(&mut self, engine: Engine, channel: &OwnedFd, out: &mut Vec<u8>) -> std::io::Result<()> {
        let inputs: Vec<JobInput<'_>> = self
            .spans
            .iter()
            .zip(&self.iterations)
            .map(|(span, &iterations)| JobInput {
                msg: &self.bytes[span.clone()],
                iterations,
            })
            .collect();
        out.clear();
        let mut last_flush = Instant::now();
        let mut failed = None;
        engine.run(&inputs, &mut |index: usize, hex: &Hex| {
            ipc::encode(
                &Frame::Result {
                    id: self.ids[index],
                    hex,
                },
                out,
            );
            if failed.is_none() && last_flush.elapsed() >= RESULT_FLUSH_INTERVAL {
                failed = ipc::send_all(channel.as_fd(), out).err();
                out.clear();
                last_flush = Instant::now();
            }
        });
        drop(inputs);
        self.ids.clear();
        self.iterations.clear();
        self.spans.clear();
        self.bytes.clear();
        self.cost = 0;
        match failed {
            Some(e) => Err(e),
            None => ipc::send_all(channel.as_fd(), out),
        }
    }
}
