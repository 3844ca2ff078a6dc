//! The C API: the only place with `extern "C"`. Every exported body runs inside
//! [`ffi_boundary!`] (a panic becomes `POOL_EINTERNAL`), every pointer goes
//! through a check helper, and out-parameters are written only on success.
//! Names follow the C contract (`../shared/api/md5pool.h`), hence the lower-case types.
#![allow(non_camel_case_types)]
// Each function's pointer rules are stated in its C documentation (the header),
// which is the contract C callers read; a Rust "# Safety" heading would only
// repeat them there.
#![allow(clippy::missing_safety_doc)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};
use std::time::Duration;

use crate::config::{self, Config, LogLevel};
use crate::{Digest, EngineKind, Error, JobId, Pool};

/// Length of a result: 32 lowercase hex digits plus the terminating NUL.
pub const POOL_HEX_LEN: usize = 33;
/// The seed benchmark's iteration count.
pub const POOL_DEFAULT_ITERATIONS: u64 = 1000000;

/// What every fallible function returns. The values are fixed forever.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pool_status {
    /// Success.
    POOL_OK = 0,
    /// A NULL pointer, zero iterations or a malformed config. Fix the call.
    POOL_EINVAL = 1,
    /// The message is longer than max_message_bytes.
    POOL_ETOOBIG = 2,
    /// queue_capacity jobs are already outstanding: collect some, then retry.
    POOL_EFULL = 3,
    /// The wait's own timeout passed; the job is still pending (wait again later).
    POOL_ETIMEDOUT = 4,
    /// No such job id, or its result was already collected.
    POOL_ENOJOB = 5,
    /// The job's worker died on each of max_attempts tries (the job collected).
    POOL_EWORKER = 6,
    /// The job ran past job_timeout_ms and was stopped (the job collected).
    POOL_EJOBTIMEOUT = 7,
    /// The job was canceled with pool_cancel (the job collected).
    POOL_ECANCELED = 8,
    /// Worker processes or their channels could not be created: from pool_create,
    /// or while the pool is unable to start workers (5 failed starts in a row).
    POOL_ESPAWN = 9,
    /// Out of memory.
    POOL_ENOMEM = 10,
    /// Called in a forked child of the process that created the pool: nothing was done.
    POOL_EFORKED = 11,
    /// A bug inside the library (e.g. a caught panic); the pool stays usable.
    POOL_EINTERNAL = 12,
}

impl From<Error> for pool_status {
    fn from(error: Error) -> pool_status {
        match error {
            Error::InvalidArgument => pool_status::POOL_EINVAL,
            Error::TooBig => pool_status::POOL_ETOOBIG,
            Error::Full => pool_status::POOL_EFULL,
            Error::TimedOut => pool_status::POOL_ETIMEDOUT,
            Error::NoJob => pool_status::POOL_ENOJOB,
            Error::Worker => pool_status::POOL_EWORKER,
            Error::JobTimeout => pool_status::POOL_EJOBTIMEOUT,
            Error::Canceled => pool_status::POOL_ECANCELED,
            Error::Spawn => pool_status::POOL_ESPAWN,
            Error::NoMemory => pool_status::POOL_ENOMEM,
            Error::Forked => pool_status::POOL_EFORKED,
            Error::Internal => pool_status::POOL_EINTERNAL,
        }
    }
}

impl From<Result<(), Error>> for pool_status {
    fn from(result: Result<(), Error>) -> pool_status {
        result.map_or_else(pool_status::from, |()| pool_status::POOL_OK)
    }
}

const ALL_ERRORS: [Error; 12] = [
    Error::InvalidArgument,
    Error::TooBig,
    Error::Full,
    Error::TimedOut,
    Error::NoJob,
    Error::Worker,
    Error::JobTimeout,
    Error::Canceled,
    Error::Spawn,
    Error::NoMemory,
    Error::Forked,
    Error::Internal,
];

/// A status as C passes it in. Read as a plain integer, because a value outside
/// the enumerators would be undefined behaviour as a Rust enum. Spelled
/// `pool_status` in the header (cbindgen.toml renames it).
///
/// cbindgen:ignore
#[repr(transparent)]
pub struct StatusArg(u32);

