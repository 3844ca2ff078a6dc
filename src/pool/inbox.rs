//! The receive side of a worker's channel. The dispatcher reads a channel when
//! epoll reports it; a thread waiting in pool_wait on a short job may read its
//! worker's channel itself for a moment instead (see `Pool::wait`), which takes
//! the dispatcher's wake-up, tens of microseconds on a virtual machine, off the
//! job's latency. Whoever reads applies results and start reports at once
//! ([`super::Shared::apply`]); a Ready frame and the channel's end are the
//! dispatcher's business and wait here until it looks.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::ipc::{Frame, FrameReader, ReadStatus};
use crate::kernel::Hex;

pub struct Inbox {
    conn: Arc<OwnedFd>,
    reader: FrameReader,
    /// Lanes announced by a Ready frame not yet handed to the dispatcher.
    ready_lanes: Option<usize>,
    /// The channel reached EOF or carried nonsense: the worker is dead or dying.
    closed: bool,
}

/// Frames read that anyone holding the pool lock may apply.
#[derive(Default)]
pub struct Received {
    pub results: Vec<(u64, Hex)>,
    pub started: Vec<u64>,
    /// Jobs the worker confirms it dropped when asked to stop them.
    pub stopped: Vec<u64>,
}

impl Received {
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.started.is_empty() && self.stopped.is_empty()
    }
}

impl Inbox {
    pub fn new(conn: Arc<OwnedFd>) -> Inbox {
        Inbox {
            conn,
            reader: FrameReader::default(),
            ready_lanes: None,
            closed: false,
        }
    }

    /// Reads everything the (non-blocking) channel holds now.
    pub fn receive(&mut self, into: &mut Received) {
        while !self.closed {
            let status = self.reader.fill(self.conn.as_fd());
            self.parse(into);
            match status {
                ReadStatus::Data => {}
                ReadStatus::WouldBlock => return,
                ReadStatus::Closed => self.closed = true,
            }
        }
    }

    fn parse(&mut self, into: &mut Received) {
        while !self.closed {
            match self.reader.next_frame() {
                Ok(Some(Frame::Result { id, hex })) => into.results.push((id, *hex)),
                Ok(Some(Frame::Started { ids })) => into.started.extend(ids.iter()),
                Ok(Some(Frame::Stopped { id })) => into.stopped.push(id),
                Ok(Some(Frame::Ready { lanes })) => {
                    self.ready_lanes = Some((lanes as usize).clamp(1, 1024))
                }
                Ok(Some(Frame::Job { .. } | Frame::Stop { .. })) | Err(_) => self.closed = true,
                Ok(None) => return,
            }
        }
    }

    /// What only the dispatcher acts on is waiting.
    pub fn needs_dispatcher(&self) -> bool {
        self.ready_lanes.is_some() || self.closed
    }

    pub fn take_ready_lanes(&mut self) -> Option<usize> {
        self.ready_lanes.take()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
