//! Small wrappers over the system calls the pool needs, each retried on EINTR:
//! descriptors, epoll, poll, signals, child processes.

mod cgroup;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A raw system call's return value: -1 means failure with `errno`.
pub trait SyscallReturn {
    type Ok;
    fn into_result(self) -> io::Result<Self::Ok>;
}

macro_rules! minus_one_is_error {
    ($($t:ty),*) => {$(
        impl SyscallReturn for $t {
            type Ok = $t;
            fn into_result(self) -> io::Result<$t> {
                if self == -1 { Err(io::Error::last_os_error()) } else { Ok(self) }
            }
        }
    )*};
}
minus_one_is_error!(i32, i64, isize);

impl<T> SyscallReturn for io::Result<T> {
    type Ok = T;
    fn into_result(self) -> io::Result<T> {
        self
    }
}

/// Runs `call` again for as long as it fails with EINTR (a host signal handler
/// installed without SA_RESTART must never turn into an error of ours).
pub fn retry_eintr<R: SyscallReturn>(mut call: impl FnMut() -> R) -> io::Result<R::Ok> {
    loop {
        match call().into_result() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A counter descriptor that polls readable while set: the pool's readiness
/// signal (`pool_fd`) and the dispatcher's wake-up.
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain system call; the returned descriptor is new and ours.
        let fd =
            unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }.into_result()?;
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (idempotent while set).
    pub fn set(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. EAGAIN (counter saturated) is
        // impossible: the counter stays tiny. The result is ignored on purpose: an
        // eventfd write cannot fail otherwise.
        let _ = retry_eintr(|| unsafe {
            libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8)
        });
    }

    /// Makes the descriptor unreadable until the next `set`.
    pub fn clear(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64. EAGAIN just means it was not set.
        let _ = retry_eintr(|| unsafe {
            libc::read(self.0.as_raw_fd(), (&mut value as *mut u64).cast(), 8)
        });
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Waits until one of `fds` is readable (or hung up), for at most `timeout`
/// (`None`: as long as it takes); says which are. Interrupted by a signal, it
/// waits again.
pub fn wait_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> [bool; N] {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    // ppoll, for a timeout finer than poll's milliseconds.
    let timeout = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let timeout = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `polled` is a live array of N pollfd; `timeout` is null or points
    // to a live timespec; no signal mask change.
    let ready = retry_eintr(|| unsafe {
        libc::ppoll(
            polled.as_mut_ptr(),
            N as libc::nfds_t,
            timeout,
            std::ptr::null(),
        )
    });
    if !ready.is_ok_and(|n| n > 0) {
        return [false; N];
    }
    polled.map(|p| p.revents != 0)
}

/// An epoll set. Every descriptor in it is watched for input and hang-up, and
/// on request for room to write.
pub struct Epoll(OwnedFd);

/// What `Epoll::wait` reports: `u64` holds the token the descriptor was added
/// with, `events` the `EPOLL*` flags.
pub type EpollEvent = libc::epoll_event;

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call creating a new descriptor.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }.into_result()?;
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd`, reported under `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64, writable: bool) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, token, writable)
    }

    /// Changes whether `fd` (added under `token`) is watched for room to write.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, writable: bool) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, writable)
    }

    fn control(
        &self,
        op: libc::c_int,
        fd: BorrowedFd<'_>,
        token: u64,
        writable: bool,
    ) -> io::Result<()> {
        let events = libc::EPOLLIN | libc::EPOLLRDHUP | if writable { libc::EPOLLOUT } else { 0 };
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        // SAFETY: `event` is a live epoll_event; both descriptors are borrowed live.
        unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd.as_raw_fd(), &mut event) }
            .into_result()
            .map(drop)
    }

    /// Waits for events, for at most `timeout` (`None`: as long as it takes),
    /// rounded up to milliseconds so that a deadline is never seen as not yet
    /// passed on wake-up; returns the events that came (none on an error).
    pub fn wait<'e>(
        &self,
        events: &'e mut [EpollEvent],
        timeout: Option<Duration>,
    ) -> &'e [EpollEvent] {
        let timeout_ms = timeout.map_or(-1, |t| {
            t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a live array of at least `max` entries.
        let n = retry_eintr(|| unsafe {
            libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms)
        })
        .unwrap_or(0);
        &events[..n as usize]
    }
}

