"""A private redis-server with the md5pool module, and a minimal RESP client (stdlib only).

Shared by tests/redis/test_redis.py and bench/redis_bench.py. The server listens only on a
unix socket in its own temporary directory (--port 0) and is stopped by its owner.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hashd_load import proc_children as children  # noqa: E402  live children of a pid, from /proc


class ReplyError(str):
    """An error reply (-ERR ..., -BUSY ...): returned, not raised, so tests can compare it."""


class Client:
    """One RESP2 connection. send() queues commands (pipelining); read() returns one reply."""

    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))

    def call(self, *args):
        self.send(*args)
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("latin-1")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("unexpected reply %r" % line)


def redis_major():
    out = subprocess.run(["redis-server", "--version"], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else 0


class Server:
    """redis-server --port 0 --unixsocket <tmp>/r.sock --loadmodule MODULE ARGS..."""

    def __init__(self, module, module_args=(), extra=()):
        self.dir = tempfile.mkdtemp(prefix="md5pool-redis-")
        self.sock = os.path.join(self.dir, "r.sock")
        cmd = ["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
               "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"),
               "--save", "", "--appendonly", "no", "--daemonize", "no"]
        if redis_major() >= 7:
            cmd += ["--enable-module-command", "local"]
        cmd += list(extra) + ["--loadmodule", os.path.abspath(module)] + [str(a) for a in module_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while True:
            try:
                Client(self.sock, timeout=5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise RuntimeError("redis-server did not start:\n" + log[-2000:])
                time.sleep(0.02)

    def client(self, timeout=60):
        return Client(self.sock, timeout)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stats(self, timeout=10):
        reply = Client(self.sock, timeout).call("MD5POOL.STATS")
        return dict(zip(reply[0::2], reply[1::2]))

    def shutdown(self, timeout=10):
        """SHUTDOWN NOSAVE; returns redis-server's exit status."""
        try:
            c = self.client(5)
            c.send("SHUTDOWN", "NOSAVE")
            try:
                c.read()
            except (ConnectionError, OSError):
                pass  # the connection closes as redis exits
            c.close()
        except OSError:
            pass
        return self.proc.wait(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Ends the server whatever its state and removes its directory."""
        if self.proc.poll() is None:
            try:
                self.shutdown(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            found.append(c)
            todo.append(c)
    return sorted(found)


def stat_fields(pid):
    """/proc/PID/stat from field 3 (state) on, None once the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def nice(pid):
    return int(stat_fields(pid)[16])  # field 19 of proc(5)


def alive(pid):
    """True while pid exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"
