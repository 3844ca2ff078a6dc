#!/usr/bin/env python3
"""A real foreign host. CPython (standard library only) loads
build/lib/libmd5pool.so with ctypes and:
  - runs the seed's experiment, 100 x md5chain("Hello World", N), from several Python
    threads (N small by default; --full: N = 1,000,000, checked against the known vector);
  - kills a worker during a job: the job is re-run and answered;
  - keeps the interpreter's own machinery busy meanwhile (a SIGCHLD handler, the
    SIGINT handler, subprocess.run children) without disturbing the pool;
  - Ctrl-C: a main thread waiting with the documented pattern (pool_wait with a 100 ms
    timeout in a loop) gets KeyboardInterrupt within 0.5 s of a SIGINT.
Exit status 0 on success.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.environ.get("MD5POOL_LIB") or os.path.join(ROOT, "build", "lib", "libmd5pool.so")
KNOWN_1M = "1e4110cf294414bc2ac346ad274a7af3"  # md5chain("Hello World", 1000000)

POOL_OK, POOL_EINVAL, POOL_ETIMEDOUT, POOL_ENOJOB = 0, 1, 4, 5
POOL_EWORKER, POOL_ECANCELED = 6, 8
HEX_LEN = 33


class PoolConfig(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("workers", ctypes.c_uint32),
        ("queue_capacity", ctypes.c_uint32),
        ("max_attempts", ctypes.c_uint32),
        ("job_timeout_ms", ctypes.c_uint32),
        ("max_jobs_per_worker", ctypes.c_uint32),
        ("max_message_bytes", ctypes.c_uint32),
        ("worker_init", ctypes.c_void_p),
        ("worker_init_arg", ctypes.c_void_p),
        ("log", ctypes.c_void_p),
        ("log_arg", ctypes.c_void_p),
        ("max_queued_bytes", ctypes.c_uint64),
    ]


class PoolStats(ctypes.Structure):
    _fields_ = [
        ("workers_configured", ctypes.c_uint32),
        ("workers_alive", ctypes.c_uint32),
        ("jobs_queued", ctypes.c_uint64),
        ("jobs_running", ctypes.c_uint64),
        ("jobs_ready", ctypes.c_uint64),
        ("jobs_completed", ctypes.c_uint64),
        ("jobs_failed", ctypes.c_uint64),
        ("jobs_retried", ctypes.c_uint64),
        ("worker_restarts", ctypes.c_uint64),
        ("queued_bytes", ctypes.c_uint64),
    ]


def load():
    lib = ctypes.CDLL(LIB)
    P = ctypes.c_void_p
    st = ctypes.c_int
    # ctypes does not see the header's macros: call the sized entry points with the
    # size of the structs declared here, as the macros do (pool_config_init and
    # pool_stats_get fill only the 1.0 layout).
    lib.pool_config_init_sized.argtypes = [ctypes.POINTER(PoolConfig), ctypes.c_size_t]
    lib.pool_config_init_sized.restype = None
    lib.pool_create.argtypes = [ctypes.POINTER(PoolConfig), ctypes.POINTER(P)]
    lib.pool_create.restype = st
    lib.pool_submit.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64,
                                ctypes.POINTER(ctypes.c_uint64)]
    lib.pool_submit.restype = st
    lib.pool_wait.argtypes = [P, ctypes.c_uint64, ctypes.c_int64, ctypes.c_char_p]
    lib.pool_wait.restype = st
    lib.pool_wait_any.argtypes = [P, ctypes.c_int64, ctypes.POINTER(ctypes.c_uint64),
                                  ctypes.c_char_p]
    lib.pool_wait_any.restype = st
    lib.pool_cancel.argtypes = [P, ctypes.c_uint64]
    lib.pool_cancel.restype = st
    lib.pool_fd.argtypes = [P]
    lib.pool_fd.restype = ctypes.c_int
    lib.pool_stats_get_sized.argtypes = [P, ctypes.POINTER(PoolStats), ctypes.c_size_t]
    lib.pool_stats_get_sized.restype = st
    lib.pool_worker_pids.argtypes = [P, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                     ctypes.POINTER(ctypes.c_size_t)]
    lib.pool_worker_pids.restype = st
    lib.pool_destroy.argtypes = [P]
    lib.pool_destroy.restype = st
    lib.pool_md5_chain.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64,
                                   ctypes.c_char_p]
    lib.pool_md5_chain.restype = st
    lib.pool_strerror.argtypes = [ctypes.c_int]
    lib.pool_strerror.restype = ctypes.c_char_p
    lib.pool_version.argtypes = []
    lib.pool_version.restype = ctypes.c_char_p
    return lib


lib = load()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_status(got, want, what):
    if got != want:
        raise AssertionError("%s: %d (%s), expected %d (%s)" % (
            what, got, lib.pool_strerror(got).decode(), want, lib.pool_strerror(want).decode()))


def md5_chain(msg, n):
    out = ctypes.create_string_buffer(HEX_LEN)
    check_status(lib.pool_md5_chain(msg, len(msg), n, out), POOL_OK, "pool_md5_chain")
    return out.value.decode()


class Pool:
    def __init__(self, workers):
        cfg = PoolConfig()
        lib.pool_config_init_sized(ctypes.byref(cfg), ctypes.sizeof(cfg))
        check(cfg.size == ctypes.sizeof(PoolConfig), "pool_config size %d" % cfg.size)
        cfg.workers = workers
        self.p = ctypes.c_void_p()
        check_status(lib.pool_create(ctypes.byref(cfg), ctypes.byref(self.p)), POOL_OK,
                     "pool_create")

    def submit(self, msg, n):
        job = ctypes.c_uint64()
        check_status(lib.pool_submit(self.p, msg, len(msg), n, ctypes.byref(job)), POOL_OK,
                     "pool_submit")
        return job.value

    def wait(self, job, timeout_ms):
        out = ctypes.create_string_buffer(HEX_LEN)
        status = lib.pool_wait(self.p, job, timeout_ms, out)
        return status, out.value.decode()

    def wait_interruptible(self, job):
        """The documented pattern: finite waits in a loop, so Python can run its signal
        handlers (KeyboardInterrupt) between them."""
        while True:
            status, hex_ = self.wait(job, 100)
            if status != POOL_ETIMEDOUT:
                return status, hex_

    def pids(self):
        arr = (ctypes.c_int32 * 64)()
        n = ctypes.c_size_t()
        check_status(lib.pool_worker_pids(self.p, arr, 64, ctypes.byref(n)), POOL_OK,
                     "pool_worker_pids")
        return list(arr[:min(n.value, 64)])

    def stats(self):
        s = PoolStats()
        check_status(lib.pool_stats_get_sized(self.p, ctypes.byref(s), ctypes.sizeof(s)),
                     POOL_OK, "pool_stats_get_sized")
        return s

    def destroy(self):
        check_status(lib.pool_destroy(self.p), POOL_OK, "pool_destroy")
        self.p = None


def children_of(pid):
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            n += 1
    return n


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def timed(name, fn):
    t0 = time.monotonic()
    fn()
    print("%-40s ok  %.2fs" % (name, time.monotonic() - t0), flush=True)


def seed_experiment(pool, n, threads=4, jobs=100):
    """100 x md5chain("Hello World", n), submitted and collected from several threads."""
    want = KNOWN_1M if n == 1000000 else md5_chain(b"Hello World", n)
    if n == 1000000:
        check(md5_chain(b"Hello World", n) == KNOWN_1M, "pool_md5_chain differs from the vector")
    results, errors = [], []
    lock = threading.Lock()

    def worker(count):
        try:
            ids = [pool.submit(b"Hello World", n) for _ in range(count)]
            for job in ids:
                status, hex_ = pool.wait(job, -1)
                with lock:
                    results.append((status, hex_))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(jobs // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    # The interpreter keeps doing its own things meanwhile: children through subprocess.
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True)
        check(r.returncode == 0 and r.stdout == b"child\n", "subprocess.run child failed")
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    check(len(results) == jobs, "%d results" % len(results))
    for status, hex_ in results:
        check_status(status, POOL_OK, "seed job")
        check(hex_ == want, "seed job gave %s, expected %s" % (hex_, want))


def wait_replaced(pool, before):
    deadline = time.monotonic() + 10
    while True:
        now = pool.pids()
        if len(now) == len(before) and not set(now) & set(before):
            return now
        check(time.monotonic() < deadline, "workers were not replaced: %s" % now)
        time.sleep(0.005)


def kill_a_worker(pool, n):
    """One worker of the shared pool killed while 8 jobs run: all answered. Then a
    one-worker pool whose only worker dies during a job: re-run once, answered."""
    want = md5_chain(b"killed", n)
    jobs = [pool.submit(b"killed", n) for _ in range(8)]
    deadline = time.monotonic() + 10
    while pool.stats().jobs_running < 1:
        check(time.monotonic() < deadline, "the jobs never started")
        time.sleep(0.002)
    victim = pool.pids()[0]
    restarts = pool.stats().worker_restarts
    os.kill(victim, signal.SIGKILL)
    for job in jobs:
        status, hex_ = pool.wait(job, 60000)
        check_status(status, POOL_OK, "job while a worker was killed")
        check(hex_ == want, "job while a worker was killed: %s, expected %s" % (hex_, want))
    deadline = time.monotonic() + 10
    while victim in pool.pids() or len(pool.pids()) != 4:
        check(time.monotonic() < deadline, "the killed worker was not replaced")
        time.sleep(0.005)
    check(pool.stats().worker_restarts >= restarts + 1, "worker_restarts")
    check(children_of(os.getpid()) == 1, "the host has %d children" % children_of(os.getpid()))

    single = Pool(workers=1)
    job = single.submit(b"killed", n)
    deadline = time.monotonic() + 10
    while single.stats().jobs_running < 1:
        check(time.monotonic() < deadline, "the job never started")
        time.sleep(0.002)
    before = single.pids()
    os.kill(before[0], signal.SIGKILL)
    status, hex_ = single.wait(job, 60000)
    check_status(status, POOL_OK, "job of a killed worker")
    check(hex_ == want, "job of a killed worker: %s, expected %s" % (hex_, want))
    check(single.stats().jobs_retried == 1, "jobs_retried %d" % single.stats().jobs_retried)
    wait_replaced(single, before)
    single.destroy()


def ctrl_c(pool):
    """A main thread in the 100 ms wait loop gets KeyboardInterrupt promptly."""
    check(signal.getsignal(signal.SIGINT) is signal.default_int_handler,
          "the pool changed Python's SIGINT handler")
    job = pool.submit(b"interrupt me", 2_000_000_000)  # runs for minutes
    sent = []

    def press_ctrl_c():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, press_ctrl_c)
    timer.start()
    try:
        pool.wait_interruptible(job)
        raise AssertionError("the wait loop ended without KeyboardInterrupt")
    except KeyboardInterrupt:
        delay = time.monotonic() - sent[0]
    timer.join()
    print("  KeyboardInterrupt %.3f s after SIGINT" % delay)
    check(delay < 0.5, "KeyboardInterrupt came %.3f s after SIGINT" % delay)
    check_status(lib.pool_cancel(pool.p, job), POOL_OK, "pool_cancel")
    status, _ = pool.wait(job, 10000)
    check_status(status, POOL_ECANCELED, "canceled job")


def main():
    full = "--full" in sys.argv[1:]
    n = 1_000_000 if full else 20_000
    print("libmd5pool %s via ctypes, N = %d" % (lib.pool_version().decode(), n), flush=True)
    check(lib.pool_strerror(999) is not None, "pool_strerror(999)")
    check(lib.pool_strerror(POOL_OK) != lib.pool_strerror(POOL_EINVAL), "pool_strerror texts")
    check(md5_chain(b"Hello World", 1) == "b10a8db164e0754105b7a99be72e3fe5", "md5 chain x1")

    # The interpreter's child handling: a SIGCHLD handler of its own (runs in the main
    # thread between bytecodes) while the pool's workers die and are replaced.
    sigchld = []
    signal.signal(signal.SIGCHLD, lambda signum, frame: sigchld.append(signum))
    host_children_before = children_of(os.getpid())

    pool = Pool(workers=4)
    pids = pool.pids()
    check(len(pids) == 4, "%d workers" % len(pids))
    timed("seed experiment (100 jobs, 4 threads)", lambda: seed_experiment(pool, n))
    timed("kill a worker during jobs", lambda: kill_a_worker(pool, 5_000_000 if full else 500_000))
    timed("seed experiment again", lambda: seed_experiment(pool, n, threads=5))
    timed("Ctrl-C during a wait loop", lambda: ctrl_c(pool))
    timed("after the interrupt", lambda: seed_experiment(pool, max(1, n // 10), threads=2, jobs=10))
    with open("/proc/%d/stat" % pool.pids()[0]) as f:
        fork_server = int(f.read().rsplit(")", 1)[1].split()[1])
    check(fork_server != os.getpid(), "workers are children of the host")
    pool.destroy()
    deadline = time.monotonic() + 3
    while alive(fork_server):
        check(time.monotonic() < deadline, "the fork server outlived pool_destroy")
        time.sleep(0.01)
    check(children_of(os.getpid()) == host_children_before, "children left after destroy")
    check(len(sigchld) >= 3, "Python's SIGCHLD handler ran %d times" % len(sigchld))
    print("ctypes host: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
