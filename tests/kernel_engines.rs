//! The md5 chain kernel: known vectors, and every engine bit-identical to the scalar chain and
//! to a straightforward reference on the `md-5` crate.

use md5::{Digest, Md5};
use md5pool::kernel::{md5_chain, Engine, EngineKind, Hex, JobInput};

/// The obvious implementation: md-5 + hex, one copy of the state per iteration.
fn reference(msg: &[u8], iterations: u64) -> Hex {
    let mut state = Md5::new();
    state.update(msg);
    let mut hex = [0u8; 32];
    hex::encode_to_slice(state.clone().finalize(), &mut hex).unwrap();
    for _ in 1..iterations {
        state.update(hex);
        hex::encode_to_slice(state.clone().finalize(), &mut hex).unwrap();
    }
    hex
}

/// xorshift64: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// `bytes(i * 7 % 251 for i in range(1 << 20))` in Python.
fn mib_message() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i * 7 % 251) as u8).collect()
}

// Generated with Python 3:
//   def chain(msg, n):
//       st = hashlib.md5(); st.update(msg)
//       h = st.copy().hexdigest().encode()
//       for _ in range(1, n):
//           st.update(h); h = st.copy().hexdigest().encode()
//       return h.decode()
// for each message below and n in (1, 2, 3, 1000).
const VECTORS: &[(&str, [&str; 4])] = &[
    (
        "empty",
        [
            "d41d8cd98f00b204e9800998ecf8427e",
            "74be16979710d4c4e7c6647856088456",
            "81835ac0b6eec6f50bd14cae9bc4eca1",
            "67c0e5bf21f79ffdce34941b2928e5e8",
        ],
    ),
    (
        "nuls",
        [
            "9dda6c26e3a9d07b7c2eb984cf3b59e1",
            "51d887185041be1fc3c9f210fa2cb103",
            "1f1eca8f40e56b7a5cf723ca4290163c",
            "5244cccdd41a5d3943166667b3bbee55",
        ],
    ),
    (
        "zeros64",
        [
            "3b5d3c7d207e37dceeedd301e35e2e58",
            "9340a8efed8107f5d0fe43a7bf3415d6",
            "051b4441b35b29406e819e2474a9ead0",
            "6779f9a2d495b76a75b4ae1d7f70b84d",
        ],
    ),
    (
        "hello",
        [
            "b10a8db164e0754105b7a99be72e3fe5",
            "31a873380be1fb717a0bddfa9681ea92",
            "37d6ca10ccc197951e20139210e3a7ea",
            "caee5abf5ca7e08f5dbf213dc30ecb82",
        ],
    ),
    (
        "mib",
        [
            "26e2437d8c01f4bceded84f9309ac88f",
            "35379fd3954274e5f777a2e1613d38d9",
            "41f00c13a0064706f89dadda4d7084e6",
            "b6f7e528d4b25fa7bc1e7ae2fb571b35",
        ],
    ),
];
const VECTOR_ITERATIONS: [u64; 4] = [1, 2, 3, 1000];

fn vector_message(name: &str) -> Vec<u8> {
    match name {
        "empty" => Vec::new(),
        "nuls" => b"a\0b\0\0c".to_vec(),
        "zeros64" => vec![0; 64],
        "hello" => b"Hello World".to_vec(),
        "mib" => mib_message(),
        _ => unreachable!(),
    }
}

/// Every engine this machine can run (skipping the others with a note).
fn engines() -> Vec<Engine> {
    let mut v = Vec::new();
    for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
        match Engine::new(kind) {
            Some(e) => v.push(e),
            None => eprintln!(
                "skipping engine {}: not supported on this machine",
                kind.name()
            ),
        }
    }
    v
}

/// Runs `jobs` on `engine`, checking that each index is reported exactly once.
fn run_all(engine: &Engine, jobs: &[JobInput<'_>]) -> Vec<Hex> {
    let mut got: Vec<Option<Hex>> = vec![None; jobs.len()];
    engine.run(jobs, &mut |i, h| {
        assert!(
            got[i].is_none(),
            "{}: job {i} reported twice",
            engine.kind().name()
        );
        got[i] = Some(*h);
    });
    got.into_iter()
        .enumerate()
        .map(|(i, h)| {
            h.unwrap_or_else(|| panic!("{}: job {i} never reported", engine.kind().name()))
        })
        .collect()
}

fn s(h: &Hex) -> &str {
    std::str::from_utf8(h).unwrap()
}

#[test]
fn hello_world_million() {
    assert_eq!(
        s(&md5_chain(b"Hello World", 1_000_000)),
        "1e4110cf294414bc2ac346ad274a7af3"
    );
}

#[test]
fn scalar_vectors() {
    assert_eq!(
        s(&md5_chain(b"Hello World", 1)),
        "b10a8db164e0754105b7a99be72e3fe5"
    );
    for (name, want) in VECTORS {
        let msg = vector_message(name);
        for (n, w) in VECTOR_ITERATIONS.iter().zip(want) {
            assert_eq!(s(&md5_chain(&msg, *n)), *w, "{name} x {n}");
        }
    }
}

#[test]
fn engine_vectors() {
    let msgs: Vec<(&str, Vec<u8>)> = VECTORS
        .iter()
        .map(|(n, _)| (*n, vector_message(n)))
        .collect();
    let mut jobs = Vec::new();
    let mut want = Vec::new();
    for ((name, msg), (_, w)) in msgs.iter().zip(VECTORS) {
        for (n, w) in VECTOR_ITERATIONS.iter().zip(w) {
            jobs.push(JobInput {
                msg,
                iterations: *n,
            });
            want.push((*name, *n, *w));
        }
    }
    for engine in engines() {
        for (got, (name, n, w)) in run_all(&engine, &jobs).iter().zip(&want) {
            assert_eq!(s(got), *w, "{}: {name} x {n}", engine.kind().name());
        }
    }
}

#[test]
fn scalar_matches_reference() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for len in 0..=300 {
        let msg = rng.bytes(len);
        let n = match len % 4 {
            0 => 1,
            1 => 2,
            2 => 3,
            _ => 1 + rng.below(if cfg!(debug_assertions) { 300 } else { 5000 }),
        };
        assert_eq!(md5_chain(&msg, n), reference(&msg, n), "len {len} x {n}");
    }
}

