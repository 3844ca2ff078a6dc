//! md5pool: run the md5 chain kernel in a pool of pre-forked worker processes.
//!
//! Workers are forked once (from a small fork server the pool forks at
//! creation), initialized once, and fed jobs over their own socketpair; results
//! come back to the host, where any thread can submit and wait.
//!
//! ```
//! use md5pool::{Config, Pool};
//!
//! let pool = Pool::new(Config { workers: 2, ..Config::default() })?;
//! let job = pool.submit(b"Hello World", 1)?;
//! let digest = pool.wait(job, None)?;
//! assert_eq!(digest.as_str(), "b10a8db164e0754105b7a99be72e3fe5");
//! assert_eq!(digest, md5pool::md5_chain(b"Hello World", 1)?);
//! # Ok::<(), md5pool::Error>(())
//! ```
//!
//! The C API (`include/md5pool.h`) is a thin layer over this one, in `ffi/`.

mod config;
mod error;
pub mod ffi;
mod forkserver;
mod ipc;
pub mod kernel;
mod pool;
mod sys;
mod worker;

pub use config::{Config, LogLevel, LogSink, WorkerInit};
pub use error::Error;
pub use kernel::EngineKind;
pub use pool::{Digest, JobId, Pool, Stats};

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the kernel in the calling thread, no pool involved.
/// `iterations` must be at least 1.
pub fn md5_chain(msg: &[u8], iterations: u64) -> Result<Digest, Error> {
    if iterations == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(Digest(kernel::md5_chain(msg, iterations)))
}
