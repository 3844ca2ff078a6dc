//! The C API (this module is the only place with `extern "C"`); this file holds
//! every exported function. Every exported body runs inside [`ffi_boundary!`] (a panic
//! becomes `POOL_EINTERNAL`), every pointer goes through a check in `boundary.rs`,
//! and out-parameters are written only on success. The statuses and their texts
//! are in `status.rs`, the structs C fills and reads (and their callback types)
//! in `config.rs`.
//! Names follow the C API contract (the team's md5pool.h, version 1.1), hence the lower-case types.
#![allow(non_camel_case_types)]
// Each function's pointer rules are stated in its C documentation (the header),
// which is the contract C callers read; a Rust "# Safety" heading would only
// repeat them there.
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod config;
mod status;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::AsRawFd;

use boundary::{attempt, ffi_boundary, message, require, timeout_from_ms, try_pool, write_hex};
pub use config::{pool_config, pool_log_fn, pool_stats, pool_worker_init_fn};
use config::{write_versioned, CONFIG_SIZES, CONFIG_V1_1_SIZE, STATS_SIZES, STATS_V1_0_SIZE};
pub use status::{pool_status, StatusArg};

use crate::{EngineKind, JobId, Pool};

/// Length of a result: 32 lowercase hex digits plus the terminating NUL.
pub const POOL_HEX_LEN: usize = 33;
/// The seed benchmark's iteration count.
pub const POOL_DEFAULT_ITERATIONS: u64 = 1000000;

/// An opaque pool. Create with pool_create, free with pool_destroy.
pub struct pool {
    inner: Pool,
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
        let pool = try_pool!(p);
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
        let pool = try_pool!(p);
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
        let pool = try_pool!(p);
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
        let pool = try_pool!(p, -1);
        pool.ready_fd().map_or(-1, |fd| fd.as_raw_fd())
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
        let pool = try_pool!(p);
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
        let pool = try_pool!(p);
        let stats = pool_stats::from(attempt!(pool.stats()));
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
        let pool = try_pool!(p);
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
    ffi_boundary!(pool_status::POOL_EINTERNAL.text().as_ptr(), {
        pool_status::text_of(status)
            .unwrap_or(c"unknown md5pool status")
            .as_ptr()
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
        let pool = try_pool!(p, std::ptr::null());
        pool.engine()
            .map_or(std::ptr::null(), |kind| engine_name(kind).as_ptr())
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