/// An opaque pool. Create with pool_create, free with pool_destroy.
pub struct pool {
    inner: Pool,
}

/// Optional log sink: level 0 error, 1 warn, 2 info. Called from the pool's own
/// thread, never from the caller's; must be thread-safe. `message` lives only
/// for the call.
pub type pool_log_fn =
    Option<unsafe extern "C" fn(level: c_int, message: *const c_char, arg: *mut c_void)>;

/// Optional per-worker initializer, run once inside each worker process after it
/// starts and before its first job. It runs after the worker has closed the
/// descriptors it inherited, so it opens what it needs itself. A worker that dies
/// before finishing it (or cannot allocate, or writes into the pool's channel:
/// the pool logs that, kills and replaces it) is a failed start. After 5 failed
/// starts in a row the pool is "unable to start workers": its queued jobs finish
/// with POOL_ESPAWN and pool_submit returns POOL_ESPAWN, until a worker starts
/// cleanly again; meanwhile it keeps retrying with a growing delay (never more
/// than one start a second once backed off, and never more than 5 seconds
/// between tries).
pub type pool_worker_init_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// How to create a pool. Fill it with pool_config_init, then change fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct pool_config {
    /// The size of the struct the caller has, set by pool_config_init: any size
    /// from the version 1.0 struct (ending at log_arg) up to this one's is
    /// accepted, and the fields that do not fit whole in it take their defaults;
    /// any other value is POOL_EINVAL.
    pub size: u32,
    /// Worker processes, at most 1024; 0 = the CPUs this process may run on: its
    /// affinity mask (sched_getaffinity), lowered to its CPU quota rounded up when
    /// its control group has one (cgroup v2 cpu.max, or cgroup v1 cpu.cfs_quota_us
    /// over cpu.cfs_period_us, in its group or any parent: systemd's CPUQuota=,
    /// a container's --cpus), and at least 1.
    pub workers: u32,
    /// Most outstanding (submitted, not yet collected) jobs; 0 = 65536.
    pub queue_capacity: u32,
    /// Tries per job when its worker dies; 0 = 3.
    pub max_attempts: u32,
    /// Limit on one attempt's run time, counted per job from when its worker
    /// starts it (time queued, in the host or inside a worker, does not count);
    /// the job is then stopped like a canceled one and finishes with
    /// POOL_EJOBTIMEOUT; 0 = none.
    pub job_timeout_ms: u32,
    /// Recycle a worker after this many jobs; 0 = never.
    pub max_jobs_per_worker: u32,
    /// Longest accepted message; 0 = 1048576.
    pub max_message_bytes: u32,
    /// Run once in each worker process before its first job (see
    /// pool_worker_init_fn); NULL = none.
    pub worker_init: pool_worker_init_fn,
    /// Passed to worker_init as is. It is read inside each worker, whose memory
    /// is a copy of the host's as it was at pool_create: what it points to must
    /// be set by then (later changes in the host are not seen).
    pub worker_init_arg: *mut c_void,
    /// Where the pool reports what it does on its own (worker deaths, restarts,
    /// the engine it chose); NULL = silent.
    pub log: pool_log_fn,
    /// Passed to log as is.
    pub log_arg: *mut c_void,
    /// (1.1) Cap on the message bytes the pool holds for jobs not finished yet
    /// (a job's copy is freed when it finishes); 0 = 268435456 (256 MiB). A
    /// submit that would pass it returns POOL_EFULL (collect or wait, then
    /// retry); a message longer than the cap alone is POOL_ETOOBIG.
    pub max_queued_bytes: u64,
}

/// The size of pool_config in version 1.0 of the API (up to log_arg).
const CONFIG_V1_0_SIZE: usize =
    std::mem::offset_of!(pool_config, log_arg) + std::mem::size_of::<*mut c_void>();
/// The size of pool_config in version 1.1 of the API (up to max_queued_bytes): the
/// layout of the API contract this library implements.
const CONFIG_V1_1_SIZE: usize =
    std::mem::offset_of!(pool_config, max_queued_bytes) + std::mem::size_of::<u64>();
/// The sizes pool_config has had, oldest first: each version only appends fields.
const CONFIG_SIZES: [usize; 2] = [CONFIG_V1_0_SIZE, CONFIG_V1_1_SIZE];
const _: () = assert!(CONFIG_V1_1_SIZE == std::mem::size_of::<pool_config>());

