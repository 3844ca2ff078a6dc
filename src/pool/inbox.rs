//! The receive side of a worker's channel. The dispatcher reads a channel when
//! epoll reports it; a thread waiting in pool_wait on a short job may read its
//! worker's channel itself for a moment instead (see `Pool::wait`), which takes
//! the dispatcher's wake-up off the job's latency. Whoever reads applies results and start reports at once
//! ([`super::Shared::apply`]); a Ready frame and the channel's end are the
//! dispatcher's business and wait here until it looks.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::ipc::{Frame, FrameReader, ReadStatus, MAX_PAYLOAD_TO_HOST};
use crate::kernel::Hex;

pub struct Inbox {
    conn: Arc<OwnedFd>,
    reader: FrameReader,
    /// Lanes announced by a Ready frame not yet handed to the dispatcher.
    ready_lanes: Option<usize>,
    /// The channel reached EOF or carried nonsense: the worker is dead or dying.
    closed: bool,
    /// It carried nonsense: the worker is to be killed.
    broke_protocol: bool,
    /// Bytes wait (in the channel or the reader) that there was no memory to
    /// read or apply: read again later.
    starved: bool,
}

/// The most lanes a worker may announce (its engine's jobs at once).
const MAX_LANES: u64 = 1024;

/// Frames read that anyone holding the pool lock may apply.
#[derive(Default)]
pub struct Received {
    pub results: Vec<(u64, Hex)>,
    pub started: Vec<u64>,
    /// Jobs the worker confirms it dropped when asked to stop them.
    pub stopped: Vec<u64>,
}

impl Received {
    pub fn clear(&mut self) {
        self.results.clear();
        self.started.clear();
        self.stopped.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.started.is_empty() && self.stopped.is_empty()
    }
}

impl Inbox {
    pub fn new(conn: Arc<OwnedFd>) -> Inbox {
        Inbox {
            conn,
            reader: FrameReader::new(MAX_PAYLOAD_TO_HOST),
            ready_lanes: None,
            closed: false,
            broke_protocol: false,
            starved: false,
        }
    }

    /// Reads everything the (non-blocking) channel holds now.
    /// Out of memory, it stops early and says so with `is_starved`.
    pub fn receive(&mut self, into: &mut Received) {
        self.starved = false;
        while !self.closed {
            let status = self.reader.fill(self.conn.as_fd());
            if !self.parse(into) {
                self.starved = true;
                return;
            }
            match status {
                ReadStatus::Data => {}
                ReadStatus::WouldBlock => return,
                ReadStatus::NoMemory => {
                    self.starved = true;
                    return;
                }
                ReadStatus::Closed => self.closed = true,
            }
        }
    }

    /// Parses the frames read; false when there was no memory to keep one
    /// (it stays in the reader for the next time).
    fn parse(&mut self, into: &mut Received) -> bool {
        while !self.closed {
            if into.results.try_reserve(1).is_err() {
                return false;
            }
            let kept = match self.reader.next_frame() {
                Ok(Some(Frame::Result { id, hex })) => {
                    into.results.push((id, *hex));
                    true
                }
                Ok(Some(Frame::Started { ids })) => {
                    append(&mut into.started, ids.iter().count(), ids.iter())
                }
                Ok(Some(Frame::Stopped { id })) => append(&mut into.stopped, 1, [id].into_iter()),
                Ok(Some(Frame::Ready { lanes })) if (1..=MAX_LANES).contains(&lanes) => {
                    self.ready_lanes = Some(lanes as usize);
                    true
                }
                Ok(Some(_)) | Err(_) => {
                    self.closed = true;
                    self.broke_protocol = true;
                    true
                }
                Ok(None) => return true,
            };
            if !kept {
                // No memory to keep it: parsed again next time.
                self.reader.unread_last();
                return false;
            }
        }
        true
    }

    /// What only the dispatcher acts on is waiting (a channel left unread for
    /// want of memory included: it reads it again later).
    pub fn needs_dispatcher(&self) -> bool {
        self.ready_lanes.is_some() || self.closed || self.starved
    }

    pub fn take_ready_lanes(&mut self) -> Option<usize> {
        self.ready_lanes.take()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The worker wrote something that is no frame of this protocol.
    pub fn broke_protocol(&self) -> bool {
        self.broke_protocol
    }

    /// The last `receive` stopped for want of memory: read again later.
    pub fn is_starved(&self) -> bool {
        self.starved
    }
}

/// Appends the `count` `ids` to `list` if there is memory for all of them;
/// false otherwise.
fn append(list: &mut Vec<u64>, count: usize, ids: impl Iterator<Item = u64>) -> bool {
    let fits = list.try_reserve(count).is_ok();
    if fits {
        list.extend(ids);
    }
    fits
}
