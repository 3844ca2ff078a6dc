//! The fork server: a small single-threaded process, forked once from a thread
//! the pool owns, that forks every worker (first and replacement), reaps them and
//! reports their exits to the host over the control channel. A host with many
//! threads and a big heap pays for one fork, and a host's `waitpid(-1)` can only
//! ever reach the fork server, never a worker.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::ipc::{self, Control, ControlRecv};
use crate::sys::{self, retry_eintr};
use crate::worker::{self, WorkerSpec};

/// The host's handle on its fork server.
pub struct ForkServer {
    pub pid: i32,
    pub control: OwnedFd,
}

/// Forks the fork server. Call it from the thread that lives as long as the pool:
/// the fork server's PR_SET_PDEATHSIG fires when this *thread* exits.
pub fn start(spec: &WorkerSpec) -> io::Result<ForkServer> {
    let (host_end, server_end) = seqpacket_pair()?;
    let host = sys::current_pid();
    // SAFETY: the child only runs `serve`, which uses no lock another host thread
    // could hold (no stdio, no environment) and leaves with _exit.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(host_end);
            serve(server_end, spec, host)
        }
        pid => Ok(ForkServer {
            pid,
            control: host_end,
        }),
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

fn serve(control: OwnedFd, spec: &WorkerSpec, host: i32) -> ! {
    sys::child_set_name(c"md5pool-forksrv");
    sys::child_die_with_parent(host);
    // A process group of its own (the workers inherit it): a Ctrl-C or a
    // kill(-pgid) meant for the host's terminal job does not reach the pool's
    // processes, which end with the host anyway (PR_SET_PDEATHSIG).
    // SAFETY: setpgid on ourselves has no memory arguments.
    unsafe { libc::setpgid(0, 0) };
    sys::child_reset_signals(&[libc::SIGCHLD]);
    sys::child_close_inherited_fds(&[control.as_raw_fd()]);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Server::new(control, spec).run()
    })) {
        Ok(()) => 0,
        Err(_) => 70,
    };
    // SAFETY: _exit ends the process without running the host's atexit handlers.
    unsafe { libc::_exit(code) }
}

struct Server<'a> {
    control: OwnedFd,
    sigchld: OwnedFd,
    spec: &'a WorkerSpec,
    children: Vec<i32>,
    /// Set by Shutdown: when the remaining workers get SIGKILL.
    deadline: Option<Instant>,
}

impl<'a> Server<'a> {
    fn new(control: OwnedFd, spec: &'a WorkerSpec) -> Server<'a> {
        Server {
            control,
            sigchld: sigchld_fd(),
            spec,
            children: Vec::new(),
            deadline: None,
        }
    }

    fn run(&mut self) {
        loop {
            if self.deadline.is_some() && self.children.is_empty() {
                return;
            }
            let timeout = self
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            let (control_ready, child_exited) =
                wait_readable(self.control.as_fd(), self.sigchld.as_fd(), timeout);
            if child_exited {
                self.reap();
            }
            if control_ready && !self.handle_control() {
                // The host closed the channel: it is gone or destroyed the pool.
                break;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.kill_all_and_reap();
    }

    /// Returns false when the control channel is closed.
    fn handle_control(&mut self) -> bool {
        loop {
            match ipc::recv_control(self.control.as_fd()) {
                ControlRecv::Message(Control::Spawn { worker }, _) => self.spawn(worker),
                ControlRecv::Message(Control::Kill { pid }, _) => {
                    if self.children.contains(&pid) {
                        // SAFETY: `pid` is our unreaped child, so the number cannot
                        // have been reused by another process.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                ControlRecv::Message(Control::Shutdown { grace_ms }, _) => {
                    self.deadline = Some(Instant::now() + Duration::from_millis(grace_ms));
                }
                ControlRecv::Message(..) => {}
                ControlRecv::WouldBlock => return true,
                ControlRecv::Closed => return false,
            }
        }
    }

    fn spawn(&mut self, worker: u64) {
        match self.fork_worker() {
            Ok((pid, host_end)) => {
                self.children.push(pid);
                let _ = ipc::send_control(
                    self.control.as_fd(),
                    Control::Spawned { worker, pid },
                    Some(host_end.as_raw_fd()),
                );
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
                let _ = ipc::send_control(
                    self.control.as_fd(),
                    Control::SpawnFailed { worker, errno },
                    None,
                );
            }
        }
        self.reap();
    }

    fn fork_worker(&self) -> io::Result<(i32, OwnedFd)> {
        let (host_end, worker_end) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let me = sys::current_pid();
        // The worker is born with an empty signal mask, like a process of its own
        // (not with our SIGCHLD blocked). A SIGCHLD lost meanwhile is made up for
        // by the reap that follows every spawn.
        sys::set_signal_blocked(libc::SIGCHLD, false);
        // SAFETY: this process has a single thread, so the child may run anything.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            sys::child_set_name(c"md5pool-worker");
            worker::run(worker_end, self.spec, me)
        }
        sys::set_signal_blocked(libc::SIGCHLD, true);
        match pid {
            -1 => Err(io::Error::last_os_error()),
            pid => Ok((pid, host_end)),
        }
    }

    fn reap(&mut self) {
        drain(self.sigchld.as_fd());
        loop {
            let mut status = 0;
            // SAFETY: reaps any of our children without blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.children.retain(|&c| c != pid);
            let _ = ipc::send_control(self.control.as_fd(), Control::Exited { pid, status }, None);
        }
    }

    fn kill_all_and_reap(&mut self) {
        for &pid in &self.children {
            // SAFETY: unreaped children of ours; see handle_control.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for pid in self.children.drain(..) {
            let mut status = 0;
            // SAFETY: blocking reap of a child we just killed.
            let _ = retry_eintr(|| unsafe { libc::waitpid(pid, &mut status, 0) });
        }
    }
}

/// A signalfd for SIGCHLD (blocked in this process by `serve`).
fn sigchld_fd() -> OwnedFd {
    // SAFETY: builds a signal set and creates a new descriptor that we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            libc::_exit(71);
        }
        OwnedFd::from_raw_fd(fd)
    }
}

fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 1024];
    // SAFETY: reads into a live buffer of its own length; stops at EAGAIN.
    while retry_eintr(|| unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
        .is_ok_and(|n| n > 0)
    {}
}

/// Waits until `a` or `b` is readable (or hangs up), or `timeout` passes.
fn wait_readable(a: BorrowedFd<'_>, b: BorrowedFd<'_>, timeout: Option<Duration>) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout_ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32 + 1);
    // SAFETY: `fds` is a live array of two pollfd.
    let n = retry_eintr(|| unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) });
    if n.unwrap_or(0) <= 0 {
        return (false, false);
    }
    (fds[0].revents != 0, fds[1].revents != 0)
}
