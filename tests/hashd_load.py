#!/usr/bin/env python3
"""Load test for c_examples/hashd.c (run by `make test-hashd`).

Starts hashd on a free loopback port and a Unix socket in a temp dir, then:
  1. 64 concurrent connections (half TCP, half Unix) send 5,000 requests in
     all: iterations 1..5000, pipelined in bursts, some split across writes,
     some invalid (zero, non-numeric, binary junk, over-long, too large), and 8
     clients that disconnect with jobs in flight (some with a RST). Meanwhile
     worker processes (children of hashd's fork server) are killed with SIGKILL.
     Every reply must arrive, in request order, and equal pool_md5_chain (called
     through ctypes) and an independent hashlib implementation of the chain.
  2. Afterwards hashd's descriptors and child processes are back at baseline,
     and SIGTERM stops it within 2 s with exit status 0 and its socket removed.
  3. A second hashd gets SIGTERM with a job in flight: it refuses new
     connections, still delivers that reply, and exits 0.
Standard library only.
"""
import argparse
import ctypes
import hashlib
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLIENTS = 64
EARLY_CLIENTS = 8          # of the 64: disconnect with jobs in flight
EARLY_REQUESTS = 25        # requests each of them sends
TOTAL_REQUESTS = 5000
MAX_ITER = 5000
MAX_LINE = 1024
WORKERS = 2
QUEUE = 32                 # small, so that POOL_EFULL backpressure happens a lot
MAX_PIPELINE = 16          # smaller than the clients' bursts
IO_TIMEOUT = 30.0
# e.g. TEST_WRAPPER="valgrind -q --leak-check=full --error-exitcode=99" (as for the C tests)
WRAPPER = os.environ.get("TEST_WRAPPER", "")
SLOW = 10 if WRAPPER else 1

MESSAGES = [b"", b"a", b"Hello World", b"hello world with spaces",
            b"\x00\x01\x02 binary \xff\xfe\x7f", b"tab\there", b"x" * 200,
            b"\r in the middle \r ok", "\u00e9t\u00e9 utf-8".encode(), b"last"]
MESSAGES += [("msg-%d-" % i).encode() + os.urandom(8).hex().encode() for i in range(23)]

failures = []
failures_lock = threading.Lock()
counts_lock = threading.Lock()


def fail(msg):
    with failures_lock:
        failures.append(msg)


# ------------------------------------------------------------------ oracles

def py_chain_all(msg, n):
    """Results of the md5 chain of msg for 1..n iterations (index i-1)."""
    state = hashlib.md5()
    out = []
    for _ in range(n):
        state.update(msg)
        msg = state.copy().hexdigest().encode()
        out.append(msg)
    return out


class Reference:
    def __init__(self, lib_path):
        self.lib = ctypes.CDLL(os.path.abspath(lib_path))
        self.lib.pool_md5_chain.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                            ctypes.c_uint64, ctypes.c_char_p]
        self.lib.pool_md5_chain.restype = ctypes.c_int
        self.py = {m: py_chain_all(m, MAX_ITER) for m in MESSAGES}

    def lib_chain(self, msg, n):
        out = ctypes.create_string_buffer(33)
        st = self.lib.pool_md5_chain(msg, len(msg), n, out)
        if st != 0:
            raise RuntimeError("pool_md5_chain returned %d" % st)
        return out.value

    def check(self, msg, n, got):
        want = self.lib_chain(msg, n)
        if want != self.py[msg][n - 1]:
            fail("pool_md5_chain and hashlib disagree on (%r, %d)" % (msg, n))
        return got == b"OK " + want


# ------------------------------------------------------------------ /proc

def proc_children(pid):
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(name))
    return kids


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def workers_of(pid):
    return [w for server in proc_children(pid) for w in proc_children(server)]


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


# ------------------------------------------------------------------ hashd

class Hashd:
    def __init__(self, binary, tmp, name, extra=()):
        self.sock_path = os.path.join(tmp, name + ".sock")
        self.err_path = os.path.join(tmp, name + ".err")
        self.err = open(self.err_path, "wb")
        cmd = [binary, "--unix", self.sock_path, "--port", "any",
               "--workers", str(WORKERS), "--queue", str(QUEUE),
               "--max-line", str(MAX_LINE), "--max-pipeline", str(MAX_PIPELINE),
               "--max-iterations", "10000000"] + list(extra)
        if WRAPPER:
            # A worker holds a batch of jobs and a kill costs each an attempt;
            # under valgrind a batch runs ~50x longer and meets many more kills.
            cmd += ["--max-attempts", "100"]
        # Run against a private copy of the library: a concurrent `make lib`
        # rewrites build/lib/libmd5pool.so.1.0.0 in place under a running process.
        env = dict(os.environ, LD_LIBRARY_PATH=tmp)
        cmd = shlex.split(WRAPPER) + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, env=env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.proc.kill()
            raise SystemExit("hashd did not start: %r\n%s" % (line, self.stderr()))
        fields = dict(f.split("=", 1) for f in line.split()[1:])
        self.pid = int(fields["pid"])
        self.port = int(fields["tcp"].rsplit(":", 1)[1])

    def connect(self, tcp):
        if tcp:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(IO_TIMEOUT)
            s.connect(self.sock_path)
        return s

    def stderr(self):
        self.err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def terminate(self, limit):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None, time.monotonic() - t0
        return rc, time.monotonic() - t0


