#!/usr/bin/env python3
"""hashd as a service (run by `make test-hashd`), what hashd(8) promises:
  1. options: long (--port=N, --port N), short (-p N, -pN) and mixed forms are
     accepted; unknown options, missing and bad values are refused with exit 2;
  2. --socket-mode and --socket-group are applied to the Unix socket;
  3. the STATS request answers with pool_stats_get's counters, which follow
     what happened (a job done, a worker killed and restarted);
  4. SIGHUP never kills it: it reopens --log-file (after a logrotate-style
     rename) or says there is nothing to reload, and keeps serving;
  5. Type=notify: READY=1 when it serves, STOPPING=1 on SIGTERM;
  6. SIGTERM: exit 0, socket removed, no process of the pool left;
  7. c_examples/hashd.service: KillMode=mixed, Type=notify, and (where
     systemd-analyze exists) systemd reads it without a warning.
Standard library only.
"""
import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

from hashd_load import proc_children, wait_for, workers_of

failures = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures.append(what)


class Daemon:
    """hashd started with `args`; its READY line parsed."""

    def __init__(self, binary, args, env=None):
        self.proc = subprocess.Popen([binary, "--workers=2"] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.proc.kill()
            raise SystemExit("hashd %s did not start: %r %s" % (args, line, self.proc.stderr.read()))
        self.ready = dict(f.split("=", 1) for f in line.split()[1:])
        self.pid = int(self.ready["pid"])

    def client(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.ready["unix"])
        return s, s.makefile("rb")

    def stop(self):
        """SIGTERM; (exit status, stderr text)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            return None, err.decode(errors="replace")
        return self.proc.returncode, err.decode(errors="replace")


def ask(f, s, line):
    s.sendall(line)
    return f.readline()


def stats(f, s):
    reply = ask(f, s, b"STATS\n").decode()
    if not reply.startswith("STATS "):
        return {"reply": reply}
    return {k: int(v) for k, v in (p.split("=") for p in reply.split()[1:])}


def option_forms(binary, tmp):
    sock = os.path.join(tmp, "forms.sock")
    for args in (["--port=0", "--unix=" + sock],
                 ["--port", "0", "--unix", sock],
                 ["-p", "0", "-u", sock, "-q", "8"],
                 ["-p0", "-u" + sock, "-q8", "--max-line=64"]):
        d = Daemon(binary, args)
        check(d.ready.get("unix") == sock and "tcp" not in d.ready, "options %s: %s" % (args, d.ready))
        d.stop()
    refused = {("--port=abc",): "bad value for --port: abc",
               ("-u", sock, "-p", "70000"): "bad value for --port: 70000",
               ("--bogus",): "unknown option: --bogus",
               ("-p",): "missing value for -p",
               ("-u", sock, "extra"): "unexpected argument: extra",
               ("-u", sock, "--socket-mode=0999"): "bad value for --socket-mode: 0999",
               ("--socket-mode=0660",): "--socket-mode and --socket-group need --unix"}
    for args, message in refused.items():
        r = subprocess.run([binary] + list(args), capture_output=True, timeout=10)
        err = r.stderr.decode()
        check(r.returncode == 2 and message in err and "usage:" in err,
              "refused %s: exit %s, %r" % (args, r.returncode, err.splitlines()[:1]))
    r = subprocess.run([binary, "--help"], capture_output=True, timeout=10)
    check(r.returncode == 0 and b"--socket-group" in r.stdout, "--help: exit 0, usage on stdout")


def socket_permissions(binary, tmp):
    sock = os.path.join(tmp, "perm.sock")
    gid = os.getgid() + 4242  # not our group: proves the chown happened (root may give any gid)
    d = Daemon(binary, ["-p0", "-u", sock, "--socket-mode=0640", "--socket-group=%d" % gid])
    st = os.stat(sock)
    check(stat.S_IMODE(st.st_mode) == 0o640, "--socket-mode=0640: mode %o" % stat.S_IMODE(st.st_mode))
    check(st.st_gid == gid, "--socket-group=%d: group %d" % (gid, st.st_gid))
    d.stop()


def stats_query(binary, tmp):
    d = Daemon(binary, ["-p0", "-u", os.path.join(tmp, "stats.sock")])
    s, f = d.client()
    first = stats(f, s)
    check(first.get("workers_configured") == 2 and first.get("workers_alive") == 2 and
          first.get("jobs_completed") == 0 and first.get("clients") == 1, "STATS at start: %s" % first)
    check(ask(f, s, b"1000 Hello World\n").startswith(b"OK "), "a job")
    after = stats(f, s)
    check(after.get("jobs_completed") == 1 and after.get("jobs_queued") == 0 and
          after.get("jobs_running") == 0, "STATS after one job: %s" % after)
    victim = workers_of(d.pid)[0]
    os.kill(victim, signal.SIGKILL)
    check(wait_for(lambda: stats(f, s).get("worker_restarts", 0) >= 1 and
                   stats(f, s).get("workers_alive") == 2, 10),
          "STATS after a worker was killed: %s" % stats(f, s))
    check(ask(f, s, b"STATS\r\n").startswith(b"STATS workers_configured=2 "), "STATS with CRLF")
    check(ask(f, s, b"STATS now\n").startswith(b"ERR POOL_EINVAL"), "STATS with an argument is refused")
    s.close()
    d.stop()


def sighup(binary, tmp):
    log = os.path.join(tmp, "hashd.log")
    d = Daemon(binary, ["-p0", "-u", os.path.join(tmp, "hup.sock"), "--log-file=" + log])
    workers = sorted(workers_of(d.pid))
    os.rename(log, log + ".1")  # what logrotate does before its postrotate kill -HUP
    os.kill(d.pid, signal.SIGHUP)
    check(wait_for(lambda: os.path.exists(log), 5), "SIGHUP reopened --log-file")
    os.kill(d.pid, signal.SIGHUP)
    s, f = d.client()
    check(d.proc.poll() is None and ask(f, s, b"1 a\n") == b"OK 0cc175b9c0f1b6a831c399e269772661\n",
          "alive and serving after two SIGHUPs")
    check(sorted(workers_of(d.pid)) == workers, "SIGHUP left the workers alone")
    s.close()
    rc, _ = d.stop()
    with open(log) as fh:
        text = fh.read()
    check(text.count("SIGHUP: reopened " + log) == 2 and "hashd: served" in text,
          "the new log has the reopen lines and the exit summary")

    d = Daemon(binary, ["-p0", "-u", os.path.join(tmp, "hup2.sock")])
    os.kill(d.pid, signal.SIGHUP)
    s, f = d.client()
    check(ask(f, s, b"1 a\n").startswith(b"OK "), "SIGHUP without --log-file: still serving")
    s.close()
    rc, err = d.stop()
    check(rc == 0 and "nothing to reload" in err, "SIGHUP without --log-file is logged")


def notify_and_sigterm(binary, tmp):
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    sock = os.path.join(tmp, "term.sock")
    d = Daemon(binary, ["-p0", "-u", sock], env=dict(os.environ, NOTIFY_SOCKET=notify_path))
    check(notify.recv(256) == b"READY=1", "NOTIFY_SOCKET gets READY=1")
    pool = proc_children(d.pid) + workers_of(d.pid)
    check(len(pool) == 3, "fork server and 2 workers: %s" % pool)
    rc, _ = d.stop()
    check(notify.recv(256) == b"STOPPING=1", "NOTIFY_SOCKET gets STOPPING=1 on SIGTERM")
    check(rc == 0 and not os.path.exists(sock), "SIGTERM: exit 0 (got %s), socket removed" % rc)
    check(wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in pool), 5),
          "SIGTERM: no pool process left")
    notify.close()


def unit_file(binary, tmp, unit):
    with open(unit) as f:
        text = f.read()
    lines = text.splitlines()
    check("KillMode=mixed" in lines and "Type=notify" in lines and "ExecReload=/bin/kill -HUP $MAINPID" in lines,
          "hashd.service: KillMode=mixed, Type=notify, reload by SIGHUP")
    if not shutil.which("systemd-analyze"):
        print("skip: no systemd-analyze to verify hashd.service")
        return
    # verify wants ExecStart's binary to exist: point it at the one just built.
    copy = os.path.join(tmp, "hashd.service")
    with open(copy, "w") as f:
        f.write(text.replace("/usr/sbin/hashd", os.path.abspath(binary)))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          "systemd-analyze verify hashd.service: %s" % (r.stdout + r.stderr).strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashd", required=True)
    ap.add_argument("--unit", required=True, help="c_examples/hashd.service")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashd-service-") as tmp:
        option_forms(args.hashd, tmp)
        socket_permissions(args.hashd, tmp)
        stats_query(args.hashd, tmp)
        sighup(args.hashd, tmp)
        notify_and_sigterm(args.hashd, tmp)
        unit_file(args.hashd, tmp, args.unit)
    if failures:
        print("hashd_service: FAILED (%d)" % len(failures))
        sys.exit(1)
    print("hashd_service: ok")


if __name__ == "__main__":
    main()