impl pool_config {
    fn defaults() -> pool_config {
        pool_config {
            size: std::mem::size_of::<pool_config>() as u32,
            workers: 0,
            queue_capacity: config::DEFAULT_QUEUE_CAPACITY as u32,
            max_attempts: config::DEFAULT_MAX_ATTEMPTS,
            job_timeout_ms: 0,
            max_jobs_per_worker: 0,
            max_message_bytes: config::DEFAULT_MAX_MESSAGE_BYTES as u32,
            worker_init: None,
            worker_init_arg: std::ptr::null_mut(),
            log: None,
            log_arg: std::ptr::null_mut(),
            max_queued_bytes: config::DEFAULT_MAX_QUEUED_BYTES as u64,
        }
    }

    fn to_config(self) -> Config {
        let or_default =
            |value: u32, default: usize| if value == 0 { default } else { value as usize };
        let positive = |value: u32| (value != 0).then_some(value);
        Config {
            workers: self.workers as usize,
            queue_capacity: or_default(self.queue_capacity, config::DEFAULT_QUEUE_CAPACITY),
            max_attempts: or_default(self.max_attempts, config::DEFAULT_MAX_ATTEMPTS as usize)
                as u32,
            job_timeout: positive(self.job_timeout_ms).map(|ms| Duration::from_millis(ms.into())),
            max_jobs_per_worker: positive(self.max_jobs_per_worker).map(u64::from),
            max_message_bytes: or_default(
                self.max_message_bytes,
                config::DEFAULT_MAX_MESSAGE_BYTES,
            ),
            max_queued_bytes: match self.max_queued_bytes {
                0 => config::DEFAULT_MAX_QUEUED_BYTES,
                bytes => usize::try_from(bytes).unwrap_or(usize::MAX),
            },
            worker_init: self.worker_init.map(|init| {
                let arg = CallbackArg(self.worker_init_arg);
                // SAFETY: the caller gave this function and argument for exactly this call.
                Arc::new(move || unsafe { init(arg.get()) }) as config::WorkerInit
            }),
            log: self.log.map(|log| {
                let arg = CallbackArg(self.log_arg);
                Arc::new(move |level: LogLevel, message: &str| {
                    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
                    // SAFETY: the caller's log function, its argument, and a valid C string.
                    unsafe { log(level as c_int, text.as_ptr(), arg.get()) }
                }) as config::LogSink
            }),
            engine: None,
        }
    }
}

/// The caller's opaque callback argument. The contract makes thread safety of
/// what it points to the caller's business ("must be thread-safe").
#[derive(Clone, Copy)]
struct CallbackArg(*mut c_void);
// SAFETY: see above; the library only passes the pointer back to the caller.
unsafe impl Send for CallbackArg {}
// SAFETY: as for Send.
unsafe impl Sync for CallbackArg {}

impl CallbackArg {
    fn get(self) -> *mut c_void {
        self.0
    }
}

/// Counters of a pool at one moment (pool_stats_get).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct pool_stats {
    /// Workers the pool keeps running: cfg->workers, or the CPU count that 0
    /// stands for.
    pub workers_configured: u32,
    /// Worker processes alive now; below workers_configured while a dead,
    /// killed or recycled worker is being replaced.
    pub workers_alive: u32,
    /// Submitted, not yet sent to a worker.
    pub jobs_queued: u64,
    /// Sent to a worker, not yet finished.
    pub jobs_running: u64,
    /// Finished, not yet collected.
    pub jobs_ready: u64,
    /// Total finished with POOL_OK.
    pub jobs_completed: u64,
    /// Total finished with an error status.
    pub jobs_failed: u64,
    /// Total re-runs after a worker died.
    pub jobs_retried: u64,
    /// Total workers started after pool_create's first set, for any reason
    /// (death, a worker killed because it did not honour a cancel or timeout
    /// within 100 ms, recycling). A cancel or timeout the worker honours
    /// replaces nothing.
    pub worker_restarts: u64,
    /// (1.1) Message bytes the pool holds for jobs not finished yet (counted
    /// against max_queued_bytes).
    pub queued_bytes: u64,
}