# ------------------------------------------------------------------ clients

def make_requests(rng, count):
    """(line, expect) pairs: expect is (msg, n) for a valid one, else the ERR prefix."""
    reqs = []
    for _ in range(count):
        r = rng.random()
        if r < 0.06:
            kind = rng.randrange(7)
            if kind == 0:
                reqs.append((b"0 zero", b"ERR POOL_EINVAL "))
            elif kind == 1:
                reqs.append((b"abc def", b"ERR POOL_EINVAL "))
            elif kind == 2:
                reqs.append((b"-3 negative", b"ERR POOL_EINVAL "))
            elif kind == 3:
                junk = bytes(rng.randrange(256) for _ in range(40)).replace(b"\n", b"")
                reqs.append((b"\xff" + junk + b"\x00junk", b"ERR POOL_EINVAL "))
            elif kind == 4:
                reqs.append((b"", b"ERR POOL_EINVAL "))
            elif kind == 5:
                reqs.append((b"99999999999999999999999999 big", b"ERR POOL_EINVAL "))
            else:
                reqs.append((b"5 " + b"y" * (MAX_LINE + rng.randrange(1, 5000)), b"ERR POOL_ETOOBIG "))
            continue
        msg = rng.choice(MESSAGES)
        r = rng.random()
        n = rng.randint(1, 100) if r < 0.3 else rng.randint(1, MAX_ITER)
        reqs.append((b"%d " % n + msg, (msg, n)))
    return reqs


def send_burst(sock, rng, lines):
    data = b"".join(l + (b"\r\n" if rng.random() < 0.05 else b"\n") for l in lines)
    if rng.random() < 0.3:  # split at random points: requests cut across writes
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 4)))
        prev = 0
        for c in cuts + [len(data)]:
            sock.sendall(data[prev:c])
            prev = c
    else:
        sock.sendall(data)


def normal_client(hd, ref, idx, count, stats):
    rng = random.Random(1000 + idx)
    reqs = make_requests(rng, count)
    ok = err = 0
    try:
        sock = hd.connect(tcp=idx % 2 == 0)
        f = sock.makefile("rb")
        i = 0
        while i < len(reqs):
            burst = reqs[i:i + rng.randint(1, 24)]
            send_burst(sock, rng, [l for l, _ in burst])
            for line, expect in burst:
                got = f.readline().rstrip(b"\n")
                if isinstance(expect, tuple):
                    if not ref.check(expect[0], expect[1], got):
                        fail("client %d: %r -> %r" % (idx, line[:60], got))
                    ok += 1
                elif not got.startswith(expect):
                    fail("client %d: %r -> %r, want %r" % (idx, line[:60], got, expect))
                else:
                    err += 1
            i += len(burst)
        # half-close: a last line without LF still counts, then hashd closes
        sock.sendall(b"3 last")
        sock.shutdown(socket.SHUT_WR)
        got = f.readline()
        if not ref.check(b"last", 3, got.rstrip(b"\n")):
            fail("client %d: unterminated last line -> %r" % (idx, got))
        if f.read() != b"":
            fail("client %d: data after the last reply" % idx)
        f.close()
        sock.close()
    except Exception as e:  # noqa: BLE001 - any failure of a client is a test failure
        fail("client %d: %s: %s" % (idx, type(e).__name__, e))
    with counts_lock:
        stats["ok"] += ok
        stats["err"] += err


def early_client(hd, idx, stats):
    rng = random.Random(2000 + idx)
    try:
        sock = hd.connect(tcp=idx % 2 == 0)
        lines = [b"%d %s" % (rng.randint(3000, MAX_ITER), rng.choice(MESSAGES)) for _ in range(EARLY_REQUESTS)]
        sock.sendall(b"\n".join(lines) + b"\n")
        if idx % 3 == 0:
            sock.recv(10)  # read a little of the first reply
        if idx % 2 == 0:  # a TCP reset instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        with counts_lock:
            stats["early"] += EARLY_REQUESTS
    except Exception as e:  # noqa: BLE001
        fail("early client %d: %s: %s" % (idx, type(e).__name__, e))


