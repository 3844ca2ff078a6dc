//! The md5 chain kernel: known vectors, and every engine bit-identical to the scalar chain and
//! to a straightforward reference on the `md-5` crate.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use md5::{Digest, Md5};
use md5pool::kernel::{md5_chain, Engine, EngineKind, Events, Hex, JobInput, Lanes};

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

/// The events a `Lanes` reported, checked as they come: each job starts once, and finishes
/// once, after it started.
#[derive(Default)]
struct Log {
    started: HashSet<u64>,
    finished: HashMap<u64, Hex>,
}

impl Events for Log {
    fn started(&mut self, tag: u64) {
        assert!(self.started.insert(tag), "job {tag} started twice");
    }

    fn finished(&mut self, tag: u64, hex: &Hex) {
        assert!(
            self.started.contains(&tag),
            "job {tag} finished, never started"
        );
        assert!(
            self.finished.insert(tag, *hex).is_none(),
            "job {tag} finished twice"
        );
    }
}

/// A slice budget: none at all, a fraction of one iteration, a few iterations, or up to a
/// millisecond, so that chains move between the scalar chain and the lanes at random
/// iterations and slices end anywhere in a job.
fn random_budget(rng: &mut Rng) -> Duration {
    match rng.below(5) {
        0 => Duration::ZERO,
        1 => Duration::from_nanos(rng.below(300)),
        2 => Duration::from_nanos(rng.below(20_000)),
        3 => Duration::from_micros(rng.below(1_000)),
        _ => Duration::from_millis(1),
    }
}

#[test]
fn lanes_capacity() {
    for engine in engines() {
        let want = match engine.kind() {
            EngineKind::Scalar => 4,
            EngineKind::Avx2 => 24,
            EngineKind::Avx512 => 64,
        };
        let lanes = Lanes::new(engine);
        assert_eq!(lanes.capacity(), want, "{}", engine.kind().name());
        assert!(lanes.is_empty());
    }
}

/// Jobs added in bursts between slices of random budgets, some removed (waiting, running or
/// already finished): every job that is not removed finishes once with the reference result,
/// a removed one never reports, and the counts stay right at every step.
#[test]
fn lanes_random_schedules_match_reference() {
    let max_n = if cfg!(debug_assertions) { 200 } else { 3000 };
    let mut rng = Rng(0x5eed_1a9e_5c4e_d01e);
    let (msgs, iters) = random_jobs(&mut rng, 300, max_n);
    let want: Vec<Hex> = msgs
        .iter()
        .zip(&iters)
        .map(|(m, &n)| reference(m, n))
        .collect();
    for engine in engines() {
        let name = engine.kind().name();
        let mut rng = Rng(0x0dd_ba11_c0ff_ee00);
        let mut lanes = Lanes::new(engine);
        let mut log = Log::default();
        let mut removed = HashSet::new();
        let mut added = 0usize;
        while added < msgs.len() || !lanes.is_empty() {
            if rng.below(3) == 0 {
                let burst = 1 + rng.below(lanes.capacity() as u64 + 4) as usize;
                for _ in 0..burst.min(msgs.len() - added) {
                    lanes.add(added as u64, &msgs[added], iters[added]);
                    added += 1;
                }
            }
            if added > 0 && rng.below(6) == 0 {
                let tag = rng.below(added as u64);
                let held = !log.finished.contains_key(&tag) && !removed.contains(&tag);
                assert_eq!(lanes.remove(tag), held, "{name}: remove job {tag}");
                if held {
                    removed.insert(tag);
                }
            }
            lanes.run(random_budget(&mut rng), &mut log);
            assert!(lanes.running() <= lanes.capacity(), "{name}");
            let held = added - log.finished.len() - removed.len();
            assert_eq!(lanes.len(), held, "{name}: jobs held");
        }
        for (tag, want) in want.iter().enumerate() {
            let tag = tag as u64;
            match log.finished.get(&tag) {
                Some(got) => {
                    assert!(
                        !removed.contains(&tag),
                        "{name}: job {tag} removed, then reported"
                    );
                    assert_eq!(
                        s(got),
                        s(want),
                        "{name}: job {tag} (len {}, {} iterations)",
                        msgs[tag as usize].len(),
                        iters[tag as usize]
                    );
                }
                None => assert!(removed.contains(&tag), "{name}: job {tag} lost"),
            }
        }
    }
}