/// The size of pool_stats in version 1.0 of the API (up to worker_restarts).
const STATS_V1_0_SIZE: usize =
    std::mem::offset_of!(pool_stats, worker_restarts) + std::mem::size_of::<u64>();
/// The sizes pool_stats has had, oldest first: each version only appends fields.
const STATS_SIZES: [usize; 2] = [STATS_V1_0_SIZE, std::mem::size_of::<pool_stats>()];

/// Writes `value` into a caller's struct of `size` bytes, which may be of an
/// older or a newer version than ours: only the fields of the largest version
/// that fits whole in `size` (`sizes`, oldest first), and zeros past our own
/// struct (fields newer than this library read 0). Nothing, and false, when
/// `size` is below the oldest version's.
///
/// # Safety
/// `out` must point to `size` writable bytes.
unsafe fn write_versioned<T: Copy>(value: &T, sizes: &[usize], out: *mut T, size: usize) -> bool {
    let Some(fits) = sizes.iter().copied().rfind(|&known| known <= size) else {
        return false;
    };
    let ours = std::mem::size_of::<T>();
    let out = out.cast::<u8>();
    // SAFETY: fits <= min(size, ours): within `value` and within the caller's
    // `size` bytes, as is the tail [ours, size) zeroed when size > ours.
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out, fits);
        if size > ours {
            std::ptr::write_bytes(out.add(ours), 0, size - ours);
        }
    }
    true
}

thread_local! {
    /// Set while this thread runs inside an exported function.
    static INSIDE_LIBRARY: Cell<bool> = const { Cell::new(false) };
}

/// Keeps panics caught at the boundary silent (the library never prints), and
/// leaves every other panic of the process to the hook it had before.
fn silence_caught_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !INSIDE_LIBRARY.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `body` with panics turned into `on_panic`.
fn boundary<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    silence_caught_panics();
    let outer = INSIDE_LIBRARY.with(|inside| inside.replace(true));
    let result = catch_unwind(AssertUnwindSafe(body));
    INSIDE_LIBRARY.with(|inside| inside.set(outer));
    result.unwrap_or(on_panic)
}

/// The panic boundary around every exported body: `ffi_boundary!(value_on_panic, { body })`.
macro_rules! ffi_boundary {
    ($on_panic:expr, $body:block) => {
        boundary($on_panic, || $body)
    };
    ($body:block) => {
        boundary(pool_status::POOL_EINTERNAL, || -> pool_status { $body })
    };
}

/// Returns POOL_EINVAL from the enclosing function when a required pointer is NULL.
macro_rules! require {
    ($($ptr:expr),+) => {
        if $($ptr.is_null())||+ {
            return pool_status::POOL_EINVAL;
        }
    };
}

/// Unwraps a Result<T, Error>, returning its status from the enclosing function on error.
macro_rules! attempt {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return pool_status::from(error),
        }
    };
}

/// The bytes of a (pointer, length) pair from C; a zero length is an empty
/// message whatever the pointer.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes for the returned lifetime.
unsafe fn message<'a>(ptr: *const c_void, len: usize) -> Option<&'a [u8]> {
    match (ptr.is_null(), len) {
        (_, 0) => Some(&[]),
        (true, _) => None,
        // SAFETY: guaranteed by the caller.
        (false, _) => Some(unsafe { std::slice::from_raw_parts(ptr.cast(), len) }),
    }
}

/// Writes a digest and its NUL into a caller's `char[POOL_HEX_LEN]`.
///
/// # Safety
/// `out` must point to POOL_HEX_LEN writable bytes.
unsafe fn write_hex(digest: &Digest, out: *mut c_char) {
    // SAFETY: guaranteed by the caller; 32 digits + NUL = POOL_HEX_LEN.
    unsafe {
        std::ptr::copy_nonoverlapping(digest.0.as_ptr(), out.cast::<u8>(), 32);
        *out.add(32) = 0;
    }
}

