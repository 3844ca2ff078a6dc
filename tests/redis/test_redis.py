#!/usr/bin/env python3
"""The md5pool Redis module (c_examples/redis/) against a private redis-server, in both
completion modes (Redis's event loop, and the wait thread for Redis before 7.0):

  1. MD5POOL.CHAIN and MD5POOL.LOCAL equal pool_md5_chain (called through ctypes) for a
     spread of messages (binary ones included, also through redis-cli -x) and iterations;
  2. bad arguments get errors (commands and module arguments); MD5POOL.CHAIN refuses to
     block inside MULTI;
  3. -BUSY when queue_capacity jobs are outstanding; a client killed (SIGKILL of redis-cli),
     one disconnected and one unblocked with CLIENT UNBLOCK leave no job behind;
     job_timeout_ms gives -ERR POOL_EJOBTIMEOUT;
  4. workers killed with SIGKILL under load: every reply is the right digest or
     -ERR POOL_EWORKER, and the pool recovers;
  5. MODULE UNLOAD and SHUTDOWN leave no process of the pool behind.

    python3 tests/redis/test_redis.py --module build/redis/md5pool_redis.so --lib build/lib/libmd5pool.so
"""
import argparse
import ctypes
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redisutil import ReplyError, Server, alive, children, descendants, nice  # noqa: E402

MODES = {"event_loop": [], "wait_thread": ["wait_thread", "yes"]}
LONG_JOB = 400_000_000  # ~45 s of one core: still running whenever a test needs a busy worker


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Expected:
    """Expected digests from the library's own in-process kernel, pool_md5_chain."""

    def __init__(self, lib):
        self.lib = ctypes.CDLL(lib)
        self.lib.pool_md5_chain.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_char_p]
        self.cache = {}

    def __call__(self, msg, iterations):
        key = (msg, iterations)
        if key not in self.cache:
            out = ctypes.create_string_buffer(33)
            status = self.lib.pool_md5_chain(msg, len(msg), iterations, out)
            check(status == 0, "pool_md5_chain returned %d" % status)
            self.cache[key] = out.value.decode()
        return self.cache[key]


def outstanding(stats):
    return (stats["jobs_queued"] + stats["jobs_running"] + stats["jobs_ready"]
            + stats["clients_waiting"] + stats["jobs_abandoned"])