/// Ends our child `pid`: reaps it if it has exited, else kills it first. (A
/// host's waitpid(-1) may have reaped it already: then the number is not ours
/// any more and gets no signal.)
pub fn kill_and_reap(pid: i32) {
    let mut status = 0;
    // SAFETY: a non-blocking wait for a child of ours; `status` is a live int.
    let running = retry_eintr(|| unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) })
        .is_ok_and(|reaped| reaped == 0);
    if running {
        kill(pid);
        reap(pid);
    }
}

/// SIGKILLs `pid`, which must be a child of ours not reaped yet (so that the
/// number cannot have been reused by another process).
pub fn kill(pid: i32) {
    // SAFETY: kill has no memory arguments; the caller vouches for the pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Waits for our child `pid` to exit; ECHILD (the host reaped it) is fine.
pub fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waits for a child of ours; `status` is a live int.
    let _ = retry_eintr(|| unsafe { libc::waitpid(pid, &mut status, 0) });
}

/// Reaps one exited child of ours without waiting: its pid and wait status.
pub fn reap_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: reaps any of our children without blocking; `status` is a live int.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// Runs `body` as the whole life of a forked child of ours, and leaves with
/// `_exit`: 0 when it returns, 70 (EX_SOFTWARE) when it panics. The host's
/// atexit handlers and stdio buffers are never run or flushed here.
pub fn run_child(body: impl FnOnce()) -> ! {
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(()) => 0,
        Err(_) => 70,
    };
    // SAFETY: _exit ends the process at once; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Reads a non-blocking descriptor until it has nothing more to give.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 1024];
    // SAFETY: reads into a live buffer of its own length; stops at EAGAIN.
    while retry_eintr(|| unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
        .is_ok_and(|n| n > 0)
    {}
}

/// Puts a descriptor in non-blocking mode.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow; no memory is passed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) }.into_result()?;
    // SAFETY: as above.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }
        .into_result()?;
    Ok(())
}

/// The CPUs this process may use: those of its affinity mask, no more than its
/// control group's CPU quota allows (rounded up), at least 1.
pub fn usable_cpus() -> usize {
    let affinity = affinity_cpus();
    cgroup::cpu_quota_limit()
        .map_or(affinity, |quota| affinity.min(quota))
        .max(1)
}

