//! What runs in a worker process: initialize once, then run jobs from the
//! channel until it closes. Never returns: a worker leaves with `_exit`, so the
//! host's atexit handlers and stdio buffers are never run or flushed here.
//!
//! The jobs run in short slices (`SLICE`, [`Lanes::run`]). Between two
//! slices the worker sends every result that finished (one write), reads what
//! the host sent without waiting (new jobs join free lanes at once, stops drop
//! a job and keep the others going), and goes on. Only a worker holding no job
//! sleeps on its channel.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use crate::config::WorkerInit;
use crate::ipc::{self, Frame, FrameReader, ReadStatus};
use crate::kernel::{Engine, Events, Hex, Lanes};
use crate::sys;

/// What every worker of a pool is given at fork.
#[derive(Clone)]
pub struct WorkerSpec {
    pub engine: Engine,
    pub init: Option<WorkerInit>,
    /// Tell the host when each job starts (it enforces job timeouts from then).
    pub report_starts: bool,
    /// Poll the channel for a moment before sleeping (see IDLE_SPIN).
    pub poll_when_idle: bool,
}

/// The CPU time a worker runs its jobs between two looks at its channel: what a
/// new job may wait for a lane, and what a stop may wait to be carried out.
const SLICE: Duration = Duration::from_micros(500);
/// The engine runs in steps this long, and a slice ends early after a step in
/// which a job finished: a result waits about this long at most to be sent. Right
/// after jobs arrived, the slice is one step too: more often follow (a host
/// submitting in a loop), and they should join the lanes at once.
const STEP: Duration = Duration::from_micros(100);

/// Before sleeping, a worker polls its channel this long: a host waiting on a
/// result often sends the next job at once, and waking a sleeping process costs
/// more than this short poll.
const IDLE_SPIN: Duration = Duration::from_micros(50);

/// Becomes a worker: called in the child right after the fork server forked it.
pub fn run(channel: OwnedFd, spec: &WorkerSpec, fork_server: i32) -> ! {
    sys::child_die_with_parent(fork_server);
    sys::child_reset_signals(&[]);
    sys::child_close_inherited_fds(&[channel.as_raw_fd()]);
    sys::run_child(|| serve(&channel, spec))
}

fn serve(channel: &OwnedFd, spec: &WorkerSpec) {
    if let Some(init) = &spec.init {
        init();
    }
    let mut out = Outbox {
        bytes: Vec::with_capacity(4096),
        report_starts: spec.report_starts,
    };
    let mut jobs = Lanes::new(spec.engine);
    let lanes = jobs.capacity() as u64;
    ipc::encode(&Frame::Ready { lanes }, &mut out.bytes);
    let mut reader = FrameReader::new(u32::MAX as usize);
    loop {
        if !out.flush(channel) {
            return;
        }
        let status = if jobs.is_empty() {
            if spec.poll_when_idle {
                poll_briefly(channel, IDLE_SPIN);
            }
            reader.fill(channel.as_fd())
        } else {
            reader.fill_now(channel.as_fd())
        };
        let arrived = match status {
            ReadStatus::Data => match take_frames(&mut reader, &mut jobs, &mut out) {
                // The rest of a frame (a long message) is on its way: read it
                // before the next slice, not one chunk per slice.
                Some(_) if !reader.is_empty() => continue,
                Some(arrived) => arrived,
                None => return,
            },
            ReadStatus::WouldBlock => false,
            // Out of memory, it dies as a worker: the pool replaces it.
            ReadStatus::Closed | ReadStatus::NoMemory => return,
        };
        run_slice(&mut jobs, &mut out, if arrived { STEP } else { SLICE });
    }
}

/// Runs the jobs for up to `slice`, step by step, until a result is ready to go.
fn run_slice(jobs: &mut Lanes, out: &mut Outbox, slice: Duration) {
    let mut used = Duration::ZERO;
    while used < slice && !jobs.is_empty() && out.bytes.is_empty() {
        jobs.run(STEP, out);
        used += STEP;
    }
}

/// Returns as soon as the channel is readable, or after `limit`.
fn poll_briefly(channel: &OwnedFd, limit: Duration) {
    let end = std::time::Instant::now() + limit;
    while !sys::wait_readable([channel.as_fd()], Some(Duration::ZERO))[0]
        && std::time::Instant::now() < end
    {
        std::hint::spin_loop();
    }
}

/// Applies every complete frame read: jobs join the lanes, stops leave them.
/// Returns whether jobs arrived, or `None` when the host spoke nonsense.
fn take_frames(reader: &mut FrameReader, jobs: &mut Lanes, out: &mut Outbox) -> Option<bool> {
    let mut arrived = false;
    loop {
        match reader.next_frame() {
            Ok(Some(Frame::Job {
                id,
                iterations,
                msg,
            })) => {
                jobs.add(id, msg, iterations);
                arrived = true;
            }
            Ok(Some(Frame::Stop { id })) => {
                jobs.remove(id);
                // Confirmed whether or not the job was still here: a result sent
                // before this frame already told the host it is gone.
                ipc::encode(&Frame::Stopped { id }, &mut out.bytes);
            }
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => return Some(arrived),
        }
    }
}

/// What the worker has to tell the host, written once per slice.
struct Outbox {
    bytes: Vec<u8>,
    report_starts: bool,
}

impl Outbox {
    /// Sends everything; false when the host is gone.
    fn flush(&mut self, channel: &OwnedFd) -> bool {
        if self.bytes.is_empty() {
            return true;
        }
        let sent = ipc::send_all(channel.as_fd(), &self.bytes).is_ok();
        self.bytes.clear();
        sent
    }
}

impl Events for Outbox {
    fn started(&mut self, tag: u64) {
        if self.report_starts {
            ipc::encode_started(&[tag], &mut self.bytes);
        }
    }

    fn finished(&mut self, tag: u64, hex: &Hex) {
        ipc::encode(&Frame::Result { id: tag, hex }, &mut self.bytes);
    }
}