def killer(hd, stop, kills):
    rng = random.Random(7)
    while not stop.wait(0.1 * SLOW):
        ws = workers_of(hd.pid)
        if ws:
            try:
                os.kill(rng.choice(ws), signal.SIGKILL)
                kills.append(1)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------ phases

def load_phase(hd, ref):
    wait_for(lambda: len(workers_of(hd.pid)) == WORKERS, 5 * SLOW)
    base_fds = fd_count(hd.pid)
    base_children = proc_children(hd.pid)
    if len(base_children) != 1 or len(workers_of(hd.pid)) != WORKERS:
        fail("baseline: %d children, %d workers" % (len(base_children), len(workers_of(hd.pid))))

    normal = CLIENTS - EARLY_CLIENTS
    remaining = TOTAL_REQUESTS - EARLY_CLIENTS * EARLY_REQUESTS - normal  # the "last" lines
    shares = [remaining // normal + (1 if i < remaining % normal else 0) for i in range(normal)]
    stats = {"ok": 0, "err": 0, "early": 0}
    stop, kills = threading.Event(), []
    kt = threading.Thread(target=killer, args=(hd, stop, kills))
    threads = [threading.Thread(target=normal_client, args=(hd, ref, i, shares[i], stats)) for i in range(normal)]
    threads += [threading.Thread(target=early_client, args=(hd, i, stats)) for i in range(EARLY_CLIENTS)]
    t0 = time.monotonic()
    kt.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    kt.join()
    elapsed = time.monotonic() - t0
    sent = sum(shares) + normal + stats["early"]
    print("load: %d requests on %d connections in %.1fs: %d OK verified (incl. %d half-close lines), "
          "%d ERR as expected, %d abandoned; %d workers SIGKILLed"
          % (sent, CLIENTS, elapsed, stats["ok"] + normal, normal, stats["err"], stats["early"], len(kills)))
    if sent != TOTAL_REQUESTS:
        fail("sent %d requests, meant %d" % (sent, TOTAL_REQUESTS))
    if not kills:
        fail("no worker was killed during the load")

    # Back to baseline: same descriptors, the fork server alone as child, all workers back.
    if not wait_for(lambda: fd_count(hd.pid) == base_fds, 5 * SLOW):
        fail("descriptors: %d after the load, %d before" % (fd_count(hd.pid), base_fds))
    if not wait_for(lambda: proc_children(hd.pid) == base_children and len(workers_of(hd.pid)) == WORKERS, 10 * SLOW):
        fail("processes: children %s (before %s), %d workers"
             % (proc_children(hd.pid), base_children, len(workers_of(hd.pid))))
    print("after: %d descriptors (baseline %d), children %s, %d workers"
          % (fd_count(hd.pid), base_fds, proc_children(hd.pid), len(workers_of(hd.pid))))

    # Still serving after all that.
    s = hd.connect(tcp=True)
    s.sendall(b"1000000 Hello World\n")
    got = s.makefile("rb").readline()
    if got != b"OK 1e4110cf294414bc2ac346ad274a7af3\n":
        fail("after the load: %r" % got)
    s.close()


def cpu_seconds(pid):
    """CPU time hashd itself (all its threads, not its children) has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backpressure_phase(hd, ref):
    """While the pool is full and while a client does not read its replies,
    hashd waits without spinning, and afterwards every reply is still right."""
    # Pool full: 3 clients x 24 slow jobs = 72 > QUEUE, ~1 s of work on 2 workers.
    n = 150000
    slow = []
    for i in range(3):
        s = hd.connect(tcp=i == 0)
        s.sendall(b"".join(b"%d slow-%d-%d\n" % (n, i, k) for k in range(24)))
        slow.append((i, s))
    time.sleep(0.1)
    cpu0, t0 = cpu_seconds(hd.pid), time.monotonic()
    time.sleep(0.5)
    busy = (cpu_seconds(hd.pid) - cpu0) / (time.monotonic() - t0)
    for i, s in slow:
        f = s.makefile("rb")
        for k in range(24):
            got = f.readline()
            if got != b"OK " + ref.lib_chain(b"slow-%d-%d" % (i, k), n) + b"\n":
                fail("pool-full client %d request %d: %r" % (i, k, got))
        s.close()
    # A reader that stalls: 30,000 pipelined requests (~1 MB of replies) and
    # nobody reading for a while; hashd must stop reading it, not buffer it all.
    count = 30000
    s = hd.connect(tcp=False)
    sender = threading.Thread(target=lambda: s.sendall(b"1 stall\n" * count))
    sender.start()
    time.sleep(0.3)
    cpu1, t1 = cpu_seconds(hd.pid), time.monotonic()
    time.sleep(0.5)
    stalled = (cpu_seconds(hd.pid) - cpu1) / (time.monotonic() - t1)
    with open("/proc/%d/status" % hd.pid) as st:
        rss = [l for l in st if l.startswith("VmRSS")][0].split()[1]
    f = s.makefile("rb")
    want = b"OK " + ref.lib_chain(b"stall", 1) + b"\n"
    wrong = sum(1 for _ in range(count) if f.readline() != want)
    sender.join()
    s.close()
    if wrong:
        fail("stalled reader: %d wrong replies" % wrong)
    print("backpressure: hashd CPU %.0f%% while the pool was full, %.0f%% while a reader stalled (RSS %s kB)"
          % (busy * 100, stalled * 100, rss))
    if not WRAPPER and (busy > 0.15 or stalled > 0.15):
        fail("hashd spins while waiting: %.0f%% / %.0f%% CPU" % (busy * 100, stalled * 100))


def shutdown_phase(hd):
    workers = workers_of(hd.pid)
    server = proc_children(hd.pid)
    rc, took = hd.terminate(2.0 * SLOW)
    print("SIGTERM: exit status %s after %.2fs" % (rc, took))
    if rc != 0:
        fail("SIGTERM: exit status %s after %.2fs (want 0 within 2s)" % (rc, took))
    if os.path.exists(hd.sock_path):
        fail("the Unix socket file was left behind")
    if not wait_for(lambda: all(not os.path.exists("/proc/%d" % p) for p in workers + server), 2 * SLOW):
        fail("pool processes outlived hashd")


def drain_phase(binary, tmp, ref):
    """SIGTERM with a job in flight: the reply still comes, then exit 0."""
    hd = Hashd(binary, tmp, "drain", ["--shutdown-timeout-ms", "20000"])
    n = 3000000
    msg = b"drain"
    want = ref.lib_chain(msg, n)  # how long this takes tells how long the job runs
    s = hd.connect(tcp=False)
    f = s.makefile("rb")
    s.sendall(b"%d drain\n2 x\n" % n)
    time.sleep(0.05)
    t0 = time.monotonic()
    hd.proc.send_signal(signal.SIGTERM)
    if not wait_for(lambda: not os.path.exists(hd.sock_path), 2 * SLOW):
        fail("drain: hashd still accepts connections after SIGTERM")
    a, b = f.readline(), f.readline()
    if a != b"OK " + want + b"\n" or b != b"OK " + ref.lib_chain(b"x", 2) + b"\n":
        fail("drain: replies %r %r" % (a, b))
    if f.read() != b"":
        fail("drain: connection not closed after the last reply")
    try:
        rc = hd.proc.wait(timeout=5 * SLOW)
    except subprocess.TimeoutExpired:
        hd.proc.kill()
        rc = None
    print("drain: in-flight job answered, exit status %s %.2fs after SIGTERM" % (rc, time.monotonic() - t0))
    if rc != 0:
        fail("drain: exit status %s" % rc)
    s.close()
    return hd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashd", required=True)
    ap.add_argument("--lib", required=True, help="libmd5pool.so, for pool_md5_chain")
    args = ap.parse_args()

    watchdog = threading.Timer(120 * SLOW, lambda: (print("hashd_load: watchdog: test hung", flush=True), os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hashd-test-") as tmp:
        lib = os.path.join(tmp, "libmd5pool.so.1")
        shutil.copyfile(args.lib, lib)
        ref = Reference(lib)
        if ref.lib_chain(b"Hello World", 1000000) != b"1e4110cf294414bc2ac346ad274a7af3":
            raise SystemExit("pool_md5_chain: wrong known vector")
        hd = Hashd(args.hashd, tmp, "load")
        with open("/proc/%d/maps" % hd.pid) as f:
            if lib not in f.read():
                fail("hashd did not load the library copy %s" % lib)
        try:
            load_phase(hd, ref)
            backpressure_phase(hd, ref)
            shutdown_phase(hd)
        finally:
            if hd.proc.poll() is None:
                hd.proc.kill()
                hd.proc.wait()
        err = hd.stderr()
        stats = [l for l in err.splitlines() if l.startswith("hashd: served")]
        if stats:
            print(stats[-1])
            if " 0 times" in stats[-1]:
                fail("POOL_EFULL backpressure never happened: " + stats[-1])
        else:
            fail("hashd printed no summary at exit")
        unexpected = [l for l in err.splitlines()
                      if not l.startswith(("hashd: signal", "hashd: served"))]
        if unexpected:
            fail("hashd wrote to stderr:\n  " + "\n  ".join(unexpected[:20]))
        dh = drain_phase(args.hashd, tmp, ref)
        if dh.proc.poll() is None:
            dh.proc.kill()
            dh.proc.wait()
    print("hashd_load: %.1fs" % (time.monotonic() - t0))
    if failures:
        print("hashd_load: FAILED (%d problems)" % len(failures))
        for f in failures[:30]:
            print("  " + f)
        sys.exit(1)
    print("hashd_load: ok")


if __name__ == "__main__":
    main()
