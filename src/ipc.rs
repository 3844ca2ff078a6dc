//! Framing over the two kinds of channel:
//! - a worker channel (stream socketpair, host <-> one worker): [`Frame`]s of a
//!   24-byte header and a payload, so that a worker can hold many jobs at once;
//! - the control channel (seqpacket socketpair, host <-> fork server): fixed-size
//!   [`Control`] messages, a worker's channel travelling with `Spawned` as SCM_RIGHTS.
//!
//! Both ends are on the same machine and built from the same library, so integers
//! travel in native byte order.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::kernel::Hex;
use crate::sys::retry_eintr;

pub const FRAME_HEADER: usize = 24;

/// What a frame on a worker channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// host -> worker: run `msg` for `iterations`.
    Job {
        id: u64,
        iterations: u64,
        msg: &'a [u8],
    },
    /// worker -> host: `worker_init` returned; the engine wants `lanes` jobs at once.
    Ready { lanes: u64 },
    /// worker -> host: job `id` finished.
    Result { id: u64, hex: &'a Hex },
    /// worker -> host: these jobs entered a lane and run from now on (sent only
    /// when the pool enforces job_timeout_ms, whose clock starts here).
    Started { ids: IdList<'a> },
    /// host -> worker: drop job `id` (canceled or timed out), keep the others going.
    Stop { id: u64 },
    /// worker -> host: job `id` is no longer held (dropped, or it had finished
    /// and its result went before this frame).
    Stopped { id: u64 },
}

/// Job ids as they travel in a `Started` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdList<'a>(&'a [u8]);

impl<'a> IdList<'a> {
    pub fn iter(self) -> impl Iterator<Item = u64> + 'a {
        self.0
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
    }
}

const KIND_JOB: u32 = 1;
const KIND_READY: u32 = 2;
const KIND_RESULT: u32 = 3;
const KIND_STARTED: u32 = 4;
const KIND_STOP: u32 = 5;
const KIND_STOPPED: u32 = 6;

/// Appends a `Started` frame for `ids` to `out`.
pub fn encode_started(ids: &[u64], out: &mut Vec<u8>) {
    put_header(out, KIND_STARTED, ids.len() * 8, 0, 0);
    for id in ids {
        out.extend_from_slice(&id.to_ne_bytes());
    }
}

fn put_header(out: &mut Vec<u8>, kind: u32, payload_len: usize, a: u64, b: u64) {
    out.extend_from_slice(&(payload_len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&a.to_ne_bytes());
    out.extend_from_slice(&b.to_ne_bytes());
}

/// Appends the encoding of `frame` to `out`.
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) {
    match *frame {
        Frame::Job {
            id,
            iterations,
            msg,
        } => {
            put_header(out, KIND_JOB, msg.len(), id, iterations);
            out.extend_from_slice(msg);
        }
        Frame::Ready { lanes } => put_header(out, KIND_READY, 0, lanes, 0),
        Frame::Result { id, hex } => {
            put_header(out, KIND_RESULT, hex.len(), id, 0);
            out.extend_from_slice(hex);
        }
        Frame::Started { ids } => {
            put_header(out, KIND_STARTED, ids.0.len(), 0, 0);
            out.extend_from_slice(ids.0);
        }
        Frame::Stop { id } => put_header(out, KIND_STOP, 0, id, 0),
        Frame::Stopped { id } => put_header(out, KIND_STOPPED, 0, id, 0),
    }
}

/// A malformed frame: the peer is not speaking this protocol (a bug or memory
/// corruption in the peer, or user code in a worker writing into the channel);
/// the channel is dropped like a dead worker's.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The longest payload a worker sends the host: a `Started` frame for every job a
/// worker may hold (8 bytes an id) fits many times over. A header announcing more
/// is garbage, refused before its payload is waited for or allocated.
pub const MAX_PAYLOAD_TO_HOST: usize = 64 * 1024;

/// Accumulates bytes read from a stream channel and splits them into frames.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    /// The longest payload this side accepts.
    max_payload: usize,
    /// Where the frame `next_frame` returned last began.
    last_start: usize,
}

/// Outcome of one read from a channel.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// Some bytes arrived.
    Data,
    /// Nothing to read now (non-blocking channel).
    WouldBlock,
    /// No memory for the bytes waiting (nothing was read).
    NoMemory,
    /// The peer closed its end, or the channel failed.
    Closed,
}

/// Bytes one `fill` reads at most.
const READ_CHUNK: usize = 64 * 1024;

