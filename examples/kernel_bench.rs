//! In-process benchmark of the md5 chain kernel engines (one thread).
//!
//! cargo run --release --example kernel_bench -- [iterations] [runs] [mixed|scalar|lanes]
//! Prints s/job for the scalar chain and jobs/s for each engine given `lanes()` jobs
//! (medians of `runs`, in thread CPU time). `mixed`: messages of pseudo-random lengths 0-300 instead of
//! "Hello World". `scalar`: only the scalar chain, for "Hello World" and for a 28-byte
//! message (`len % 32 >= 24`: two-block finals, 2 blocks per iteration instead of 1.5).
//! `lanes`: each engine's `Lanes` run in 1 ms slices against one closed batch
//! (`Engine::run`), for full lanes, a lone job and 1,000 one-iteration jobs, runs alternated.
use md5pool::kernel::{md5_chain, Engine, EngineKind, Events, Hex, JobInput, Lanes};
use std::hint::black_box;
use std::time::Duration;

/// CPU time of this thread, in seconds (other processes on the machine do not count).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iterations: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mixed = args.get(3).is_some_and(|s| s == "mixed");
    let scalar_only = args.get(3).is_some_and(|s| s == "scalar");
    if args.get(3).is_some_and(|s| s == "lanes") {
        return lanes_bench(iterations, runs);
    }

    let scalar_chain = |msg: &[u8]| {
        median(
            (0..runs)
                .map(|_| {
                    let t = cpu_seconds();
                    black_box(md5_chain(black_box(msg), iterations));
                    cpu_seconds() - t
                })
                .collect(),
        )
    };
    let scalar = scalar_chain(b"Hello World");
    println!(
        "scalar md5_chain: {scalar:.4} s/job ({:.1} jobs/s)",
        1.0 / scalar
    );
    if scalar_only {
        let long = scalar_chain(b"0123456789012345678901234567");
        println!(
            "scalar md5_chain, 28-byte message: {long:.4} s/job ({:.1} jobs/s)",
            1.0 / long
        );
        return;
    }

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut msgs = Vec::new();
    for _ in 0..64 {
        if mixed {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 301) as usize;
            msgs.push(
                (0..len)
                    .map(|i| ((i as u64 * seed) >> 7) as u8)
                    .collect::<Vec<u8>>(),
            );
        } else {
            msgs.push(b"Hello World".to_vec());
        }
    }
    for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
        let Some(engine) = Engine::new(kind) else {
            println!("{}: not supported here", kind.name());
            continue;
        };
        // Full lanes, then a small batch (2 jobs: one SIMD group, or the scalar chain).
        for count in [engine.lanes().max(2), 2] {
            let jobs: Vec<JobInput> = msgs
                .iter()
                .cycle()
                .take(count)
                .map(|m| JobInput { msg: m, iterations })
                .collect();
            let t = median(
                (0..runs)
                    .map(|_| {
                        let t = cpu_seconds();
                        let mut n = 0;
                        engine.run(&jobs, &mut |_, h| {
                            black_box(h);
                            n += 1;
                        });
                        assert_eq!(n, jobs.len());
                        cpu_seconds() - t
                    })
                    .collect(),
            );
            let rate = jobs.len() as f64 / t;
            println!(
                "{:>6}: lanes() {:>2}, {:>2} jobs in {t:.4} s = {rate:.1} jobs/s = {:.2}x the scalar chain",
                kind.name(),
                engine.lanes(),
                jobs.len(),
                rate * scalar
            );
        }
    }
}

/// Counts finished jobs.
struct Count(usize);

impl Events for Count {
    fn started(&mut self, _tag: u64) {}
    fn finished(&mut self, _tag: u64, hex: &Hex) {
        black_box(hex);
        self.0 += 1;
    }
}

/// CPU seconds of `jobs` through one closed batch (`Engine::run`).
fn batch(engine: Engine, jobs: &[JobInput<'_>]) -> f64 {
    let t = cpu_seconds();
    let mut n = 0;
    engine.run(jobs, &mut |_, h| {
        black_box(h);
        n += 1;
    });
    assert_eq!(n, jobs.len());
    cpu_seconds() - t
}

/// CPU seconds of `jobs` through `Lanes` in slices of `slice`; with `slices`, the CPU time
/// of every slice is appended to it.
fn sliced(
    engine: Engine,
    jobs: &[JobInput<'_>],
    slice: Duration,
    mut slices: Option<&mut Vec<f64>>,
) -> f64 {
    let t = cpu_seconds();
    let mut lanes = Lanes::new(engine);
    for (tag, job) in jobs.iter().enumerate() {
        lanes.add(tag as u64, job.msg, job.iterations);
    }
    let mut count = Count(0);
    while !lanes.is_empty() {
        match slices.as_deref_mut() {
            Some(v) => {
                let s = cpu_seconds();
                lanes.run(slice, &mut count);
                v.push(cpu_seconds() - s);
            }
            None => lanes.run(slice, &mut count),
        }
    }
    assert_eq!(count.0, jobs.len());
    cpu_seconds() - t
}

fn lanes_bench(iterations: u64, runs: usize) {
    let ms = Duration::from_millis(1);
    for kind in [EngineKind::Scalar, EngineKind::Avx2, EngineKind::Avx512] {
        let Some(engine) = Engine::new(kind) else {
            println!("{}: not supported here", kind.name());
            continue;
        };
        let name = kind.name();
        let full = Lanes::new(engine).capacity();
        let one = JobInput {
            msg: b"Hello World",
            iterations,
        };
        let tiny = JobInput {
            msg: b"Hello World",
            iterations: 1,
        };
        for (what, jobs, reps) in [
            ("full lanes", vec![one; full], 1),
            ("lone job", vec![one], 1),
            ("1,000 x 1 iteration", vec![tiny; 1000], 200),
        ] {
            // Alternated, and compared run by run: the machine's speed drifts.
            let (mut b, mut s, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let bt: f64 = (0..reps).map(|_| batch(engine, &jobs)).sum();
                let st: f64 = (0..reps).map(|_| sliced(engine, &jobs, ms, None)).sum();
                b.push(bt / reps as f64);
                s.push(st / reps as f64);
                ratio.push(bt / st);
            }
            let mut slices = Vec::new();
            sliced(engine, &jobs, ms, Some(&mut slices));
            slices.sort_by(|a, b| a.total_cmp(b));
            let per_job = |v: Vec<f64>| median(v) / jobs.len() as f64 * 1e3;
            println!(
                "{name:>6} {what:>19}: batch {:.5} ms/job, in 1 ms slices {:.5} ms/job: {:.3}x the \
                 batch's speed (median of per-run ratios); slices p50 {:.3} ms, max {:.3} ms",
                per_job(b),
                per_job(s),
                median(ratio),
                slices[slices.len() / 2] * 1e3,
                slices[slices.len() - 1] * 1e3,
            );
        }
    }
}