# ------------------------------------------------------------------ 1. results
def test_results(srv, expected, mode):
    rng = random.Random(15)
    messages = [b"", b"a", b"Hello World", b"\x00", b"\x00\xff\r\n*1\r\n$3\r\nbin\x00",
                bytes(range(256)), bytes(rng.getrandbits(8) for _ in range(4096)), b"x" * 100_000]
    cases = [(m, n) for m in messages for n in (1, 2, 64, 1000, 20_000)]
    cases += [(b"Hello World", 1_000_000), (b"\x00binary\xff", 300_000)]
    # Four connections, each pipelining its share, so many jobs are in flight at once.
    conns = [srv.client() for _ in range(4)]
    for i, (msg, n) in enumerate(cases):
        conns[i % 4].send("MD5POOL.CHAIN", n, msg)
    for i, (msg, n) in enumerate(cases):
        got = conns[i % 4].read()
        check(got == expected(msg, n), "CHAIN %d %r...: %r, expected %s" % (n, msg[:16], got, expected(msg, n)))
    check(expected(b"Hello World", 1_000_000) == "1e4110cf294414bc2ac346ad274a7af3", "the reference digest")
    c = conns[0]
    for msg, n in cases[::7]:
        got = c.call("MD5POOL.LOCAL", n, msg)
        check(got == expected(msg, n), "LOCAL %d %r: %r" % (n, msg[:16], got))
    # redis-cli: -x takes the last argument from stdin, bytes as they are.
    msg = b"\x00\x01 binary\r\nthrough redis-cli\xff"
    out = subprocess.run(["redis-cli", "-s", srv.sock, "-x", "MD5POOL.CHAIN", "777"], input=msg,
                         stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    check(out == expected(msg, 777), "redis-cli -x: %r" % out)
    stats = srv.stats()
    check(stats["completion"] == mode, "completion %r in mode %s" % (stats["completion"], mode))
    check(stats["jobs_completed"] >= len(cases) + 1 and outstanding(stats) == 0, "stats after results: %s" % stats)
    for conn in conns:
        conn.close()
    return len(cases) + 1


# ------------------------------------------------------------------ 2. arguments
def test_bad_arguments(srv):
    c = srv.client()
    for cmd in ("MD5POOL.CHAIN", "MD5POOL.LOCAL"):
        for args in ([], ["10"], ["10", "a", "b"]):
            got = c.call(cmd, *args)
            check(isinstance(got, ReplyError) and "wrong number of arguments" in got, "%s %s: %r" % (cmd, args, got))
        for bad in ("abc", "0", "-1", "1.5", "", "99999999999999999999"):
            got = c.call(cmd, bad, "msg")
            check(got == "ERR iterations must be a positive integer", "%s %r: %r" % (cmd, bad, got))
    got = c.call("MD5POOL.STATS", "extra")
    check(isinstance(got, ReplyError) and "wrong number of arguments" in got, "STATS extra: %r" % got)
    got = c.call("MD5POOL.CHAIN", 1, b"m" * (1024 * 1024 + 1))  # past the default max_message_bytes
    check(isinstance(got, ReplyError) and got.startswith("ERR POOL_ETOOBIG "), "a too long message: %r" % got)
    c.send("MULTI")
    c.send("MD5POOL.CHAIN", 5, "in a transaction")
    c.send("EXEC")
    replies = [c.read() for _ in range(3)]
    check(replies[0] == "OK" and isinstance(replies[2], list) and isinstance(replies[2][0], ReplyError)
          and "MULTI" in replies[2][0], "CHAIN in MULTI: %r" % replies)
    c.close()


# ------------------------------------------------------------------ 3. busy, clients leaving
def test_busy_and_leaving_clients(module, expected, mode_args):
    with Server(module, ["workers", 1, "queue_capacity", 3] + mode_args) as srv:
        killed = subprocess.Popen(["redis-cli", "-s", srv.sock, "MD5POOL.CHAIN", str(LONG_JOB), "killed"],
                                  stdout=subprocess.DEVNULL)
        closed = srv.client()
        closed.send("MD5POOL.CHAIN", LONG_JOB, "closed")
        unblocked = srv.client()
        unblocked_id = unblocked.call("CLIENT", "ID")
        unblocked.send("MD5POOL.CHAIN", LONG_JOB, "unblocked")
        check(wait_for(lambda: srv.stats()["clients_waiting"] == 3, 10), "3 clients waiting: %s" % srv.stats())
        admin = srv.client()
        got = admin.call("MD5POOL.CHAIN", 1, "one too many")
        check(got == "BUSY md5pool queue full", "a 4th job with queue_capacity 3: %r" % got)
        check(admin.call("PING") == "PONG", "Redis answers while 3 jobs run")

        killed.send_signal(signal.SIGKILL)
        killed.wait()
        closed.close()
        check(admin.call("CLIENT", "UNBLOCK", unblocked_id, "TIMEOUT") == 1, "CLIENT UNBLOCK")
        check(unblocked.read() is None, "the unblocked client gets a null reply")
        unblocked.close()
        # Canceled: the busy worker drops its job at once, so nothing is left within a second.
        check(wait_for(lambda: outstanding(srv.stats()) == 0, 3), "jobs left behind: %s" % srv.stats())
        stats = srv.stats()
        check(stats["jobs_failed"] == 3 and stats["jobs_completed"] == 0, "3 canceled jobs: %s" % stats)
        got = admin.call("MD5POOL.CHAIN", 1000, "after")
        check(got == expected(b"after", 1000), "a job after the cancels: %r" % got)
        admin.close()


def test_job_timeout(module, expected, mode_args):
    with Server(module, ["workers", 1, "job_timeout_ms", 300] + mode_args) as srv:
        c = srv.client()
        got = c.call("MD5POOL.CHAIN", LONG_JOB, "too long")
        check(isinstance(got, ReplyError) and got.startswith("ERR POOL_EJOBTIMEOUT "), "job_timeout_ms: %r" % got)
        got = c.call("MD5POOL.CHAIN", 1000, "in time")
        check(got == expected(b"in time", 1000), "a job after a timeout: %r" % got)
        c.close()


# ------------------------------------------------------------------ 4. workers killed
def test_worker_kills(module, expected, mode_args):
    with Server(module, ["workers", 2, "max_attempts", 1] + mode_args) as srv:
        check(wait_for(lambda: len(descendants(srv.pid)) >= 3, 10), "fork server + 2 workers")
        stop = threading.Event()
        kills = []

        def killer():
            rng = random.Random(7)
            while not stop.wait(0.05):
                workers = [w for s in children(srv.pid) for w in children(s)]
                if workers:
                    victim = rng.choice(workers)
                    try:
                        os.kill(victim, signal.SIGKILL)
                        kills.append(victim)
                    except ProcessLookupError:
                        pass

        conns = [srv.client() for _ in range(8)]
        sent = [[] for _ in conns]
        for i, conn in enumerate(conns):
            for j in range(40):
                msg = b"client %d job %d \x00" % (i, j)
                n = 20_000 + 1000 * j
                conn.send("MD5POOL.CHAIN", n, msg)
                sent[i].append((msg, n))
        k = threading.Thread(target=killer)
        k.start()
        ok = eworker = 0
        try:
            for conn, jobs in zip(conns, sent):
                for msg, n in jobs:
                    got = conn.read()
                    if got == expected(msg, n):
                        ok += 1
                    elif isinstance(got, ReplyError) and got.startswith("ERR POOL_EWORKER "):
                        eworker += 1
                    else:
                        raise Failure("CHAIN %d %r under kills: %r" % (n, msg, got))
        finally:
            stop.set()
            k.join()
        check(len(kills) > 0, "no worker was killed")
        check(wait_for(lambda: srv.stats()["workers_alive"] == 2 and outstanding(srv.stats()) == 0, 10),
              "after the kills: %s" % srv.stats())
        # Workers, replacements included, run the default worker_nice (10) levels below Redis.
        servers = children(srv.pid)
        workers = [w for s in servers for w in children(s)]
        below = min(19, nice(srv.pid) + 10)
        check([nice(p) for p in servers] == [nice(srv.pid)] and [nice(w) for w in workers] == [below, below],
              "nice values: redis %d, fork server %s, workers %s"
              % (nice(srv.pid), [nice(p) for p in servers], [nice(w) for w in workers]))
        got = conns[0].call("MD5POOL.CHAIN", 1000, "after the kills")
        check(got == expected(b"after the kills", 1000), "a job after the kills: %r" % got)
        for conn in conns:
            conn.close()
        return ok, eworker, len(kills)


# ------------------------------------------------------------------ 5. unload, shutdown
def test_unload(srv, module, mode_args, expected):
    pool_procs = descendants(srv.pid)
    check(len(pool_procs) >= 2, "the pool's processes: %s" % pool_procs)
    c = srv.client()
    waiting = srv.client()
    waiting_id = waiting.call("CLIENT", "ID")
    waiting.send("MD5POOL.CHAIN", LONG_JOB, "waits through an unload")
    check(wait_for(lambda: srv.stats()["clients_waiting"] == 1, 5), "a client waits")
    got = c.call("MODULE", "UNLOAD", "md5pool")
    check(isinstance(got, ReplyError), "MODULE UNLOAD while a client waits: %r" % got)
    check(c.call("CLIENT", "UNBLOCK", waiting_id) == 1 and waiting.read() is None, "unblocking the waiting client")
    waiting.close()
    got = c.call("MODULE", "UNLOAD", "md5pool")
    check(got == "OK", "MODULE UNLOAD: %r" % got)
    check(wait_for(lambda: not any(alive(p) for p in pool_procs), 5),
          "alive after MODULE UNLOAD: %s" % [p for p in pool_procs if alive(p)])
    check(c.call("PING") == "PONG", "Redis serves after the unload")
    for bad, why in ((["workers", "abc"], "bad value 'abc' for workers"),
                     (["worker_nice", "20"], "bad value '20' for worker_nice"),
                     (["wait_thread", "maybe"], "bad value 'maybe' for wait_thread"),
                     (["bogus", "1"], "unknown module argument 'bogus'"),
                     (["workers", "2", "max_attempts"], "module argument 'max_attempts' has no value")):
        got = c.call("MODULE", "LOAD", os.path.abspath(module), *bad)
        check(isinstance(got, ReplyError) and why in srv.log(), "MODULE LOAD %s: %r" % (bad, got))
        check(descendants(srv.pid) == [], "a process started by a failed load: %s" % descendants(srv.pid))
    got = c.call("MODULE", "LOAD", os.path.abspath(module), "workers", 2, *mode_args)
    check(got == "OK", "MODULE LOAD again: %r" % got)
    check(c.call("MD5POOL.CHAIN", 10, "reloaded") == expected(b"reloaded", 10), "CHAIN after a reload")
    c.close()


def become_subreaper():
    """Orphans of redis-server come to this process instead of init, where a test sees them."""
    libc = ctypes.CDLL(None, use_errno=True)
    check(libc.prctl(36, 1, 0, 0, 0) == 0, "prctl(PR_SET_CHILD_SUBREAPER)")  # 36: PR_SET_CHILD_SUBREAPER


def reap_orphans():
    """Reaps children that were reparented here; returns their pids."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)


def test_shutdown(srv):
    """At SHUTDOWN the module destroys the pool, which reaps every process it started: none
    is left, not even as an orphan (a zombie or a process reparented to this subreaper)."""
    become_subreaper()
    pool_procs = descendants(srv.pid)
    check(len(pool_procs) >= 2, "the pool's processes: %s" % pool_procs)
    busy = srv.client()
    busy.send("MD5POOL.CHAIN", LONG_JOB, "running at shutdown")
    check(wait_for(lambda: srv.stats()["jobs_running"] == 1, 5), "a job runs at shutdown")
    rc = srv.shutdown()
    busy.close()
    check(rc == 0, "redis-server exit status %d" % rc)
    left = [p for p in pool_procs if os.path.exists("/proc/%d" % p)]
    orphans = reap_orphans()
    check(not left, "md5pool processes left after SHUTDOWN: %s (orphans reaped here: %s)" % (left, orphans))
    check("md5pool" in srv.log(), "the module's load line in the log")


def run_mode(mode, module, expected):
    mode_args = MODES[mode]
    t0 = time.monotonic()
    with Server(module, ["workers", 2] + mode_args) as srv:
        n = test_results(srv, expected, mode)
        test_bad_arguments(srv)
        if mode == "event_loop":
            test_unload(srv, module, mode_args, expected)
        test_shutdown(srv)
    test_busy_and_leaving_clients(module, expected, mode_args)
    test_job_timeout(module, expected, mode_args)
    ok, eworker, kills = test_worker_kills(module, expected, mode_args)
    print("redis module, %s: %d digests right; arguments, -BUSY, 3 clients leaving, job timeout, unload/shutdown ok; "
          "%d workers killed under load: %d right digests, %d POOL_EWORKER (%.1f s)"
          % (mode, n, kills, ok, eworker, time.monotonic() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--mode", choices=sorted(MODES), action="append")
    args = ap.parse_args()
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing:
        print("FAIL: %s not found: apt-get install redis-server redis-tools (.ci/run does)" % " and ".join(missing),
              file=sys.stderr)
        return 1
    expected = Expected(args.lib)
    try:
        for mode in args.mode or sorted(MODES):
            run_mode(mode, args.module, expected)
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    print("test-redis: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
