//! Random sequences of calls of the C API (`md5pool::ffi`), with
//! random arguments (NULL pointers, zero and huge iterations, unknown ids, statuses
//! outside the enum, tiny queues, cancels, waits with timeout 0 or short), against
//! one pool per case, checked against a model of which jobs are outstanding,
//! canceled or collected and of what each call must return.
//!
//! Size: PROPTEST_CASES cases (default 32) of up to FFI_MAX_CALLS calls (default 40).
//! `make stress` runs it longer.

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::ptr;

use md5pool::ffi::{self, pool, pool_config, pool_stats, pool_status, StatusArg};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Iterations that never finish here: such a job is only ever canceled.
const HUGE: u64 = u64::MAX;

#[derive(Clone, Debug)]
enum Target {
    /// The n-th job submitted in this case (modulo how many there are).
    Known(usize),
    /// An id the pool never gave (0 or far past the last one).
    Unknown(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Submit {
        msg: Vec<u8>,
        iterations: u64,
        null_msg: bool,
        null_out: bool,
    },
    Wait {
        target: Target,
        timeout_ms: i64,
        null_hex: bool,
    },
    WaitAny {
        timeout_ms: i64,
        null_out: bool,
        null_hex: bool,
    },
    Cancel {
        target: Target,
    },
    Stats {
        null_out: bool,
    },
    WorkerPids {
        cap: usize,
        null_pids: bool,
        null_count: bool,
    },
    Fd,
    NullPool(u8),
    Strerror(u32),
    Md5Chain {
        msg: Vec<u8>,
        iterations: u64,
        null_hex: bool,
    },
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0usize..64).prop_map(Target::Known),
        1 => prop_oneof![Just(0u64), 1_000_000u64..u64::MAX].prop_map(Target::Unknown),
    ]
}

fn iterations() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 1u64..200, 1 => Just(0u64), 1 => Just(HUGE)]
}

fn short_timeout() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1i64..20]
}

fn op() -> impl Strategy<Value = Op> {
    let msg = prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        6 => (msg.clone(), iterations(), prop::bool::weighted(0.05), prop::bool::weighted(0.05))
            .prop_map(|(msg, iterations, null_msg, null_out)| Op::Submit { msg, iterations, null_msg, null_out }),
        4 => (target(), prop_oneof![3 => short_timeout(), 1 => Just(-1i64)], prop::bool::weighted(0.05))
            .prop_map(|(target, timeout_ms, null_hex)| Op::Wait { target, timeout_ms, null_hex }),
        3 => (short_timeout(), prop::bool::weighted(0.05), prop::bool::weighted(0.2))
            .prop_map(|(timeout_ms, null_out, null_hex)| Op::WaitAny { timeout_ms, null_out, null_hex }),
        2 => target().prop_map(|target| Op::Cancel { target }),
        1 => prop::bool::weighted(0.1).prop_map(|null_out| Op::Stats { null_out }),
        1 => (0usize..4, prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(cap, null_pids, null_count)| Op::WorkerPids { cap, null_pids, null_count }),
        1 => Just(Op::Fd),
        1 => (0u8..8).prop_map(Op::NullPool),
        1 => prop_oneof![0u32..16, any::<u32>()].prop_map(Op::Strerror),
        1 => (msg, prop_oneof![0u64..64], prop::bool::weighted(0.1))
            .prop_map(|(msg, iterations, null_hex)| Op::Md5Chain { msg, iterations, null_hex }),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    workers: u32,
    queue_capacity: u32,
}