/// A long job alone (on the scalar chain) while short jobs come and go beside it: it moves
/// into a lane and back at many random iterations, and still ends with the right result.
/// Lengths 0-40 cover every byte offset, both phases and two-block finals; the short jobs
/// have 1-40 iterations, so some finish while they are brought to the lanes' phase.
#[test]
fn lanes_lone_job_moves_between_scalar_chain_and_lanes() {
    let long_n = if cfg!(debug_assertions) { 400 } else { 20_000 };
    let mut rng = Rng(0xfeed_face_dead_beef);
    for engine in engines() {
        let name = engine.kind().name();
        for len in (0..=40).step_by(if cfg!(debug_assertions) { 13 } else { 3 }) {
            let long_msg = rng.bytes(len);
            let mut lanes = Lanes::new(engine);
            let mut log = Log::default();
            let mut want = HashMap::new();
            lanes.add(0, &long_msg, long_n);
            want.insert(0, reference(&long_msg, long_n));
            let mut tag = 1;
            while !lanes.is_empty() {
                if rng.below(2) == 0 {
                    let len = rng.below(70) as usize;
                    let msg = rng.bytes(len);
                    let n = 1 + rng.below(40);
                    lanes.add(tag, &msg, n);
                    want.insert(tag, reference(&msg, n));
                    tag += 1;
                }
                // A few iterations at most: the short jobs finish within a slice or two.
                lanes.run(Duration::from_nanos(rng.below(3_000)), &mut log);
            }
            assert_eq!(log.finished.len(), want.len(), "{name}, len {len}");
            for (tag, w) in &want {
                assert_eq!(s(&log.finished[tag]), s(w), "{name}, len {len}: job {tag}");
            }
        }
    }
}

/// A short job added behind a long one finishes first, on every engine: it takes a free
/// lane (or, on the scalar engine, a time-shared chain) instead of waiting.
#[test]
fn lanes_short_job_does_not_wait_behind_long_one() {
    for engine in engines() {
        let mut lanes = Lanes::new(engine);
        let mut log = Log::default();
        lanes.add(1, b"long", u64::MAX);
        lanes.run(Duration::from_millis(1), &mut log);
        lanes.add(2, b"short", 1000);
        for _ in 0..20 {
            lanes.run(Duration::from_millis(1), &mut log);
        }
        let name = engine.kind().name();
        assert_eq!(
            s(&log.finished[&2]),
            s(&reference(b"short", 1000)),
            "{name}"
        );
        assert!(!log.finished.contains_key(&1), "{name}");
        assert_eq!((lanes.len(), lanes.running()), (1, 1), "{name}");
        assert!(lanes.remove(1), "{name}");
        assert!(!lanes.remove(1), "{name}");
        assert!(lanes.is_empty(), "{name}");
    }
}

/// Only a job that finished is reported, and a slice without a budget only starts jobs.
#[test]
fn lanes_events_follow_the_jobs() {
    for engine in engines() {
        let name = engine.kind().name();
        let mut lanes = Lanes::new(engine);
        let mut log = Log::default();
        lanes.run(Duration::from_millis(1), &mut log);
        assert!(log.started.is_empty(), "{name}: nothing to start");
        let cap = lanes.capacity() as u64;
        for tag in 0..cap + 2 {
            lanes.add(tag, b"x", 1 << 40);
        }
        lanes.add(cap + 2, b"one", 1);
        assert!(log.started.is_empty(), "{name}: add reports nothing");
        assert_eq!(lanes.len() as u64, cap + 3, "{name}");
        lanes.run(Duration::ZERO, &mut log);
        // The lanes are full; the one-iteration job needed none and is done already.
        assert_eq!(log.started.len() as u64, cap + 1, "{name}");
        assert_eq!(
            s(&log.finished[&(cap + 2)]),
            s(&reference(b"one", 1)),
            "{name}"
        );
        assert_eq!(lanes.running() as u64, cap, "{name}");
        // A removed running job frees its lane for the first waiting one.
        assert!(lanes.remove(0), "{name}");
        lanes.run(Duration::ZERO, &mut log);
        assert!(log.started.contains(&cap), "{name}");
        assert!(!log.started.contains(&(cap + 1)), "{name}");
        assert!(lanes.remove(cap + 1), "{name}: a waiting job");
        assert_eq!(lanes.len() as u64, cap, "{name}");
    }
}