/// Pseudo-random jobs: messages of 0-300 bytes (so lanes are out of phase and some finals take
/// two blocks) and iteration counts 1, 2, 3 or up to `max_n`.
fn random_jobs(rng: &mut Rng, count: usize, max_n: u64) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut msgs = Vec::new();
    let mut iters = Vec::new();
    for i in 0..count {
        let len = rng.below(301) as usize;
        msgs.push(rng.bytes(len));
        iters.push(match i % 7 {
            0 => 1,
            1 => 2,
            2 => 3,
            _ => 1 + rng.below(max_n),
        });
    }
    (msgs, iters)
}

#[test]
fn engines_match_scalar_and_reference() {
    let max_n = if cfg!(debug_assertions) { 400 } else { 5000 };
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    let (msgs, iters) = random_jobs(&mut rng, 150, max_n);
    let jobs: Vec<JobInput> = msgs
        .iter()
        .zip(&iters)
        .map(|(m, &n)| JobInput {
            msg: m,
            iterations: n,
        })
        .collect();
    let scalar: Vec<Hex> = jobs
        .iter()
        .map(|j| md5_chain(j.msg, j.iterations))
        .collect();
    for (j, h) in jobs.iter().zip(&scalar).step_by(5) {
        assert_eq!(
            *h,
            reference(j.msg, j.iterations),
            "scalar vs reference, len {}",
            j.msg.len()
        );
    }
    for engine in engines() {
        let lanes = engine.lanes();
        // Job counts: lone job, a few, around the lane count, more than the lanes.
        for count in [
            1,
            2,
            3,
            7,
            lanes.saturating_sub(1).max(1),
            lanes + 5,
            jobs.len(),
        ] {
            let count = count.min(jobs.len());
            let got = run_all(&engine, &jobs[..count]);
            for (i, (g, w)) in got.iter().zip(&scalar).enumerate() {
                assert_eq!(
                    s(g),
                    s(w),
                    "{} with {count} jobs: job {i} (len {}, {} iterations)",
                    engine.kind().name(),
                    jobs[i].msg.len(),
                    jobs[i].iterations
                );
            }
        }
    }
}

#[test]
fn engines_all_phases_and_long_finals() {
    // Every message length 0..=130 at once: all 32 byte offsets, both phases, one- and
    // two-block finals, lanes finishing at different times.
    let max_n = if cfg!(debug_assertions) { 60 } else { 700 };
    let msgs: Vec<Vec<u8>> = (0..=130)
        .map(|len| (0..len).map(|i| (i * 31 + len) as u8).collect())
        .collect();
    let jobs: Vec<JobInput> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| JobInput {
            msg: m,
            iterations: 1 + (i as u64 * 37) % max_n,
        })
        .collect();
    let want: Vec<Hex> = jobs
        .iter()
        .map(|j| reference(j.msg, j.iterations))
        .collect();
    for engine in engines() {
        assert_eq!(run_all(&engine, &jobs), want, "{}", engine.kind().name());
    }
}

#[test]
fn engines_uniform_batch() {
    // Identical jobs: every lane finishes in the same slot, and the lanes are refilled.
    let n = if cfg!(debug_assertions) {
        3_000
    } else {
        100_000
    };
    let want = md5_chain(b"Hello World", n);
    if !cfg!(debug_assertions) {
        // Python: chain(b"Hello World", 100000)
        assert_eq!(s(&want), "14961cc88de041db7d562a1311a4330b");
    }
    for engine in engines() {
        let jobs = vec![
            JobInput {
                msg: b"Hello World",
                iterations: n
            };
            engine.lanes() + 3
        ];
        for got in run_all(&engine, &jobs) {
            assert_eq!(got, want, "{}", engine.kind().name());
        }
    }
}

#[test]
fn engine_selection() {
    for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
        assert_eq!(EngineKind::from_name(kind.name()), Some(kind));
        if let Some(e) = Engine::new(kind) {
            assert_eq!(e.kind(), kind);
            assert!(e.lanes() >= 1);
        }
    }
    assert_eq!(EngineKind::from_name("sse"), None);
    let scalar = Engine::new(EngineKind::Scalar).expect("the scalar engine runs everywhere");
    assert_eq!(scalar.lanes(), 1);
    let best = Engine::best();
    assert!(Engine::new(best.kind()).is_some());
    if let Some(e) = Engine::new(EngineKind::Avx512) {
        assert_eq!(best.kind(), EngineKind::Avx512);
        assert_eq!(e.lanes() % 16, 0);
    } else if let Some(e) = Engine::new(EngineKind::Avx2) {
        assert_eq!(best.kind(), EngineKind::Avx2);
        assert_eq!(e.lanes() % 8, 0);
    }
    // An empty batch reports nothing.
    best.run(&[], &mut |_, _| panic!("no job to report"));
}