fn setup() -> impl Strategy<Value = Setup> {
    (1u32..=2, prop_oneof![Just(0u32), 1u32..8]).prop_map(|(workers, queue_capacity)| Setup {
        workers,
        queue_capacity,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum JobState {
    Outstanding { canceled: bool },
    Collected,
}

#[derive(Clone, Debug)]
struct Job {
    id: u64,
    msg: Vec<u8>,
    iterations: u64,
    state: JobState,
}

struct Model {
    jobs: Vec<Job>,
    by_id: BTreeMap<u64, usize>,
    capacity: usize,
    workers: u32,
    last_id: u64,
}

impl Model {
    fn outstanding(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| matches!(j.state, JobState::Outstanding { .. }))
            .count()
    }

    fn id_of(&self, t: &Target) -> u64 {
        match *t {
            Target::Known(n) if !self.jobs.is_empty() => self.jobs[n % self.jobs.len()].id,
            Target::Known(_) => self.last_id + 1,
            Target::Unknown(id) if id == 0 || id > self.last_id + 1000 => id,
            Target::Unknown(_) => 0,
        }
    }

    /// Whether waiting for a job with no time limit is sure to end: not while a
    /// never-ending job is outstanding and not canceled, since a worker busy with it
    /// may also hold other jobs (a worker runs what it was sent as one batch).
    fn finishes(&self, id: u64) -> bool {
        let canceled = self
            .by_id
            .get(&id)
            .is_some_and(|&i| self.jobs[i].state == JobState::Outstanding { canceled: true });
        canceled
            || !self.jobs.iter().any(|j| {
                j.iterations == HUGE && j.state == JobState::Outstanding { canceled: false }
            })
    }
}

fn expected_hex(msg: &[u8], iterations: u64) -> String {
    md5pool::md5_chain(msg, iterations)
        .expect("iterations >= 1")
        .to_string()
}

fn hex_str(buf: &[c_char; ffi::POOL_HEX_LEN]) -> String {
    // SAFETY: the library wrote a NUL-terminated string into the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .expect("ASCII")
        .to_owned()
}

fn strerror(code: u32) -> String {
    // SAFETY: StatusArg is a repr(transparent) u32: the C side passes any int.
    let arg = unsafe { std::mem::transmute::<u32, StatusArg>(code) };
    let text = ffi::pool_strerror(arg);
    assert!(!text.is_null(), "pool_strerror({code}) returned NULL");
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .expect("UTF-8")
        .to_owned()
}

/// Records a job collected with `status` (and `hex` when known), checking it.
fn collected(
    model: &mut Model,
    id: u64,
    status: pool_status,
    hex: Option<String>,
) -> Result<(), TestCaseError> {
    let Some(&i) = model.by_id.get(&id) else {
        return Err(TestCaseError::fail(format!(
            "collected job {id} that was never submitted"
        )));
    };
    let job = &mut model.jobs[i];
    let JobState::Outstanding { canceled } = job.state else {
        return Err(TestCaseError::fail(format!("job {id} collected twice")));
    };
    if canceled {
        prop_assert_eq!(status, pool_status::POOL_ECANCELED, "canceled job {}", id);
    } else {
        prop_assert_eq!(status, pool_status::POOL_OK, "job {}", id);
        if let Some(hex) = hex {
            prop_assert_eq!(
                hex,
                expected_hex(&job.msg, job.iterations),
                "result of job {}",
                id
            );
        }
    }
    job.state = JobState::Collected;
    Ok(())
}

fn check_stats(p: *mut pool, model: &Model) -> Result<(), TestCaseError> {
    let mut s = pool_stats::default();
    // SAFETY: a live pool and a live out-parameter.
    let st = unsafe { ffi::pool_stats_get(p, &mut s) };
    prop_assert_eq!(st, pool_status::POOL_OK);
    prop_assert_eq!(s.workers_configured, model.workers);
    prop_assert_eq!(
        (s.jobs_queued + s.jobs_running + s.jobs_ready) as usize,
        model.outstanding(),
        "queued + running + ready = outstanding: {:?}",
        s
    );
    Ok(())
}

fn step(p: *mut pool, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let mut hex: [c_char; ffi::POOL_HEX_LEN] = [0; ffi::POOL_HEX_LEN];
    match op {
        Op::Submit {
            msg,
            iterations,
            null_msg,
            null_out,
        } => {
            let mut id = 0u64;
            let msg_ptr = if *null_msg {
                ptr::null()
            } else {
                msg.as_ptr().cast()
            };
            let out = if *null_out {
                ptr::null_mut()
            } else {
                &mut id as *mut u64
            };
            // SAFETY: msg_ptr is NULL or points to msg.len() bytes; out is NULL or live.
            let st = unsafe { ffi::pool_submit(p, msg_ptr, msg.len(), *iterations, out) };
            let want = if *null_out || (*null_msg && !msg.is_empty()) || *iterations == 0 {
                pool_status::POOL_EINVAL
            } else if model.outstanding() >= model.capacity {
                pool_status::POOL_EFULL
            } else {
                pool_status::POOL_OK
            };
            prop_assert_eq!(st, want, "{:?}", op);
            if st == pool_status::POOL_OK {
                prop_assert!(
                    id > model.last_id,
                    "id {} not above earlier ids (last {})",
                    id,
                    model.last_id
                );
                model.last_id = id;
                model.by_id.insert(id, model.jobs.len());
                let msg = if *null_msg { Vec::new() } else { msg.clone() };
                model.jobs.push(Job {
                    id,
                    msg,
                    iterations: *iterations,
                    state: JobState::Outstanding { canceled: false },
                });
            } else {
                prop_assert_eq!(id, 0, "job_out written on failure");
            }
        }
        Op::Wait {
            target,
            timeout_ms,
            null_hex,
        } => {
            let id = model.id_of(target);
            // A job that never finishes is not waited for forever.
            let timeout_ms = if *timeout_ms < 0 && !model.finishes(id) {
                5
            } else {
                *timeout_ms
            };
            let out = if *null_hex {
                ptr::null_mut()
            } else {
                hex.as_mut_ptr()
            };
            // SAFETY: out is NULL or POOL_HEX_LEN bytes.
            let st = unsafe { ffi::pool_wait(p, id, timeout_ms, out) };
            let state = model.by_id.get(&id).map(|&i| model.jobs[i].state.clone());
            match (state, *null_hex) {
                (_, true) => prop_assert_eq!(st, pool_status::POOL_EINVAL),
                (None, _) | (Some(JobState::Collected), _) => {
                    prop_assert_eq!(st, pool_status::POOL_ENOJOB, "{:?}", op)
                }
                (Some(JobState::Outstanding { canceled: true }), _) => {
                    collected(model, id, st, None)?;
                }
                (Some(JobState::Outstanding { canceled: false }), _) => {
                    if st == pool_status::POOL_ETIMEDOUT {
                        prop_assert!(timeout_ms >= 0, "POOL_ETIMEDOUT from a wait without limit");
                    } else {
                        collected(model, id, st, Some(hex_str(&hex)))?;
                    }
                }
            }
        }
        Op::WaitAny {
            timeout_ms,
            null_out,
            null_hex,
        } => {
            let mut id = 0u64;
            let out = if *null_out {
                ptr::null_mut()
            } else {
                &mut id as *mut u64
            };
            let hex_out = if *null_hex {
                ptr::null_mut()
            } else {
                hex.as_mut_ptr()
            };
            // SAFETY: out and hex_out are NULL or live buffers of the right size.
            let st = unsafe { ffi::pool_wait_any(p, *timeout_ms, out, hex_out) };
            let canceled_waiting = model
                .jobs
                .iter()
                .any(|j| j.state == JobState::Outstanding { canceled: true });
            if *null_out {
                prop_assert_eq!(st, pool_status::POOL_EINVAL);
            } else if model.outstanding() == 0 {
                prop_assert_eq!(st, pool_status::POOL_ENOJOB);
            } else if st == pool_status::POOL_ETIMEDOUT {
                prop_assert!(
                    !canceled_waiting,
                    "POOL_ETIMEDOUT while a canceled job awaited collection"
                );
            } else {
                let hex = (!*null_hex && st == pool_status::POOL_OK).then(|| hex_str(&hex));
                collected(model, id, st, hex)?;
            }
        }
        Op::Cancel { target } => {
            let id = model.id_of(target);
            // SAFETY: a live pool.
            let st = unsafe { ffi::pool_cancel(p, id) };
            match model.by_id.get(&id).copied() {
                Some(i) if matches!(model.jobs[i].state, JobState::Outstanding { .. }) => {
                    prop_assert_eq!(st, pool_status::POOL_OK);
                    model.jobs[i].state = JobState::Outstanding { canceled: true };
                }
                _ => prop_assert_eq!(st, pool_status::POOL_ENOJOB),
            }
        }
        Op::Stats { null_out } => {
            if *null_out {
                // SAFETY: a live pool; NULL out is the point.
                let st = unsafe { ffi::pool_stats_get(p, ptr::null_mut()) };
                prop_assert_eq!(st, pool_status::POOL_EINVAL);
            } else {
                check_stats(p, model)?;
            }
        }
        Op::WorkerPids {
            cap,
            null_pids,
            null_count,
        } => {
            let mut pids = [0i32; 4];
            let mut count = usize::MAX;
            let pids_ptr = if *null_pids {
                ptr::null_mut()
            } else {
                pids.as_mut_ptr()
            };
            let count_ptr = if *null_count {
                ptr::null_mut()
            } else {
                &mut count as *mut usize
            };
            // SAFETY: pids_ptr holds 4 >= cap entries or is NULL; count_ptr is NULL or live.
            let st = unsafe { ffi::pool_worker_pids(p, pids_ptr, *cap, count_ptr) };
            if *null_count || (*null_pids && *cap > 0) {
                prop_assert_eq!(st, pool_status::POOL_EINVAL);
                prop_assert!(
                    *null_count || count == usize::MAX,
                    "count written on failure"
                );
            } else {
                prop_assert_eq!(st, pool_status::POOL_OK);
                prop_assert!(count <= 2 * model.workers as usize, "{} workers", count);
                for &pid in pids.iter().take(count.min(*cap)) {
                    prop_assert!(pid > 0);
                }
            }
        }
        Op::Fd => {
            // SAFETY: a live pool.
            let fd = unsafe { ffi::pool_fd(p) };
            prop_assert!(fd >= 0);
            // SAFETY: NULL is allowed.
            prop_assert_eq!(unsafe { ffi::pool_fd(ptr::null()) }, -1);
            if model
                .jobs
                .iter()
                .any(|j| j.state == JobState::Outstanding { canceled: true })
            {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one live pollfd.
                let readable = unsafe { libc::poll(&mut pfd, 1, 0) };
                prop_assert_eq!(readable, 1, "pool_fd not readable with a job ready");
            }
        }
        Op::NullPool(which) => {
            let mut id = 0u64;
            let mut s = pool_stats::default();
            let mut n = 0usize;
            let null = ptr::null_mut::<pool>();
            // SAFETY: every call gets a NULL pool and otherwise valid arguments.
            let st = unsafe {
                match which {
                    0 => ffi::pool_submit(null, b"x".as_ptr().cast(), 1, 1, &mut id),
                    1 => ffi::pool_wait(null, 1, 0, hex.as_mut_ptr()),
                    2 => ffi::pool_wait_any(null, 0, &mut id, hex.as_mut_ptr()),
                    3 => ffi::pool_cancel(null, 1),
                    4 => ffi::pool_stats_get(null, &mut s),
                    5 => ffi::pool_worker_pids(null, ptr::null_mut(), 0, &mut n),
                    6 => ffi::pool_create(ptr::null(), ptr::null_mut()),
                    _ => {
                        prop_assert_eq!(ffi::pool_destroy(null), pool_status::POOL_OK);
                        pool_status::POOL_EINVAL
                    }
                }
            };
            prop_assert_eq!(st, pool_status::POOL_EINVAL, "NULL pool, call {}", which);
        }
        Op::Strerror(code) => {
            let text = strerror(*code);
            prop_assert!(!text.is_empty());
            if *code <= 12 {
                prop_assert_ne!(text, strerror(1000), "status {} has its own text", code);
            }
        }
        Op::Md5Chain {
            msg,
            iterations,
            null_hex,
        } => {
            let out = if *null_hex {
                ptr::null_mut()
            } else {
                hex.as_mut_ptr()
            };
            // SAFETY: msg is live; out NULL or POOL_HEX_LEN bytes.
            let st =
                unsafe { ffi::pool_md5_chain(msg.as_ptr().cast(), msg.len(), *iterations, out) };
            if *null_hex || *iterations == 0 {
                prop_assert_eq!(st, pool_status::POOL_EINVAL);
            } else {
                prop_assert_eq!(st, pool_status::POOL_OK);
                prop_assert_eq!(hex_str(&hex), expected_hex(msg, *iterations));
            }
        }
    }
    Ok(())
}

/// Cancels what is left, collects everything, checks the pool is empty.
fn finish(p: *mut pool, model: &mut Model) -> Result<(), TestCaseError> {
    let mut hex: [c_char; ffi::POOL_HEX_LEN] = [0; ffi::POOL_HEX_LEN];
    let ids: Vec<u64> = model
        .jobs
        .iter()
        .filter(|j| matches!(j.state, JobState::Outstanding { .. }))
        .map(|j| j.id)
        .collect();
    for &id in &ids {
        let i = model.by_id[&id];
        if model.jobs[i].iterations == HUGE {
            // SAFETY: a live pool.
            prop_assert_eq!(unsafe { ffi::pool_cancel(p, id) }, pool_status::POOL_OK);
            model.jobs[i].state = JobState::Outstanding { canceled: true };
        }
    }
    for &id in &ids {
        // SAFETY: a live pool and a POOL_HEX_LEN buffer.
        let st = unsafe { ffi::pool_wait(p, id, 30_000, hex.as_mut_ptr()) };
        prop_assert_ne!(st, pool_status::POOL_ETIMEDOUT, "job {} never finished", id);
        collected(
            model,
            id,
            st,
            (st == pool_status::POOL_OK).then(|| hex_str(&hex)),
        )?;
    }
    let mut id = 0u64;
    // SAFETY: a live pool.
    let st = unsafe { ffi::pool_wait_any(p, 0, &mut id, ptr::null_mut()) };
    prop_assert_eq!(st, pool_status::POOL_ENOJOB);
    check_stats(p, model)
}

fn run_case(setup: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut cfg = std::mem::MaybeUninit::<pool_config>::uninit();
    // SAFETY: given the struct's size, pool_config_init_sized fills all of it.
    let mut cfg = unsafe {
        ffi::pool_config_init_sized(cfg.as_mut_ptr(), std::mem::size_of::<pool_config>());
        cfg.assume_init()
    };
    cfg.workers = setup.workers;
    cfg.queue_capacity = setup.queue_capacity;
    let mut p: *mut pool = ptr::null_mut();
    // SAFETY: valid config and out-parameter.
    let st = unsafe { ffi::pool_create(&cfg, &mut p) };
    prop_assert_eq!(st, pool_status::POOL_OK);
    prop_assert!(!p.is_null());
    let mut model = Model {
        jobs: Vec::new(),
        by_id: BTreeMap::new(),
        capacity: if setup.queue_capacity == 0 {
            65536
        } else {
            setup.queue_capacity as usize
        },
        workers: setup.workers,
        last_id: 0,
    };
    let result = ops
        .iter()
        .try_for_each(|op| step(p, &mut model, op))
        .and_then(|()| finish(p, &mut model));
    // SAFETY: p came from pool_create and is not used again.
    let destroyed = unsafe { ffi::pool_destroy(p) };
    result?;
    prop_assert_eq!(destroyed, pool_status::POOL_OK);
    Ok(())
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn ffi_calls_follow_the_model() {
    let cases = env_number("PROPTEST_CASES", 32);
    let max_calls = env_number("FFI_MAX_CALLS", 40) as usize;
    let config = Config {
        cases,
        max_shrink_iters: env_number("FFI_SHRINK_ITERS", 64),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (setup(), prop::collection::vec(op(), 1..=max_calls.max(1)));
    if let Err(e) = runner.run(&strategy, |(setup, ops)| run_case(&setup, &ops)) {
        panic!("{e}");
    }
}
