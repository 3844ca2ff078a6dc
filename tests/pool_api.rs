//! The safe Rust API end to end: real worker processes, real kills.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5pool::{md5_chain, Config, Error, JobId, Pool};

const HELLO_1: &str = "b10a8db164e0754105b7a99be72e3fe5";

fn pool(workers: usize) -> Pool {
    Pool::new(Config {
        workers,
        ..Config::default()
    })
    .expect("pool")
}

#[test]
fn results_match_the_in_process_kernel() {
    let pool = pool(2);
    let messages: Vec<Vec<u8>> = (0..40)
        .map(|i| (0..i * 7).map(|b| (b * 31 + i) as u8).collect())
        .collect();
    let jobs: Vec<(JobId, &Vec<u8>, u64)> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let iterations = 1 + (i as u64 * 97) % 3000;
            (pool.submit(m, iterations).unwrap(), m, iterations)
        })
        .collect();
    for (id, msg, iterations) in jobs {
        assert_eq!(
            pool.wait(id, None).unwrap(),
            md5_chain(msg, iterations).unwrap()
        );
    }
    assert_eq!(md5_chain(b"Hello World", 1).unwrap().as_str(), HELLO_1);
}

#[test]
fn wait_any_collects_every_job_once() {
    let pool = pool(2);
    let mut ids: Vec<JobId> = (0..30).map(|i| pool.submit(b"x", 1 + i).unwrap()).collect();
    let mut seen = Vec::new();
    while let Ok((id, result)) = pool.wait_any(None) {
        let i = ids.iter().position(|&j| j == id).expect("a submitted id");
        assert_eq!(result.unwrap(), md5_chain(b"x", 1 + i as u64).unwrap());
        seen.push(id);
    }
    assert_eq!(pool.wait_any(None).unwrap_err(), Error::NoJob);
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

#[test]
fn argument_errors() {
    let pool = Pool::new(Config {
        workers: 1,
        queue_capacity: 2,
        max_message_bytes: 8,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(pool.submit(b"abc", 0).unwrap_err(), Error::InvalidArgument);
    assert_eq!(pool.submit(&[0u8; 9], 1).unwrap_err(), Error::TooBig);
    let a = pool.submit(&[0u8; 8], 1).unwrap();
    let b = pool.submit(b"", 1).unwrap();
    assert_eq!(pool.submit(b"", 1).unwrap_err(), Error::Full);
    assert_eq!(
        pool.wait(JobId(12345), Some(Duration::ZERO)).unwrap_err(),
        Error::NoJob
    );
    pool.wait(a, None).unwrap();
    pool.wait(b, None).unwrap();
    assert_eq!(pool.wait(a, None).unwrap_err(), Error::NoJob);
    assert_eq!(
        Pool::new(Config {
            queue_capacity: 0,
            ..Config::default()
        })
        .err(),
        Some(Error::InvalidArgument)
    );
    assert_eq!(md5_chain(b"", 0).unwrap_err(), Error::InvalidArgument);
}

#[test]
fn a_killed_worker_is_replaced_and_its_job_rerun() {
    let pool = pool(1);
    let job = pool.submit(b"Hello World", 3_000_000).unwrap();
    let victim = pool.worker_pids().unwrap()[0];
    // Let the job reach the worker, then kill it mid-job.
    let started = Instant::now();
    while pool.stats().unwrap().jobs_running == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: sends a signal to a worker process of this test's pool.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    assert_eq!(
        pool.wait(job, None).unwrap(),
        md5_chain(b"Hello World", 3_000_000).unwrap()
    );
    let stats = pool.stats().unwrap();
    assert!(stats.jobs_retried >= 1, "{stats:?}");
    assert!(stats.worker_restarts >= 1, "{stats:?}");
    assert!(!pool.worker_pids().unwrap().contains(&victim));
}

#[test]
fn cancel_a_running_job_and_time_out_a_wait() {
    let pool = pool(1);
    let endless = pool.submit(b"x", u64::MAX).unwrap();
    let queued = pool.submit(b"x", 1).unwrap();
    assert_eq!(
        pool.wait(endless, Some(Duration::from_millis(20)))
            .unwrap_err(),
        Error::TimedOut
    );
    pool.cancel(endless).unwrap();
    assert_eq!(pool.wait(endless, None).unwrap_err(), Error::Canceled);
    assert_eq!(
        pool.wait(queued, None).unwrap(),
        md5_chain(b"x", 1).unwrap()
    );
    assert_eq!(pool.cancel(endless).unwrap_err(), Error::NoJob);
}

#[test]
fn job_timeout_kills_the_worker() {
    let config = Config {
        workers: 1,
        job_timeout: Some(Duration::from_millis(100)),
        ..Config::default()
    };
    let pool = Pool::new(config).unwrap();
    let endless = pool.submit(b"x", u64::MAX).unwrap();
    assert_eq!(pool.wait(endless, None).unwrap_err(), Error::JobTimeout);
    let next = pool.submit(b"x", 2).unwrap();
    assert_eq!(pool.wait(next, None).unwrap(), md5_chain(b"x", 2).unwrap());
}

#[test]
fn worker_init_runs_in_each_worker_before_jobs() {
    // Counts in memory shared across fork: a MAP_SHARED page.
    // SAFETY: an anonymous shared mapping of one page, unmapped at the end.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let counter = page as usize;
    let init = Arc::new(move || {
        // SAFETY: the shared page outlives the pool; AtomicUsize has the layout of usize.
        unsafe { &*(counter as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
    });
    let pool = Pool::new(Config {
        workers: 2,
        worker_init: Some(init),
        ..Config::default()
    })
    .unwrap();
    let jobs: Vec<JobId> = (0..6).map(|_| pool.submit(b"x", 10).unwrap()).collect();
    for job in jobs {
        pool.wait(job, None).unwrap();
    }
    drop(pool);
    // SAFETY: the page is still mapped; AtomicUsize has the layout of usize.
    let starts = unsafe { &*(counter as *const AtomicUsize) }.load(Ordering::SeqCst);
    assert_eq!(starts, 2);
    // SAFETY: unmapping the page mapped above; the pool's processes are gone.
    unsafe { libc::munmap(page, 4096) };
}

#[test]
fn drop_reaps_everything_even_with_a_busy_worker() {
    let pool = pool(2);
    let _endless = pool.submit(b"x", u64::MAX).unwrap();
    let pids = pool.worker_pids().unwrap();
    let started = Instant::now();
    drop(pool);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for pid in pids {
        // SAFETY: probing with signal 0; ESRCH means the process is gone (and reaped).
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1, "worker {pid} survived");
    }
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_killed_fork_server_is_replaced_with_its_workers() {
    let pool = pool(2);
    let old_workers = pool.worker_pids().unwrap();
    let server = parent_of(old_workers[0]);
    assert_ne!(server, std::process::id() as i32);
    let job = pool.submit(b"Hello World", 2_000_000).unwrap();
    // SAFETY: kills the pool's own fork server; its workers die with it.
    assert_eq!(unsafe { libc::kill(server, libc::SIGKILL) }, 0);
    assert_eq!(
        pool.wait(job, None).unwrap(),
        md5_chain(b"Hello World", 2_000_000).unwrap()
    );
    let started = Instant::now();
    while pool.worker_pids().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let new_workers = pool.worker_pids().unwrap();
    assert_eq!(new_workers.len(), 2);
    assert!(new_workers.iter().all(|pid| !old_workers.contains(pid)));
    assert_ne!(parent_of(new_workers[0]), server);
}

#[test]
fn pool_processes_are_out_of_the_hosts_process_group() {
    // A Ctrl-C at the host's terminal (SIGINT to its process group) must not kill workers.
    let pool = pool(1);
    let worker = pool.worker_pids().unwrap()[0];
    // SAFETY: getpgid has no memory arguments.
    let (host_group, worker_group) = unsafe { (libc::getpgid(0), libc::getpgid(worker)) };
    assert_ne!(host_group, worker_group);
    assert_eq!(
        worker_group,
        parent_of(worker),
        "the fork server leads the workers' group"
    );
}

/// pool_wait on a short job reads the worker's channel itself: what only the
/// dispatcher acts on (recycling a used-up worker, timing jobs) must still happen.
#[test]
fn waiters_reading_results_themselves_leave_the_dispatcher_its_work() {
    let pool = Pool::new(Config {
        workers: 1,
        max_jobs_per_worker: Some(2),
        job_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    })
    .unwrap();
    let limit = Some(Duration::from_secs(10));
    for i in 1..=10 {
        let job = pool.submit(b"x", i).unwrap();
        assert_eq!(pool.wait(job, limit).unwrap(), md5_chain(b"x", i).unwrap());
    }
    // Jobs 3, 5, 7 and 9 each needed a replacement worker.
    assert!(pool.stats().unwrap().worker_restarts >= 4);
    let endless = pool.submit(b"x", u64::MAX).unwrap();
    assert_eq!(pool.wait(endless, limit).unwrap_err(), Error::JobTimeout);
}
