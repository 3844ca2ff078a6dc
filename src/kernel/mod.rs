//! The md5 chain kernel: pure computation, no I/O, no allocation in the hot loop.
//!
//! md5chain(msg, n): one running MD5 state; n times: update it with `msg`, then
//! `msg` = lowercase hex of the digest of a copy of the state (the state goes on).
//!
//! Engines: a scalar chain (latency-bound, one job at a time) and multi-buffer SIMD engines
//! (one job per 32-bit lane, several vectors of lanes in flight) for AVX2 (3 groups of 8
//! lanes) and AVX-512 (4 groups of 16 lanes), chosen at run time. [`Lanes`] runs an open
//! set of jobs on an engine in bounded slices (jobs join and leave between slices; a lone job
//! runs on the scalar chain). `examples/kernel_bench.rs` measures them;
//! `tests/check_avx2_no_avx512.sh` checks that the AVX2 engine has no AVX-512 instruction.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod lanes;
#[cfg(target_arch = "x86_64")]
mod multibuf;
mod scalar;

pub use lanes::{Events, Lanes};

/// A result: 32 lowercase hex digits (no NUL).
pub type Hex = [u8; 32];

/// One job for an engine. `iterations` must be at least 1.
#[derive(Clone, Copy, Debug)]
pub struct JobInput<'a> {
    pub msg: &'a [u8],
    pub iterations: u64,
}

/// Runs one md5 chain in the calling thread with the fastest scalar code.
/// `iterations` must be at least 1 (0 is treated as 1).
pub fn md5_chain(msg: &[u8], iterations: u64) -> Hex {
    scalar::md5_chain(msg, iterations)
}

/// MD5 blocks a job compresses: its message (and padding) once, then about 1.5
/// blocks per further iteration (a 32-byte append every time, a final block each).
pub fn cost_in_blocks(len: usize, iterations: u64) -> u64 {
    (len as u64 / 64 + 1).saturating_add(iterations.saturating_sub(1).saturating_mul(3) / 2)
}

/// Which implementation an [`Engine`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Scalar,
    Avx2,
    Avx512,
}

impl EngineKind {
    /// Parses `"scalar"`, `"avx2"` or `"avx512"`.
    pub fn from_name(name: &str) -> Option<EngineKind> {
        match name {
            "scalar" => Some(EngineKind::Scalar),
            "avx2" => Some(EngineKind::Avx2),
            "avx512" => Some(EngineKind::Avx512),
            _ => None,
        }
    }

    /// `"scalar"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Scalar => "scalar",
            EngineKind::Avx2 => "avx2",
            EngineKind::Avx512 => "avx512",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(avx512::Avx512),
}

/// A kernel engine chosen once (at pool creation) and copied into workers.
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    inner: Inner,
}

impl Engine {
    /// The fastest engine this CPU (and OS) supports.
    pub fn best() -> Engine {
        Engine::new(EngineKind::Avx512)
            .or_else(|| Engine::new(EngineKind::Avx2))
            .unwrap_or(Engine {
                inner: Inner::Scalar,
            })
    }

    /// `kind` if this CPU (and OS) can run it.
    pub fn new(kind: EngineKind) -> Option<Engine> {
        let inner = match kind {
            EngineKind::Scalar => Some(Inner::Scalar),
            #[cfg(target_arch = "x86_64")]
            EngineKind::Avx2 => avx2::Avx2::detect().map(Inner::Avx2),
            #[cfg(target_arch = "x86_64")]
            EngineKind::Avx512 => avx512::Avx512::detect().map(Inner::Avx512),
            #[cfg(not(target_arch = "x86_64"))]
            EngineKind::Avx2 | EngineKind::Avx512 => None,
        };
        inner.map(|inner| Engine { inner })
    }

    pub fn kind(&self) -> EngineKind {
        match self.inner {
            Inner::Scalar => EngineKind::Scalar,
            #[cfg(target_arch = "x86_64")]
            Inner::Avx2(_) => EngineKind::Avx2,
            #[cfg(target_arch = "x86_64")]
            Inner::Avx512(_) => EngineKind::Avx512,
        }
    }

    /// How many jobs this engine wants at once to run at full throughput.
    pub fn lanes(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        use multibuf::Kernel;
        match self.inner {
            Inner::Scalar => 1,
            #[cfg(target_arch = "x86_64")]
            Inner::Avx2(_) => avx2::Avx2::WIDTH * avx2::Avx2::MAX_GROUPS,
            #[cfg(target_arch = "x86_64")]
            Inner::Avx512(_) => avx512::Avx512::WIDTH * avx512::Avx512::MAX_GROUPS,
        }
    }

    /// Runs every job, calling `done(index, &hex)` as each one finishes (in any order): one
    /// [`Lanes`] slice without a time limit.
    pub fn run(&self, jobs: &[JobInput<'_>], done: &mut dyn FnMut(usize, &Hex)) {
        struct Report<'a>(&'a mut dyn FnMut(usize, &Hex));
        impl Events for Report<'_> {
            fn started(&mut self, _tag: u64) {}
            fn finished(&mut self, tag: u64, hex: &Hex) {
                (self.0)(tag as usize, hex)
            }
        }
        let mut lanes = Lanes::new(*self);
        for (index, job) in jobs.iter().enumerate() {
            lanes.add(index as u64, job.msg, job.iterations);
        }
        lanes.run(std::time::Duration::MAX, &mut Report(done));
    }
}