fn timeout_from_ms(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

/// Fills *cfg with the defaults, as a pool_config of the 1.1 layout (the API
/// contract's, up to max_queued_bytes), and sets cfg->size to its size. NULL is a
/// no-op.
///
/// Code compiled against this header does not call it: the macro
/// pool_config_init(cfg) below the prototypes calls
/// pool_config_init_sized(cfg, sizeof(pool_config)), which fills exactly the
/// fields the header declares, in this version and in later ones. (A function-like
/// macro only replaces a call: `&pool_config_init`, or `(pool_config_init)(cfg)`,
/// is still this function.) A program built against the 1.0 header, whose struct
/// ends at log_arg, must be rebuilt: this function writes 8 bytes past it.
#[no_mangle]
pub unsafe extern "C" fn pool_config_init(cfg: *mut pool_config) {
    // SAFETY: a non-NULL cfg points to a 1.1 pool_config (contract).
    unsafe { pool_config_init_sized(cfg, CONFIG_V1_1_SIZE) }
}

/// (1.1) Fills *cfg, a pool_config of `size` bytes (sizeof(pool_config) as the
/// caller compiled it), with the defaults: every field of the largest version of the
/// struct that fits in `size`, and cfg->size = min(size, the library's own size).
/// Bytes past the library's own struct are set to 0; nothing past `size` is
/// written. A size below the 1.0 struct's (64 bytes) is a caller's bug: only
/// cfg->size is written, as 0 (when size has room for it), so that pool_create
/// rejects the struct with POOL_EINVAL. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pool_config_init_sized(cfg: *mut pool_config, size: usize) {
    ffi_boundary!((), {
        if cfg.is_null() {
            return;
        }
        let mut defaults = pool_config::defaults();
        defaults.size = size.min(std::mem::size_of::<pool_config>()) as u32;
        // SAFETY: a non-NULL cfg points to `size` writable bytes (contract).
        let written = unsafe { write_versioned(&defaults, &CONFIG_SIZES, cfg, size) };
        if !written && size >= std::mem::size_of::<u32>() {
            // SAFETY: cfg->size, the first field, lies within the caller's `size` bytes.
            unsafe { std::ptr::addr_of_mut!((*cfg).size).write(0) };
        }
    })
}

/// Starts a pool: forks a small fork server and from it `workers` worker
/// processes, and returns once they exist (their worker_init may still be
/// running; jobs wait for it). cfg may be NULL for the defaults. On success *out
/// is set; free it with pool_destroy.
///
/// Create the pool early, before the host's heap grows and before it starts
/// threads that hold locks: the fork server is a copy of the process at this
/// moment. The job table's room for queue_capacity jobs is reserved here, so
/// that out of memory later a submit fails with POOL_ENOMEM instead of aborting.
/// Returns POOL_EINVAL (NULL out, bad cfg->size or field), POOL_ENOMEM, and
/// POOL_ESPAWN when the processes or their channels cannot be created (too few
/// descriptors under RLIMIT_NOFILE: one per worker) or do not all exist within
/// 20 seconds; it never hangs, and on failure leaves no process or descriptor.
#[no_mangle]
pub unsafe extern "C" fn pool_create(cfg: *const pool_config, out: *mut *mut pool) -> pool_status {
    ffi_boundary!({
        require!(out);
        let config = if cfg.is_null() {
            pool_config::defaults()
        } else {
            // SAFETY: a non-NULL cfg points to at least its `size` field.
            let size = unsafe { (*cfg).size } as usize;
            if size > std::mem::size_of::<pool_config>() {
                return pool_status::POOL_EINVAL;
            }
            // The fields that fit whole: those of the largest version within `size`.
            let Some(whole) = CONFIG_SIZES.iter().copied().rfind(|&known| known <= size) else {
                return pool_status::POOL_EINVAL;
            };
            let mut config = pool_config::defaults();
            // SAFETY: the caller's struct has `size` >= `whole` bytes, which fit in
            // ours; fields past them keep their defaults.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    cfg.cast::<u8>(),
                    (&mut config as *mut pool_config).cast::<u8>(),
                    whole,
                )
            };
            config
        };
        let inner = attempt!(Pool::new(config.to_config()));
        // SAFETY: `out` was checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(pool { inner })) };
        pool_status::POOL_OK
    })
}

/// The pool behind a C handle.
///
/// # Safety
/// `p` must be NULL or a live handle from pool_create.
unsafe fn pool_ref<'a>(p: *const pool) -> Option<&'a Pool> {
    // SAFETY: guaranteed by the caller.
    unsafe { p.as_ref() }.map(|p| &p.inner)
}