impl FrameReader {
    /// A reader that refuses frames with a payload longer than `max_payload`.
    pub fn new(max_payload: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            max_payload,
            last_start: 0,
        }
    }

    /// Reads what the channel holds (up to a bounded chunk) into the buffer,
    /// waiting for data if the channel is a blocking one. Never aborts for
    /// memory: without room for more bytes it reads nothing.
    pub fn fill(&mut self, fd: BorrowedFd<'_>) -> ReadStatus {
        self.fill_with(fd, 0)
    }

    /// Like `fill`, but never waits, whatever the channel's mode.
    pub fn fill_now(&mut self, fd: BorrowedFd<'_>) -> ReadStatus {
        self.fill_with(fd, libc::MSG_DONTWAIT)
    }

    fn fill_with(&mut self, fd: BorrowedFd<'_>, flags: libc::c_int) -> ReadStatus {
        if !self.make_room() {
            return ReadStatus::NoMemory;
        }
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf`.
        let n = retry_eintr(|| unsafe {
            libc::recv(
                fd.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                flags,
            )
        });
        match n {
            Ok(0) => ReadStatus::Closed,
            Ok(n) => {
                // SAFETY: recv() initialized the first `n` bytes of the spare capacity.
                unsafe { self.buf.set_len(self.buf.len() + n as usize) };
                ReadStatus::Data
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadStatus::WouldBlock,
            Err(_) => ReadStatus::Closed,
        }
    }

    /// Drops consumed bytes and makes room for a chunk; false when there is no
    /// room at all. The buffer keeps its capacity, so once it has grown this
    /// allocates nothing.
    fn make_room(&mut self) -> bool {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.try_reserve(READ_CHUNK).is_ok() || self.buf.capacity() > self.buf.len()
    }

    /// The next complete frame in the buffer, if any. A header that no legal
    /// frame has (unknown kind, wrong or too long a payload) is `Malformed` as
    /// soon as it arrives, without waiting for the payload it announces.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, Malformed> {
        let avail = &self.buf[self.start..];
        if avail.len() < FRAME_HEADER {
            return Ok(None);
        }
        let word = |at: usize| u64::from_ne_bytes(avail[at..at + 8].try_into().unwrap());
        let len = u32::from_ne_bytes(avail[0..4].try_into().unwrap()) as usize;
        let kind = u32::from_ne_bytes(avail[4..8].try_into().unwrap());
        let (a, b) = (word(8), word(16));
        if len > self.max_payload || !legal_payload(kind, len) {
            return Err(Malformed);
        }
        if avail.len() < FRAME_HEADER + len {
            // Room for the rest of this frame (at most max_payload) before it comes.
            let _ = self.buf.try_reserve(FRAME_HEADER + len - avail.len());
            return Ok(None);
        }
        let payload = &self.buf[self.start + FRAME_HEADER..self.start + FRAME_HEADER + len];
        let frame = match kind {
            KIND_JOB => Frame::Job {
                id: a,
                iterations: b,
                msg: payload,
            },
            KIND_READY => Frame::Ready { lanes: a },
            KIND_RESULT => Frame::Result {
                id: a,
                hex: payload.try_into().map_err(|_| Malformed)?,
            },
            KIND_STARTED => Frame::Started {
                ids: IdList(payload),
            },
            KIND_STOP => Frame::Stop { id: a },
            KIND_STOPPED => Frame::Stopped { id: a },
            _ => return Err(Malformed),
        };
        self.last_start = self.start;
        self.start += FRAME_HEADER + len;
        Ok(Some(frame))
    }

    /// Puts back the frame `next_frame` returned last (a reader that had no
    /// memory to keep it).
    pub fn unread_last(&mut self) {
        self.start = self.last_start;
    }

    /// True when every byte read so far has been consumed as frames.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }
}

/// Whether a frame of `kind` may carry a payload of `len` bytes.
fn legal_payload(kind: u32, len: usize) -> bool {
    match kind {
        KIND_JOB => true,
        KIND_READY => len == 0,
        KIND_RESULT => len == std::mem::size_of::<Hex>(),
        KIND_STARTED => len.is_multiple_of(8),
        KIND_STOP | KIND_STOPPED => len == 0,
        _ => false,
    }
}

/// Writes as much of `buf` as the channel takes; returns how many bytes went.
/// Never raises SIGPIPE (MSG_NOSIGNAL), whatever the host's disposition.
pub fn send_some(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, readable buffer of `buf.len()` bytes.
    retry_eintr(|| unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    })
    .map(|n| n as usize)
}

/// Writes all of `buf`, blocking as needed (for blocking channels).
pub fn send_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = send_some(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// A message on the control channel between the host and its fork server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// host -> fork server: fork worker `worker` (a number never reused in a pool).
    Spawn { worker: u64 },
    /// host -> fork server: SIGKILL this worker (the fork server, being the parent
    /// that has not reaped it yet, is the only one that can name it without a pid race).
    Kill { pid: i32 },
    /// host -> fork server: workers' channels are closed; wait up to `grace_ms` for
    /// them to exit, SIGKILL the rest, reap them all and exit.
    Shutdown { grace_ms: u64 },
    /// fork server -> host: `worker` runs as `pid`; its channel rides along.
    Spawned { worker: u64, pid: i32 },
    /// fork server -> host: `worker` could not be forked (errno).
    SpawnFailed { worker: u64, errno: i32 },
    /// fork server -> host: a worker exited and was reaped (raw wait status).
    Exited { pid: i32, status: i32 },
}

const CONTROL_LEN: usize = 32;

impl Control {
    fn to_bytes(self) -> [u8; CONTROL_LEN] {
        let words: [u64; 4] = match self {
            Control::Spawn { worker } => [1, worker, 0, 0],
            Control::Kill { pid } => [2, pid as u64, 0, 0],
            Control::Shutdown { grace_ms } => [3, grace_ms, 0, 0],
            Control::Spawned { worker, pid } => [4, worker, pid as u64, 0],
            Control::SpawnFailed { worker, errno } => [5, worker, errno as u64, 0],
            Control::Exited { pid, status } => [6, pid as u64, status as u64, 0],
        };
        let mut out = [0u8; CONTROL_LEN];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8; CONTROL_LEN]) -> Option<Control> {
        let w = |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        Some(match w(0) {
            1 => Control::Spawn { worker: w(1) },
            2 => Control::Kill { pid: w(1) as i32 },
            3 => Control::Shutdown { grace_ms: w(1) },
            4 => Control::Spawned {
                worker: w(1),
                pid: w(2) as i32,
            },
            5 => Control::SpawnFailed {
                worker: w(1),
                errno: w(2) as i32,
            },
            6 => Control::Exited {
                pid: w(1) as i32,
                status: w(2) as i32,
            },
            _ => return None,
        })
    }
}

/// Sends one control message, with `fd` attached as SCM_RIGHTS when given.
pub fn send_control(sock: BorrowedFd<'_>, msg: Control, fd: Option<RawFd>) -> io::Result<()> {
    let bytes = msg.to_bytes();
    let iov = [IoSlice::new(&bytes)];
    let fds;
    let cmsgs: &[ControlMessage<'_>] = match fd {
        Some(fd) => {
            fds = [fd];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    retry_eintr(|| {
        sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
            .map_err(io::Error::from)
    })
    .map(drop)
}

/// Outcome of receiving on the control channel.
pub enum ControlRecv {
    Message(Control, Option<OwnedFd>),
    WouldBlock,
    Closed,
}

/// Receives one control message (and the descriptor it carries, close-on-exec),
/// without blocking.
pub fn recv_control(sock: BorrowedFd<'_>) -> ControlRecv {
    let mut bytes = [0u8; CONTROL_LEN];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let received = retry_eintr(|| {
        let mut iov = [IoSliceMut::new(&mut bytes)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let mut fd = None;
        // Truncated (MSG_CTRUNC: this process is out of descriptors, and the
        // kernel dropped the one sent): the message comes without it.
        for cmsg in msg.cmsgs().into_iter().flatten() {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed `raw` in this process; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        Ok((msg.bytes, fd))
    });
    match received {
        Ok((CONTROL_LEN, fd)) => match Control::from_bytes(&bytes) {
            Some(msg) => ControlRecv::Message(msg, fd),
            None => ControlRecv::Closed,
        },
        Ok(_) => ControlRecv::Closed,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => ControlRecv::WouldBlock,
        Err(_) => ControlRecv::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut started = Vec::new();
        for id in [3u64, u64::MAX] {
            started.extend_from_slice(&id.to_ne_bytes());
        }
        let hex = *b"1e4110cf294414bc2ac346ad274a7af3";
        let frames = [
            Frame::Job {
                id: 7,
                iterations: 1_000_000,
                msg: b"Hello\0World",
            },
            Frame::Ready { lanes: 64 },
            Frame::Result {
                id: u64::MAX,
                hex: &hex,
            },
            Frame::Job {
                id: 8,
                iterations: 1,
                msg: b"",
            },
            Frame::Started {
                ids: IdList(&started),
            },
            Frame::Stop { id: 9 },
            Frame::Stopped { id: u64::MAX },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            encode(f, &mut wire);
        }
        // Feed the bytes one at a time, as a slow stream would deliver them.
        let mut reader = FrameReader::new(usize::MAX);
        let mut seen = Vec::new();
        for byte in wire {
            reader.buf.push(byte);
            while let Some(frame) = reader.next_frame().unwrap() {
                seen.push(format!("{frame:?}"));
            }
        }
        let expected: Vec<_> = frames.iter().map(|f| format!("{f:?}")).collect();
        assert_eq!(seen, expected);
        assert!(reader.is_empty());
    }

    #[test]
    fn unknown_kind_is_malformed() {
        let mut reader = FrameReader::new(usize::MAX);
        put_header(&mut reader.buf, 99, 0, 0, 0);
        assert_eq!(reader.next_frame(), Err(Malformed));
    }

    impl FrameReader {
        /// What `fill` does, with bytes from memory: returns how many it took.
        fn feed(&mut self, bytes: &[u8]) -> usize {
            assert!(self.make_room());
            let n = bytes.len().min(self.buf.capacity() - self.buf.len());
            self.buf.extend_from_slice(&bytes[..n]);
            n
        }
    }

    /// Wire pieces: well-formed frames, headers announcing anything, raw garbage.
    fn wire_piece() -> impl Strategy<Value = Vec<u8>> {
        let frame = (0u32..6, 0u64..3, any::<u64>()).prop_map(|(kind, ids, a)| {
            let mut out = Vec::new();
            match kind {
                KIND_READY => encode(&Frame::Ready { lanes: a }, &mut out),
                KIND_STARTED => encode_started(&vec![a; ids as usize], &mut out),
                _ => encode(
                    &Frame::Result {
                        id: a,
                        hex: &[b'0'; 32],
                    },
                    &mut out,
                ),
            }
            out
        });
        let header = (any::<u32>(), 0u32..8).prop_map(|(len, kind)| {
            let mut out = Vec::new();
            put_header(&mut out, kind, len as usize, 1, 2);
            out
        });
        prop_oneof![frame, header, prop::collection::vec(any::<u8>(), 0..200)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The host's decoder, on anything a worker (or user code in it) may
        /// write, split anywhere: never panics, never waits for more than a legal
        /// frame, never holds more than a read chunk plus a legal frame (twice,
        /// for the buffer's growth).
        #[test]
        fn decoder_survives_arbitrary_bytes(
            pieces in prop::collection::vec(wire_piece(), 0..12),
            cuts in prop::collection::vec(1usize..300, 1..20),
        ) {
            let wire = pieces.concat();
            let mut reader = FrameReader::new(MAX_PAYLOAD_TO_HOST);
            let mut at = 0;
            let mut cut = cuts.iter().cycle();
            while at < wire.len() {
                let end = (at + cut.next().unwrap()).min(wire.len());
                at += reader.feed(&wire[at..end]);
                loop {
                    match reader.next_frame() {
                        Ok(Some(_)) => continue,
                        Ok(None) => {
                            let waiting = reader.buf.len() - reader.start;
                            prop_assert!(waiting < FRAME_HEADER + MAX_PAYLOAD_TO_HOST);
                            break;
                        }
                        Err(Malformed) => return Ok(()),
                    }
                }
                let bound = 2 * (READ_CHUNK + FRAME_HEADER + MAX_PAYLOAD_TO_HOST);
                prop_assert!(reader.buf.capacity() <= bound);
            }
        }
    }

    #[test]
    fn a_header_announcing_too_much_is_malformed_at_once() {
        let mut reader = FrameReader::new(MAX_PAYLOAD_TO_HOST);
        put_header(&mut reader.buf, KIND_STARTED, 1 << 30, 0, 0);
        assert_eq!(reader.next_frame(), Err(Malformed));
        let mut reader = FrameReader::new(MAX_PAYLOAD_TO_HOST);
        put_header(&mut reader.buf, KIND_RESULT, 33, 0, 0);
        assert_eq!(reader.next_frame(), Err(Malformed));
        assert!(reader.buf.capacity() < 1024);
    }

    #[test]
    fn control_messages_round_trip() {
        for msg in [
            Control::Spawn { worker: 3 },
            Control::Kill { pid: 1234 },
            Control::Shutdown { grace_ms: 100 },
            Control::Spawned { worker: 9, pid: 42 },
            Control::SpawnFailed {
                worker: 9,
                errno: libc::EAGAIN,
            },
            Control::Exited {
                pid: 42,
                status: -1,
            },
        ] {
            assert_eq!(Control::from_bytes(&msg.to_bytes()), Some(msg));
        }
    }
}
