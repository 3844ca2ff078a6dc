//! The structs C fills and reads (pool_config with its callback types,
//! pool_stats), their defaults, and the sizes of each of their versions: a
//! caller may have compiled against an older or a newer header than this
//! library's.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config, LogLevel};
use crate::Stats;

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

/// The size of pool_config in version 1.0 of the API (up to log_arg). Literals,
/// not `size_of`: a version's size never changes, whatever fields come later.
pub(super) const CONFIG_V1_0_SIZE: usize = 64;
/// The size of pool_config in version 1.1 of the API (up to max_queued_bytes): the
/// layout of the API contract this library implements.
pub(super) const CONFIG_V1_1_SIZE: usize = 72;
const _: () = assert!(
    CONFIG_V1_0_SIZE
        == std::mem::offset_of!(pool_config, log_arg) + std::mem::size_of::<*mut c_void>()
);
const _: () = assert!(
    CONFIG_V1_1_SIZE
        == std::mem::offset_of!(pool_config, max_queued_bytes) + std::mem::size_of::<u64>()
);
const _: () = assert!(CONFIG_V1_1_SIZE == std::mem::size_of::<pool_config>());
/// The sizes pool_config has had, oldest first: each version only appends fields.
pub(super) const CONFIG_SIZES: [usize; 2] = [CONFIG_V1_0_SIZE, CONFIG_V1_1_SIZE];

impl pool_config {
    pub(super) fn defaults() -> pool_config {
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

    pub(super) fn to_config(self) -> Config {
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
pub(super) const STATS_V1_0_SIZE: usize = 64;
/// The size of pool_stats in version 1.1 of the API (up to queued_bytes).
const STATS_V1_1_SIZE: usize = 72;
const _: () = assert!(
    STATS_V1_0_SIZE
        == std::mem::offset_of!(pool_stats, worker_restarts) + std::mem::size_of::<u64>()
);
const _: () = assert!(
    STATS_V1_1_SIZE == std::mem::offset_of!(pool_stats, queued_bytes) + std::mem::size_of::<u64>()
);
const _: () = assert!(STATS_V1_1_SIZE == std::mem::size_of::<pool_stats>());
/// The sizes pool_stats has had, oldest first: each version only appends fields.
pub(super) const STATS_SIZES: [usize; 2] = [STATS_V1_0_SIZE, STATS_V1_1_SIZE];

impl From<Stats> for pool_stats {
    fn from(s: Stats) -> pool_stats {
        pool_stats {
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
        }
    }
}

/// Writes `value` into a caller's struct of `size` bytes, which may be of an
/// older or a newer version than ours: only the fields of the largest version
/// that fits whole in `size` (`sizes`, oldest first), and zeros past our own
/// struct (fields newer than this library read 0). Nothing, and false, when
/// `size` is below the oldest version's.
///
/// # Safety
/// `out` must point to `size` writable bytes.
pub(super) unsafe fn write_versioned<T: Copy>(
    value: &T,
    sizes: &[usize],
    out: *mut T,
    size: usize,
) -> bool {
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
