//! The fork server: a small single-threaded process, forked once from a thread
//! the pool owns, that forks every worker (first and replacement), reaps them and
//! reports their exits to the host over the control channel. A host with many
//! threads and a big heap pays for one fork, and a host's `waitpid(-1)` can only
//! ever reach the fork server, never a worker.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::ipc::{self, Control, ControlRecv};
use crate::sys;
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
    sys::child_own_process_group();
    sys::child_reset_signals(&[libc::SIGCHLD]);
    sys::child_park_inherited_fds(&[control.as_raw_fd()]);
    sys::run_child(|| Server::new(control, spec).run())
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
            sigchld: sys::child_sigchld_fd(),
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
            let [control_ready, child_exited] =
                sys::wait_readable([self.control.as_fd(), self.sigchld.as_fd()], timeout);
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
                        sys::kill(pid);
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
        sys::drain(self.sigchld.as_fd());
        while let Some((pid, status)) = sys::reap_any() {
            self.children.retain(|&c| c != pid);
            let _ = ipc::send_control(self.control.as_fd(), Control::Exited { pid, status }, None);
        }
    }

    fn kill_all_and_reap(&mut self) {
        // All killed first, so that they die at the same time.
        for &pid in &self.children {
            sys::kill(pid);
        }
        for pid in self.children.drain(..) {
            sys::reap(pid);
        }
    }
}