/// The CPUs of this process's affinity mask.
fn affinity_cpus() -> usize {
    // SAFETY: `set` is a zeroed cpu_set_t that sched_getaffinity fills in.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            return libc::CPU_COUNT(&set) as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The calling process's id (glibc keeps it right across fork).
pub fn current_pid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Blocks every signal in the calling thread and returns the previous mask.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: both sets are initialized by sigfillset / pthread_sigmask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a mask returned by [`block_all_signals`].
pub fn restore_signal_mask(old: &libc::sigset_t) {
    // SAFETY: `old` is a mask pthread_sigmask filled in.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

// Everything below runs only in a freshly forked child of ours (fork server or
// worker), which has one thread and owns every descriptor it has.

/// Blocks or unblocks one signal in the calling thread.
pub fn set_signal_blocked(sig: libc::c_int, blocked: bool) {
    let how = if blocked {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: a signal set built by sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// In a child: every handler back to SIG_DFL, then `mask` as the signal mask.
pub fn child_reset_signals(mask: &[libc::c_int]) {
    // SAFETY: sigaction/sigprocmask with initialized structures; failures (for
    // SIGKILL, SIGSTOP and glibc's reserved signals) are expected and harmless.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        for sig in 1..libc::SIGRTMAX() + 1 {
            if libc::sigaction(sig, &dfl, std::ptr::null_mut()) != 0 && sig < libc::SIGRTMIN() {
                reset_reserved_signal(sig);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in mask {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// glibc refuses sigaction() on the signals it reserves for itself (32 and 33:
/// thread cancellation and set*id broadcasts), whose handlers the host's glibc
/// installed and fork copied. A worker is a single-threaded process that starts
/// clean, so they go back to SIG_DFL through the raw system call.
///
/// # Safety
/// Only in a single-threaded child of ours.
unsafe fn reset_reserved_signal(sig: libc::c_int) {
    /// The kernel's `struct sigaction` on x86_64 (not glibc's).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction for SIG_DFL, and its 8-byte mask size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &dfl as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

/// In a child: a process group of its own, which its children inherit.
pub fn child_own_process_group() {
    // SAFETY: setpgid on ourselves has no memory arguments.
    unsafe { libc::setpgid(0, 0) };
}

/// In a child: a signalfd for SIGCHLD (which the caller keeps blocked); a child
/// that cannot have one exits with status 71 (EX_OSERR).
pub fn child_sigchld_fd() -> OwnedFd {
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

/// In a child: the name `ps`, `top` and /proc/<pid>/comm show (at most 15 bytes),
/// instead of the forking thread's name it inherited.
pub fn child_set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (the kernel copies at
    // most 16 bytes of it) and names the calling, only, thread.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// In a child: asks for SIGKILL when the forking thread's process goes away,
/// then closes the race where the parent died before the request.
pub fn child_die_with_parent(expected_parent: i32) {
    // SAFETY: prctl/getppid/_exit are plain system calls.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != expected_parent {
            libc::_exit(1);
        }
    }
}

/// In a child: closes every descriptor except `keep`, then points 0, 1 and 2 at
/// /dev/null so that no later open() can land on a stdio number.
pub fn child_close_inherited_fds(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort_unstable();
    if !close_all_but_with_close_range(&keep) {
        close_all_but_by_walking_proc(&keep);
    }
    // SAFETY: opening /dev/null and dup2 onto stdio numbers that are now free.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for stdio in 0..3 {
                if null != stdio {
                    libc::dup2(null, stdio);
                }
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

/// In the fork server: points every inherited descriptor but `keep` at /dev/null
/// instead of closing it. What the host had open is released all the same, but
/// the numbers stay taken, so no channel the fork server creates later can land
/// on them: fork handlers the host's libraries registered with pthread_atfork
/// (libuv closes and reopens its pipe in every child) run in each worker as it is
/// forked, and must find their own old numbers, not the worker's channel.
pub fn child_park_inherited_fds(keep: &[RawFd]) {
    // SAFETY: opening /dev/null has no memory arguments but the literal path.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if null < 0 {
        return child_close_inherited_fds(keep);
    }
    // Stdio too, open or not: nothing may land on a stdio number.
    for fd in open_fds().into_iter().chain(0..3) {
        if fd != null && !keep.contains(&fd) {
            // SAFETY: dup2 replaces a descriptor this single-threaded child owns and
            // nothing refers to any more; the copy stays close-on-exec.
            unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
        }
    }
    // SAFETY: `null` is ours and is not used after this.
    unsafe { libc::close(null) };
}

/// close_range(2) where the kernel has it (5.9+); false on ENOSYS (kernel 3.10).
fn close_all_but_with_close_range(keep: &[RawFd]) -> bool {
    let mut first: u32 = 0;
    for &fd in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        let fd = fd as u32;
        if fd > first {
            // SAFETY: closes a range of descriptors in a single-threaded child that
            // owns them all; nothing refers to them any more.
            let ret = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0u32) };
            if ret != 0 {
                return false;
            }
        }
        first = fd.saturating_add(1);
    }
    true
}

/// The descriptors open in this process (every possible number without /proc).
fn open_fds() -> Vec<RawFd> {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (0..max_fd()).collect(),
    }
}

fn close_all_but_by_walking_proc(keep: &[RawFd]) {
    for fd in open_fds() {
        if keep.binary_search(&fd).is_err() {
            // SAFETY: see close_all_but_with_close_range. The read_dir descriptor
            // was closed when the iterator was dropped; closing its stale number
            // is harmless (EBADF).
            unsafe { libc::close(fd) };
        }
    }
}

fn max_fd() -> RawFd {
    // SAFETY: sysconf has no memory arguments.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if max > 0 {
        max.min(1 << 20) as RawFd
    } else {
        1024
    }
}
