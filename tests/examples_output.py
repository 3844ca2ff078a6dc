#!/usr/bin/env python3
"""Runs c_examples/minimal.c and event_loop.c (built) and checks what they print
against hashlib: every result right, the abandoned request canceled, POOL_EFULL
met at least once, exit status 0. Usage: examples_output.py MINIMAL EVENT_LOOP"""
import hashlib
import re
import subprocess
import sys

failures = []


def chain(msg, iterations):
    state = hashlib.md5()
    for _ in range(iterations):
        state.update(msg)
        msg = state.copy().hexdigest().encode()
    return msg.decode()


def run(binary):
    r = subprocess.run([binary], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or r.stderr:
        failures.append("%s: exit %d, stderr %r" % (binary, r.returncode, r.stderr))
    return r.stdout.splitlines()


def main(minimal, event_loop):
    if run(minimal) != ["1e4110cf294414bc2ac346ad274a7af3"]:
        failures.append("minimal: wrong output")
    lines = run(event_loop)
    # The same constants as event_loop.c.
    requests, iterations, abandoned = 20, 200000, 3
    results = {}
    for line in lines[:-1]:
        m = re.fullmatch(r"request (\d+): (.*)", line)
        if not m or int(m.group(1)) in results:
            failures.append("event_loop: unexpected line %r" % line)
            continue
        results[int(m.group(1))] = m.group(2)
    for i in range(requests):
        want = "canceled" if i == abandoned else chain(b"request %d" % i, iterations)
        if results.get(i) != want:
            failures.append("event_loop: request %d: %r, want %r" % (i, results.get(i), want))
    m = re.fullmatch(r"20 requests collected, the pool was full (\d+) times", lines[-1] if lines else "")
    if not m or int(m.group(1)) == 0:
        failures.append("event_loop: summary %r (POOL_EFULL must have happened)" % lines[-1:])
    for f in failures:
        print("FAIL: " + f)
    print("examples: %s (%d event_loop results checked)" % ("FAILED" if failures else "ok", len(results)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
