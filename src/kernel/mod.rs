//! The md5 chain kernel: pure computation, no I/O, no allocation in the hot loop.
//!
//! md5chain(msg, n): one running MD5 state; n times: update it with `msg`, then
//! `msg` = lowercase hex of the digest of a copy of the state (the state goes on).

mod scalar;

/// A result: 32 lowercase hex digits (no NUL).
pub type Hex = [u8; 32];

/// One job for an engine. `iterations` must be at least 1.
#[derive(Clone, Copy, Debug)]
pub struct JobInput<'a> {
    pub msg: &'a [u8],
    pub iterations: u64,
}

/// Runs one md5 chain in the calling thread with the fastest scalar code.
/// `iterations` must be at least 1.
pub fn md5_chain(msg: &[u8], iterations: u64) -> Hex {
    scalar::md5_chain(msg, iterations)
}

/// Which implementation an [`Engine`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Scalar,
}

impl EngineKind {
    pub fn from_name(name: &str) -> Option<EngineKind> {
        match name {
            "scalar" => Some(EngineKind::Scalar),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Scalar => "scalar",
        }
    }
}

/// A kernel engine chosen once (at pool creation) and copied into workers.
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    kind: EngineKind,
}

impl Engine {
    /// The fastest engine this CPU (and OS) supports.
    pub fn best() -> Engine {
        Engine { kind: EngineKind::Scalar }
    }

    /// `kind` if this CPU can run it.
    pub fn new(kind: EngineKind) -> Option<Engine> {
        Some(Engine { kind })
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// How many jobs this engine wants at once to run at full throughput.
    pub fn lanes(&self) -> usize {
        1
    }

    /// Runs every job, calling `done(index, &hex)` as each one finishes (in any order).
    pub fn run(&self, jobs: &[JobInput<'_>], done: &mut dyn FnMut(usize, &Hex)) {
        for (index, job) in jobs.iter().enumerate() {
            done(index, &md5_chain(job.msg, job.iterations));
        }
    }
}
