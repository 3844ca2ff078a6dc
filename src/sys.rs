//! Small wrappers over the system calls the pool needs, each retried on EINTR.

mod cgroup;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Waits until `fd` is readable (or hung up), for at most `timeout`.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> bool {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // ppoll, for a timeout finer than poll's milliseconds.
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one live pollfd and a live timespec; no signal mask change.
    retry_eintr(|| unsafe { libc::ppoll(&mut pollfd, 1, &timeout, std::ptr::null()) })
        .is_ok_and(|n| n > 0)
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

fn close_all_but_by_walking_proc(keep: &[RawFd]) {
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        // No /proc: close every number up to the descriptor limit.
        Err(_) => (0..max_fd()).collect(),
    };
    for fd in open {
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
