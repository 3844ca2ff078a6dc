#!/usr/bin/env python3
"""The seed's three Python programs, ported to Python 3 (stdlib only).

The seed ran `jobs` jobs of md5chain("Hello World", iterations) three ways:
  serial   one loop in one process;
  process  one multiprocessing.Process per job, all started at once, results on a Queue;
  pipe     one long-lived worker process per CPU, fed jobs over a multiprocessing.Pipe each
           (a new job goes to whichever worker answered first).
Each process may first sleep --init-delay seconds (the seed's slow initialization: the
serial loop and the Pipe-fed workers pay it once per process, the per-job processes once
per job). The bench uses 0: it compares the cost of the work and of the plumbing.

The Python 2 loop was `msg = m.hexdigest()` (a str is bytes there); in Python 3 hexdigest()
returns text, so the port encodes it back to bytes: that is the only change to the kernel.

One run per invocation; prints one JSON object:
    seed_python.py serial|process|pipe [--jobs N] [--iterations N] [--workers N] [--init-delay S]
"""
import argparse
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import time

MESSAGE = b"Hello World"
DIGEST_1M = "1e4110cf294414bc2ac346ad274a7af3"


def md5chain(msg, iterations):
    """The seed's kernel: one running MD5 state, fed its own hex digest."""
    m = hashlib.md5()
    for _ in range(iterations):
        m.update(msg)
        msg = m.hexdigest().encode()
    return msg.decode()


def slow_init(delay):
    if delay > 0:
        time.sleep(delay)


# ------------------------------------------------------------------- serial
def run_serial(args):
    slow_init(args.init_delay)
    return [md5chain(MESSAGE, args.iterations) for _ in range(args.jobs)]


# -------------------------------------------------------- process per job
def _process_job(queue, job, iterations, delay):
    slow_init(delay)
    queue.put((job, md5chain(MESSAGE, iterations)))


def run_process(args):
    queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_process_job, args=(queue, job, args.iterations, args.init_delay))
        for job in range(args.jobs)
    ]
    for p in procs:
        p.start()
    results = [None] * args.jobs
    for _ in range(args.jobs):
        job, hexd = queue.get()
        results[job] = hexd
    for p in procs:
        p.join()
    return results


# ------------------------------------------------------- Pipe-fed workers
def _pipe_worker(conn, delay):
    slow_init(delay)
    while True:
        item = conn.recv()
        if item is None:
            break
        job, iterations = item
        conn.send((job, md5chain(MESSAGE, iterations)))
    conn.close()


def run_pipe(args):
    workers = args.workers or len(os.sched_getaffinity(0))
    conns, procs = [], []
    for _ in range(workers):
        parent, child = multiprocessing.Pipe()
        p = multiprocessing.Process(target=_pipe_worker, args=(child, args.init_delay))
        p.start()
        child.close()
        conns.append(parent)
        procs.append(p)
    results = [None] * args.jobs
    next_job = 0
    busy = 0
    for conn in conns:  # one job per worker to start
        if next_job < args.jobs:
            conn.send((next_job, args.iterations))
            next_job += 1
            busy += 1
    while busy:
        for conn in multiprocessing.connection.wait(conns):
            job, hexd = conn.recv()
            results[job] = hexd
            busy -= 1
            if next_job < args.jobs:
                conn.send((next_job, args.iterations))
                next_job += 1
                busy += 1
    for conn in conns:
        conn.send(None)
    for p in procs:
        p.join()
    return results


VARIANTS = {"serial": run_serial, "process": run_process, "pipe": run_pipe}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=0, help="pipe: worker processes (0 = CPUs)")
    ap.add_argument("--init-delay", type=float, default=0.0)
    args = ap.parse_args()

    want = DIGEST_1M if args.iterations == 1_000_000 else md5chain(MESSAGE, args.iterations)
    t0 = time.perf_counter()
    results = VARIANTS[args.variant](args)
    wall = time.perf_counter() - t0
    bad = [r for r in results if r != want]
    if len(results) != args.jobs or bad:
        print(f"seed_python: {args.variant}: {len(bad)} wrong of {len(results)} (want {want})", file=sys.stderr)
        return 1
    print(json.dumps({"mode": "seed_" + args.variant, "jobs": args.jobs, "iterations": args.iterations,
                      "init_delay": args.init_delay, "wall": round(wall, 6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