/// Queues one job. The message is copied; the caller may free it at once (msg may
/// be NULL when len is 0). Never blocks on a full queue: returns POOL_EFULL
/// instead. On success *job_out gets the job's id; ids are never 0 and never
/// reused in the pool's life. Returns POOL_EINVAL (NULL p or job_out, NULL msg
/// with len > 0, zero iterations), POOL_ETOOBIG (len over max_message_bytes or
/// over max_queued_bytes), POOL_EFULL (queue_capacity jobs outstanding, or the
/// message would take the bytes held past max_queued_bytes), POOL_ENOMEM (out of
/// memory: nothing was queued and the pool stays valid), POOL_ESPAWN (the pool is
/// unable to start workers), POOL_EFORKED.
#[no_mangle]
pub unsafe extern "C" fn pool_submit(
    p: *mut pool,
    msg: *const c_void,
    len: usize,
    iterations: u64,
    job_out: *mut u64,
) -> pool_status {
    ffi_boundary!({
        require!(job_out);
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        // SAFETY: msg points to len bytes (contract).
        let Some(msg) = (unsafe { message(msg, len) }) else {
            return pool_status::POOL_EINVAL;
        };
        let job = attempt!(pool.submit(msg, iterations));
        // SAFETY: job_out was checked non-NULL.
        unsafe { *job_out = job.0 };
        pool_status::POOL_OK
    })
}

/// Waits for one job. timeout_ms < 0 waits forever, 0 polls. hex_out must point
/// to POOL_HEX_LEN bytes; on POOL_OK it holds the NUL-terminated result.
/// Any number of threads may wait at once; a job is collected by one of them. A finished job is
/// collected and its status returned (POOL_OK, POOL_EWORKER, POOL_EJOBTIMEOUT,
/// POOL_ECANCELED, POOL_ESPAWN); POOL_ETIMEDOUT, POOL_ENOJOB, POOL_EINVAL and
/// POOL_EFORKED leave every job as it was. A blocked wait is not interrupted by
/// the host's signals: use a finite timeout in a loop to react to them. When the
/// job is about to finish (its worker holds under ~40 µs of work), the calling
/// thread reads the result from the worker itself, polling for up to 50 µs before
/// it sleeps (one waiting thread at a time; never on a single-CPU machine): a
/// short job then costs one round trip, not two thread wake-ups.
#[no_mangle]
pub unsafe extern "C" fn pool_wait(
    p: *mut pool,
    job: u64,
    timeout_ms: i64,
    hex_out: *mut c_char,
) -> pool_status {
    ffi_boundary!({
        require!(hex_out);
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        let digest = attempt!(pool.wait(JobId(job), timeout_from_ms(timeout_ms)));
        // SAFETY: hex_out was checked non-NULL and holds POOL_HEX_LEN bytes (contract).
        unsafe { write_hex(&digest, hex_out) };
        pool_status::POOL_OK
    })
}

/// Waits for whichever outstanding job finishes first; collects it and returns
/// its status, its id in *job_out (must not be NULL) and, on POOL_OK, its result
/// in hex_out (NULL, or POOL_HEX_LEN bytes). Returns POOL_ENOJOB at once when nothing is
/// outstanding, POOL_ETIMEDOUT when timeout_ms passes first (< 0 waits forever,
/// 0 polls). Like pool_wait, it may read a lightly loaded worker's results itself
/// for up to 50 µs before it sleeps.
#[no_mangle]
pub unsafe extern "C" fn pool_wait_any(
    p: *mut pool,
    timeout_ms: i64,
    job_out: *mut u64,
    hex_out: *mut c_char,
) -> pool_status {
    ffi_boundary!({
        require!(job_out);
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        let (job, outcome) = attempt!(pool.wait_any(timeout_from_ms(timeout_ms)));
        // SAFETY: job_out was checked non-NULL.
        unsafe { *job_out = job.0 };
        let digest = attempt!(outcome);
        if !hex_out.is_null() {
            // SAFETY: a non-NULL hex_out holds POOL_HEX_LEN bytes (contract).
            unsafe { write_hex(&digest, hex_out) };
        }
        pool_status::POOL_OK
    })
}

