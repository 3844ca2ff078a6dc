#!/usr/bin/env python3
"""Python 3 stdlib baselines for `make bench` (one measurement per invocation, one JSON line).

    py_bench.py kernel      [--iterations N]                  hashlib md5chain once, this thread
    py_bench.py pool        [--jobs N] [--iterations N]       the seed's experiment on multiprocessing.Pool
    py_bench.py executor    [--jobs N] [--iterations N]       ... on concurrent.futures.ProcessPoolExecutor
    py_bench.py rate_pool   [--jobs N] [--iterations N]       jobs/s: Pool.apply_async of every job, then get
    py_bench.py rate_executor [--jobs N] [--iterations N]     jobs/s: ProcessPoolExecutor.submit, then result
    py_bench.py latency_pool  [--samples N]                   apply_async(...).get() one at a time
    py_bench.py latency_executor [--samples N]                submit(...).result() one at a time
--workers N (0 = the CPUs this process may use). The seed-experiment modes time pool start-up
to shutdown (like the C pool's row); rate and latency modes time a warmed-up pool only.
"""
import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_python import DIGEST_1M, MESSAGE, md5chain  # noqa: E402


def job(iterations):
    return md5chain(MESSAGE, iterations)


def expected(iterations):
    return DIGEST_1M if iterations == 1_000_000 else md5chain(MESSAGE, iterations)


def check(results, want, n):
    bad = sum(1 for r in results if r != want)
    if len(results) != n or bad:
        raise SystemExit(f"py_bench: {bad} wrong of {len(results)} results (want {want})")


def make_pool(kind, workers):
    if kind == "pool":
        return multiprocessing.Pool(workers)
    return concurrent.futures.ProcessPoolExecutor(workers)


def submit(kind, pool, iterations):
    if kind == "pool":
        return pool.apply_async(job, (iterations,))
    return pool.submit(job, iterations)


def collect(kind, handle):
    return handle.get() if kind == "pool" else handle.result()


def close(kind, pool):
    if kind == "pool":
        pool.close()
        pool.join()
    else:
        pool.shutdown(wait=True)


def warm(kind, pool, workers):
    hs = [submit(kind, pool, 1) for _ in range(workers * 4)]
    for h in hs:
        collect(kind, h)


def mode_kernel(a):
    want = expected(a.iterations)
    w0, c0 = time.perf_counter(), time.thread_time()
    got = md5chain(MESSAGE, a.iterations)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    check([got], want, 1)
    return {"wall": wall, "cpu": cpu, "hex": got}


def mode_seed(kind, a):
    want = expected(a.iterations)
    t0 = time.perf_counter()
    pool = make_pool(kind, a.workers)
    hs = [submit(kind, pool, a.iterations) for _ in range(a.jobs)]
    results = [collect(kind, h) for h in hs]
    close(kind, pool)
    wall = time.perf_counter() - t0
    check(results, want, a.jobs)
    return {"wall": wall, "jobs": a.jobs, "iterations": a.iterations}


def mode_rate(kind, a):
    want = expected(a.iterations)
    pool = make_pool(kind, a.workers)
    warm(kind, pool, a.workers)
    t0 = time.perf_counter()
    hs = [submit(kind, pool, a.iterations) for _ in range(a.jobs)]
    results = [collect(kind, h) for h in hs]
    wall = time.perf_counter() - t0
    close(kind, pool)
    check(results, want, a.jobs)
    return {"wall": wall, "jobs": a.jobs, "iterations": a.iterations, "jobs_per_s": a.jobs / wall}


def mode_latency(kind, a):
    want = expected(a.iterations)
    pool = make_pool(kind, a.workers)
    warm(kind, pool, a.workers)
    lat = []
    for k in range(a.warmup + a.samples):
        t0 = time.perf_counter()
        got = collect(kind, submit(kind, pool, a.iterations))
        dt = time.perf_counter() - t0
        if got != want:
            raise SystemExit(f"py_bench: wrong result {got}")
        if k >= a.warmup:
            lat.append(dt)
    close(kind, pool)
    lat.sort()
    n = len(lat)

    def q(p):
        return lat[min(n - 1, int(p * (n - 1) + 0.5))] * 1e6

    return {"samples": n, "p50_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99),
            "min_us": lat[0] * 1e6, "max_us": lat[-1] * 1e6, "mean_us": sum(lat) / n * 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["kernel", "pool", "executor", "rate_pool", "rate_executor",
                                     "latency_pool", "latency_executor"])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    a = ap.parse_args()
    a.workers = a.workers or len(os.sched_getaffinity(0))
    if a.iterations is None:
        a.iterations = 1 if a.mode.startswith(("rate", "latency")) else 1_000_000
    m = a.mode
    if m == "kernel":
        out = mode_kernel(a)
    elif m in ("pool", "executor"):
        out = mode_seed(m, a)
    elif m.startswith("rate_"):
        out = mode_rate(m[5:], a)
    else:
        out = mode_latency(m[8:], a)
    out = {"mode": "py_" + m, "workers": a.workers, **out}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
