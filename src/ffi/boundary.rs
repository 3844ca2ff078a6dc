//! Where C calls cross into Rust: the panic boundary every exported body runs
//! in (a panic becomes a status, and stays silent), the checks of the pointers
//! C passes, and the copies of results into C's buffers.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use super::pool;
use crate::{Digest, Pool};

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
pub(super) fn boundary<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    silence_caught_panics();
    let outer = INSIDE_LIBRARY.with(|inside| inside.replace(true));
    let result = catch_unwind(AssertUnwindSafe(body));
    INSIDE_LIBRARY.with(|inside| inside.set(outer));
    result.unwrap_or(on_panic)
}

/// The panic boundary around every exported body: `ffi_boundary!(value_on_panic, { body })`.
macro_rules! ffi_boundary {
    ($on_panic:expr, $body:block) => {
        $crate::ffi::boundary::boundary($on_panic, || $body)
    };
    ($body:block) => {
        $crate::ffi::boundary::boundary(
            $crate::ffi::pool_status::POOL_EINTERNAL,
            || -> $crate::ffi::pool_status { $body },
        )
    };
}

/// Returns POOL_EINVAL from the enclosing function when a required pointer is NULL.
macro_rules! require {
    ($($ptr:expr),+) => {
        if $($ptr.is_null())||+ {
            return $crate::ffi::pool_status::POOL_EINVAL;
        }
    };
}

/// Unwraps a Result<T, Error>, returning its status from the enclosing function on error.
macro_rules! attempt {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return $crate::ffi::pool_status::from(error),
        }
    };
}

/// The bytes of a (pointer, length) pair from C; a zero length is an empty
/// message whatever the pointer.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes for the returned lifetime.
pub(super) unsafe fn message<'a>(ptr: *const c_void, len: usize) -> Option<&'a [u8]> {
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
pub(super) unsafe fn write_hex(digest: &Digest, out: *mut c_char) {
    // SAFETY: guaranteed by the caller; 32 digits + NUL = POOL_HEX_LEN.
    unsafe {
        std::ptr::copy_nonoverlapping(digest.0.as_ptr(), out.cast::<u8>(), 32);
        *out.add(32) = 0;
    }
}

/// A C timeout: negative waits forever.
pub(super) fn timeout_from_ms(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

/// The pool behind a C handle.
///
/// # Safety
/// `p` must be NULL or a live handle from pool_create.
pub(super) unsafe fn pool_ref<'a>(p: *const pool) -> Option<&'a Pool> {
    // SAFETY: guaranteed by the caller.
    unsafe { p.as_ref() }.map(|p| &p.inner)
}

/// The pool behind a C handle, or a return from the enclosing function (with
/// POOL_EINVAL, or the value given) when the handle is NULL. The handle must be
/// NULL or live: every function taking one says so in its contract.
macro_rules! try_pool {
    ($p:expr) => {
        try_pool!($p, $crate::ffi::pool_status::POOL_EINVAL)
    };
    ($p:expr, $on_null:expr) => {
        // SAFETY: the handle is NULL or a live pool (the function's contract).
        match unsafe { $crate::ffi::boundary::pool_ref($p) } {
            Some(pool) => pool,
            None => return $on_null,
        }
    };
}

pub(super) use {attempt, ffi_boundary, require, try_pool};