/// A descriptor that polls readable while at least one finished job (any status,
/// canceled included) awaits collection, for epoll/poll/select loops
/// (level-triggered). Owned by the pool: never read from or close it. -1 on error
/// (NULL p, or called in a forked child).
#[no_mangle]
pub unsafe extern "C" fn pool_fd(p: *const pool) -> c_int {
    ffi_boundary!(-1, {
        // SAFETY: p is NULL or a live pool (contract).
        match unsafe { pool_ref(p) }.map(Pool::ready_fd) {
            Some(Ok(fd)) => fd.as_raw_fd(),
            _ => -1,
        }
    })
}

/// Cancels an outstanding job: a queued one is dropped; a running one is stopped
/// (its worker drops it and keeps running its other jobs; a worker that does not
/// confirm within 100 ms is killed and replaced, and its other jobs re-run
/// without counting an attempt); a finished one's result is discarded. It is
/// then collected with POOL_ECANCELED. POOL_ENOJOB for an unknown or collected id.
#[no_mangle]
pub unsafe extern "C" fn pool_cancel(p: *mut pool, job: u64) -> pool_status {
    ffi_boundary!({
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        pool.cancel(JobId(job)).into()
    })
}

/// Copies the pool's counters into *out, a pool_stats of the 1.0 layout (up to
/// worker_restarts; the one struct size a caller that takes this function's
/// address can be assumed to have). Returns POOL_EINVAL (NULL p or out),
/// POOL_EFORKED.
///
/// Code compiled against this header does not call it: the macro
/// pool_stats_get(p, out) below the prototypes calls
/// pool_stats_get_sized(p, out, sizeof(pool_stats)), which fills every field the
/// header declares. Programs built against an older header keep calling this
/// one, and a 1.0 struct is never overrun.
#[no_mangle]
pub unsafe extern "C" fn pool_stats_get(p: *const pool, out: *mut pool_stats) -> pool_status {
    // SAFETY: a non-NULL out points to at least a 1.0 pool_stats (contract).
    unsafe { pool_stats_get_sized(p, out, STATS_V1_0_SIZE) }
}

/// (1.1) Copies the pool's counters into *out, a pool_stats of `size` bytes
/// (sizeof(pool_stats) as the caller compiled it): every field of the largest
/// version of the struct that fits in `size`; bytes past the library's own
/// struct are set to 0 (counters this library does not know read 0); nothing
/// past `size` is written. Returns POOL_EINVAL (NULL p or out, or a size below
/// the 1.0 struct's 64 bytes: nothing is written), POOL_EFORKED.
#[no_mangle]
pub unsafe extern "C" fn pool_stats_get_sized(
    p: *const pool,
    out: *mut pool_stats,
    size: usize,
) -> pool_status {
    ffi_boundary!({
        require!(out);
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        let s = attempt!(pool.stats());
        let stats = pool_stats {
            workers_configured: s.workers_configured as u32,
            workers_alive: s.workers_alive as u32,
            jobs_queued: s.jobs_queued,
            jobs_running: s.jobs_running,
            jobs_ready: s.jobs_ready,
            jobs_completed: s.jobs_completed,
            jobs_failed: s.jobs_failed,
            jobs_retried: s.jobs_retried,
            worker_restarts: s.worker_restarts,
            queued_bytes: s.queued_bytes,
        };
        // SAFETY: out was checked non-NULL and points to `size` writable bytes (contract).
        if unsafe { write_versioned(&stats, &STATS_SIZES, out, size) } {
            pool_status::POOL_OK
        } else {
            pool_status::POOL_EINVAL
        }
    })
}

/// Process ids of the live workers: up to cap of them into pids (which may be
/// NULL when cap is 0); *count_out gets how many there are (may exceed cap).
#[no_mangle]
pub unsafe extern "C" fn pool_worker_pids(
    p: *const pool,
    pids: *mut i32,
    cap: usize,
    count_out: *mut usize,
) -> pool_status {
    ffi_boundary!({
        require!(count_out);
        if pids.is_null() && cap > 0 {
            return pool_status::POOL_EINVAL;
        }
        // SAFETY: p is NULL or a live pool (contract).
        let Some(pool) = (unsafe { pool_ref(p) }) else {
            return pool_status::POOL_EINVAL;
        };
        let live = attempt!(pool.worker_pids());
        let n = live.len().min(cap);
        // SAFETY: pids holds cap entries (contract) and n <= cap; count_out is non-NULL.
        unsafe {
            if n > 0 {
                std::ptr::copy_nonoverlapping(live.as_ptr(), pids, n);
            }
            *count_out = live.len();
        }
        pool_status::POOL_OK
    })
}

