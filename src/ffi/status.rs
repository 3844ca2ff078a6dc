//! `pool_status`, the C side of [`Error`]: its values, its texts and the
//! conversions all come from the one table in [`status_table!`]'s invocation.

use std::ffi::CStr;

use crate::Error;

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

/// A status as C passes it in. Read as a plain integer, because a value outside
/// the enumerators would be undefined behaviour as a Rust enum. Spelled
/// `pool_status` in the header (cbindgen.toml renames it).
///
/// cbindgen:ignore
#[repr(transparent)]
pub struct StatusArg(pub(super) u32);

/// Generates, from one row per status (in value order), `pool_status::ALL` with
/// each status's text, and both conversions to and from [`Error`]. The matches
/// are exhaustive: a status or an error left out of the table does not compile.
macro_rules! status_table {
    ($ok:ident => $ok_text:literal; $($status:ident = $error:ident => $text:literal;)+) => {
        impl pool_status {
            /// Every status, in value order (`ALL[s as usize].0 == s`), with its text.
            pub const ALL: [(pool_status, &'static CStr); 1 + [$($text),+].len()] = [
                (pool_status::$ok, $ok_text),
                $((pool_status::$status, $text),)+
            ];

            /// The error a status stands for; None for POOL_OK.
            pub fn error(self) -> Option<Error> {
                match self {
                    pool_status::$ok => None,
                    $(pool_status::$status => Some(Error::$error),)+
                }
            }
        }

        impl From<Error> for pool_status {
            fn from(error: Error) -> pool_status {
                match error {
                    $(Error::$error => pool_status::$status,)+
                }
            }
        }
    };
}

status_table! {
    POOL_OK => c"success";
    POOL_EINVAL = InvalidArgument
        => c"invalid argument (NULL pointer, zero iterations or malformed config)";
    POOL_ETOOBIG = TooBig => c"message longer than max_message_bytes";
    POOL_EFULL = Full => c"queue full: queue_capacity jobs are outstanding";
    POOL_ETIMEDOUT = TimedOut => c"wait timed out; the job is still pending";
    POOL_ENOJOB = NoJob => c"no such job, or its result was already collected";
    POOL_EWORKER = Worker => c"the job's worker died on every attempt";
    POOL_EJOBTIMEOUT = JobTimeout => c"the job ran past job_timeout_ms; its worker was killed";
    POOL_ECANCELED = Canceled => c"the job was canceled";
    POOL_ESPAWN = Spawn => c"worker processes could not be started";
    POOL_ENOMEM = NoMemory => c"out of memory";
    POOL_EFORKED = Forked => c"called in a forked child of the process that created the pool";
    POOL_EINTERNAL = Internal => c"internal error in md5pool";
}

// `text` indexes ALL by value: a row out of order would give a status another's text.
const _: () = {
    let mut value = 0;
    while value < pool_status::ALL.len() {
        assert!(pool_status::ALL[value].0 as usize == value);
        value += 1;
    }
};

impl pool_status {
    /// Static, human-readable text (what pool_strerror returns).
    pub fn text(self) -> &'static CStr {
        pool_status::ALL[self as usize].1
    }

    /// The text of a status as C passes it in; None for a value that is not one
    /// of the enumerators.
    pub(super) fn text_of(status: StatusArg) -> Option<&'static CStr> {
        let row = pool_status::ALL.get(usize::try_from(status.0).ok()?)?;
        Some(row.1)
    }
}

impl From<Result<(), Error>> for pool_status {
    fn from(result: Result<(), Error>) -> pool_status {
        result.map_or_else(pool_status::from, |()| pool_status::POOL_OK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_enumerator_in_value_order() {
        assert_eq!(
            pool_status::ALL.len(),
            pool_status::POOL_EINTERNAL as usize + 1
        );
        for (value, &(status, text)) in pool_status::ALL.iter().enumerate() {
            assert_eq!(status as usize, value);
            assert_eq!(pool_status::text_of(StatusArg(value as u32)), Some(text));
        }
        assert_eq!(
            pool_status::text_of(StatusArg(pool_status::ALL.len() as u32)),
            None
        );
        assert_eq!(pool_status::text_of(StatusArg(u32::MAX)), None);
    }

    #[test]
    fn every_error_round_trips_through_its_status() {
        let errors: Vec<Error> = pool_status::ALL
            .iter()
            .filter_map(|row| row.0.error())
            .collect();
        assert_eq!(
            errors.len(),
            pool_status::ALL.len() - 1,
            "only POOL_OK stands for no error"
        );
        for error in errors {
            let status = pool_status::from(error);
            assert_eq!(status.error(), Some(error));
        }
        assert_eq!(pool_status::POOL_OK.error(), None);
        assert_eq!(pool_status::from(Ok(())), pool_status::POOL_OK);
    }

    #[test]
    fn texts_are_distinct() {
        let mut texts: Vec<&CStr> = pool_status::ALL.iter().map(|row| row.1).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), pool_status::ALL.len());
    }
}