/// Stops all workers (a busy one is killed after a short grace), reaps every
/// process the pool started, closes every descriptor it opened and frees it.
/// Uncollected jobs are dropped. NULL is a no-op returning POOL_OK. Must not
/// overlap any other call on the same pool; p is invalid afterwards. In a forked
/// child of the creator it only releases the child's copy of the memory.
#[no_mangle]
pub unsafe extern "C" fn pool_destroy(p: *mut pool) -> pool_status {
    ffi_boundary!({
        if !p.is_null() {
            // SAFETY: a non-NULL p came from Box::into_raw in pool_create and is
            // not used again (contract).
            drop(unsafe { Box::from_raw(p) });
        }
        pool_status::POOL_OK
    })
}

/// Runs the kernel in the calling thread, no pool involved. hex_out (POOL_HEX_LEN
/// bytes) gets the NUL-terminated result. POOL_EINVAL for a NULL hex_out, a NULL msg with
/// len > 0, or zero iterations.
#[no_mangle]
pub unsafe extern "C" fn pool_md5_chain(
    msg: *const c_void,
    len: usize,
    iterations: u64,
    hex_out: *mut c_char,
) -> pool_status {
    ffi_boundary!({
        require!(hex_out);
        // SAFETY: msg points to len bytes (contract).
        let Some(msg) = (unsafe { message(msg, len) }) else {
            return pool_status::POOL_EINVAL;
        };
        let digest = attempt!(crate::md5_chain(msg, iterations));
        // SAFETY: hex_out was checked non-NULL and holds POOL_HEX_LEN bytes (contract).
        unsafe { write_hex(&digest, hex_out) };
        pool_status::POOL_OK
    })
}

/// Static, human-readable text for a status; never NULL, also for a value that
/// is not one of the enumerators.
#[no_mangle]
pub extern "C" fn pool_strerror(status: StatusArg) -> *const c_char {
    ffi_boundary!(c"internal error in md5pool".as_ptr(), {
        let text = match status.0 {
            0 => c"success",
            code => ALL_ERRORS
                .iter()
                .find(|&&e| pool_status::from(e) as u32 == code)
                .map_or(c"unknown md5pool status", |e| e.c_message()),
        };
        text.as_ptr()
    })
}

/// Version of the library loaded at run time, e.g. "1.1.0" (static string).
/// Compare it with POOL_VERSION to find a program running against another
/// library than the header it was compiled with.
#[no_mangle]
pub extern "C" fn pool_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the version has no NUL"),
        };
    ffi_boundary!(VERSION.as_ptr(), { VERSION.as_ptr() })
}

/// The kernel engine the pool's workers run: "scalar", "avx2" or "avx512" (a
/// static string). pool_create picks the fastest this CPU and OS support, unless
/// the MD5POOL_KERNEL environment variable names one they support, and also logs
/// it (info level, from the pool's thread, once the workers exist). NULL for a
/// NULL pool, or in a forked child.
#[no_mangle]
pub unsafe extern "C" fn pool_engine(p: *const pool) -> *const c_char {
    ffi_boundary!(std::ptr::null(), {
        // SAFETY: p is NULL or a live pool (contract).
        match unsafe { pool_ref(p) }.map(Pool::engine) {
            Some(Ok(kind)) => engine_name(kind).as_ptr(),
            _ => std::ptr::null(),
        }
    })
}

/// [`EngineKind::name`] as a static C string.
fn engine_name(kind: EngineKind) -> &'static CStr {
    match kind {
        EngineKind::Scalar => c"scalar",
        EngineKind::Avx2 => c"avx2",
        EngineKind::Avx512 => c"avx512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_in_c_are_the_kernel_names() {
        for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
            assert_eq!(engine_name(kind).to_str(), Ok(kind.name()));
        }
    }
}
