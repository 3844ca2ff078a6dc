#!/usr/bin/env python3
"""md5pool benchmarks, side by side. Run by `make bench` (stdlib only).

    python3 bench/run.py [--quick] [--runs N] [--no-md]

Builds the C drivers against a snapshot of build/lib/libmd5pool.so, installs libssl-dev
with apt-get when OpenSSL's headers are missing, then runs every measurement one at a time
(variants of a section interleaved run by run, so a burst of load hits them alike), takes
medians, prints one table with ratios and writes:
    full:   BENCHMARKS.md, bench/results.json, bench/bench.svg
    --quick (small sizes, for debugging): build/bench/BENCHMARKS.quick.md, .json, .svg
Timings are reported, never asserted: the exit status is non-zero only when a program fails
or computes a wrong digest.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(ROOT, "build", "bench")
PY = sys.executable or "python3"
DIGEST_1M = "1e4110cf294414bc2ac346ad274a7af3"
LOADS = []  # (section, 1-minute load average) after every measurement


# ------------------------------------------------------------------ plumbing
def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_json(cmd, env_extra=None, timeout=1800):
    """Runs one measurement; returns the JSON object of its last stdout line."""
    env = dict(os.environ)
    env.pop("MD5POOL_KERNEL", None)
    if env_extra:
        env.update(env_extra)
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (env {env_extra}) exited {p.returncode}:\n{p.stderr[-2000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no result:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return json.loads(lines[-1])


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and model in ("unknown", "", platform.processor()):
                    model = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    return model, flags


def loadavg():
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (float("nan"),) * 3


def git_state():
    def g(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip()
        except OSError:
            return ""
    dirty = g("status", "--porcelain", "--", "src", "Cargo.toml", "build.rs")
    return g("rev-parse", "--short", "HEAD"), len(dirty.splitlines()) if dirty else 0


# ----------------------------------------------------------------- building
def ensure_openssl():
    """OpenSSL's headers and libcrypto: apt-get install libssl-dev when missing (as root)."""
    if os.path.exists("/usr/include/openssl/md5.h"):
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        log("bench: installing libssl-dev (OpenSSL headers) with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "libssl-dev"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
    ok = os.path.exists("/usr/include/openssl/md5.h")
    if not ok:
        log("bench: OpenSSL headers missing and could not be installed: the OpenSSL rows are skipped")
    return ok


def build(have_openssl):
    """Snapshots the library (others may rebuild it meanwhile) and compiles the C drivers."""
    libdir = os.path.join(OUT, "lib")
    os.makedirs(libdir, exist_ok=True)
    src_so = os.path.realpath(os.path.join(ROOT, "build", "lib", "libmd5pool.so"))
    if not os.path.exists(src_so):
        raise SystemExit("bench: build/lib/libmd5pool.so is missing: run `make lib` (make bench does)")
    with open(src_so, "rb") as f:
        so_sha = hashlib.sha256(f.read()).hexdigest()[:12]
    tmp = os.path.join(libdir, "libmd5pool.so.1.tmp")
    shutil.copyfile(src_so, tmp)
    os.replace(tmp, os.path.join(libdir, "libmd5pool.so.1"))
    cc = os.environ.get("CC", "cc")
    cmds = [[cc, "-O2", "-g", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-D_GNU_SOURCE",
             "-pthread", "-Iinclude", "bench/pool_bench.c", "-o", os.path.join(OUT, "pool_bench"),
             os.path.join(libdir, "libmd5pool.so.1"), "-Wl,-rpath," + libdir]]
    if have_openssl:
        cmds.append([cc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations",
                     "bench/openssl_chain.c", "-o", os.path.join(OUT, "openssl_chain"), "-lcrypto"])
    for cmd in cmds:
        subprocess.run(cmd, cwd=ROOT, check=True)
    return so_sha


def build_kernel_bench():
    if not os.path.exists(os.path.join(ROOT, "examples", "kernel_bench.rs")) or not shutil.which("cargo"):
        return False
    log("bench: cargo build --release --example kernel_bench")
    p = subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "kernel_bench"], cwd=ROOT)
    return p.returncode == 0


# ---------------------------------------------------------------- the plan
def plan(quick, runs_override):
    if quick:
        p = dict(kernel_iter=200_000, kernel_runs=3,
                 seed_jobs=10, seed_iter=200_000, seed_runs=2,
                 rate_jobs=20_000, py_rate_jobs=2_000, rate_runs=2,
                 lat_samples=2_000, py_lat_samples=300, lat_runs=2,
                 scale_jobs=40, scale_iter=100_000, scale_runs=1,
                 respawn_reps=10, respawn_runs=1,
                 eng_iter=200_000, eng_jobs={"scalar": 4, "avx2": 48, "avx512": 128}, eng_runs=1,
                 kb_iter=100_000, kb_runs=3,
                 mixed_long_iter=5_000_000, mixed_runs=1, cancel_iter=200_000)
    else:
        p = dict(kernel_iter=1_000_000, kernel_runs=7,
                 seed_jobs=100, seed_iter=1_000_000, seed_runs=3,
                 rate_jobs=100_000, py_rate_jobs=100_000, rate_runs=3,
                 lat_samples=20_000, py_lat_samples=3_000, lat_runs=3,
                 scale_jobs=200, scale_iter=200_000, scale_runs=3,
                 respawn_reps=20, respawn_runs=3,
                 eng_iter=1_000_000, eng_jobs={"scalar": 12, "avx2": 48, "avx512": 128}, eng_runs=3,
                 kb_iter=1_000_000, kb_runs=5,
                 mixed_long_iter=50_000_000, mixed_runs=1, cancel_iter=1_000_000)
    if runs_override:
        for k in list(p):
            if k.endswith("_runs"):
                p[k] = runs_override
    return p


def interleave(variants, runs, label):
    """variants: [(key, cmd, env)]. Runs each once per round, `runs` rounds; returns {key: [results]}."""
    out = {key: [] for key, _, _ in variants}
    for r in range(runs):
        for key, cmd, env in variants:
            log(f"bench: {label}: {key} (run {r + 1}/{runs})")
            out[key].append(run_json(cmd, env))
            LOADS.append((label, loadavg()[0]))
    return out


# ---------------------------------------------------------------- sections
def section_kernel(P, have_openssl):
    pb = os.path.join(OUT, "pool_bench")
    it = P["kernel_iter"]
    v = [("md5pool", [pb, "kernel", f"iterations={it}"], None)]
    if have_openssl:
        v.append(("openssl", [os.path.join(OUT, "openssl_chain"), str(it), "1"], None))
    v.append(("python", [PY, "bench/py_bench.py", "kernel", "--iterations", str(it)], None))
    res = interleave(v, P["kernel_runs"], "kernel")
    hexes = {r["hex"] for rs in res.values() for r in rs}
    if len(hexes) != 1 or (it == 1_000_000 and hexes != {DIGEST_1M}):
        raise RuntimeError(f"kernel variants disagree: {hexes}")
    out = {k: {"wall": median([r["wall"] for r in rs]), "cpu": median([r["cpu"] for r in rs]),
               "runs": len(rs), "samples_wall": [r["wall"] for r in rs]} for k, rs in res.items()}
    if have_openssl:
        out["openssl"]["version"] = res["openssl"][0]["openssl"]
    return out


def section_seed(P, cores):
    pb = os.path.join(OUT, "pool_bench")
    j, it = P["seed_jobs"], P["seed_iter"]
    ja = [f"jobs={j}", f"iterations={it}"]
    jp = ["--jobs", str(j), "--iterations", str(it)]
    v = [("c_serial", [pb, "serial", *ja], None),
         ("c_fork", [pb, "fork", *ja], None),
         ("c_pool_scalar", [pb, "pool", *ja], {"MD5POOL_KERNEL": "scalar"}),
         ("c_pool_default", [pb, "pool", *ja], None),
         ("py_serial", [PY, "bench/seed_python.py", "serial", *jp], None),
         ("py_process", [PY, "bench/seed_python.py", "process", *jp], None),
         ("py_pipe", [PY, "bench/seed_python.py", "pipe", *jp], None),
         ("py_mp_pool", [PY, "bench/py_bench.py", "pool", *jp], None),
         ("py_executor", [PY, "bench/py_bench.py", "executor", *jp], None)]
    res = interleave(v, P["seed_runs"], "seed experiment")
    out = {}
    for k, rs in res.items():
        d = {"wall": median([r["wall"] for r in rs]), "runs": len(rs), "samples_wall": [r["wall"] for r in rs]}
        if k.startswith("c_pool"):
            d["run"] = median([r["run"] for r in rs])
            d["create"] = median([r["create"] for r in rs])
            d["destroy"] = median([r["destroy"] for r in rs])
            d["workers"] = rs[0]["workers"]
            # Load-independent: CPU seconds of the workers (reaped by pool_destroy) + the host.
            d["cpu"] = median([r["workers_cpu"] + r["host_cpu"] for r in rs])
        if k == "c_fork":
            d["cpu"] = median([r["children_cpu"] for r in rs])
        if k == "c_serial":
            d["cpu"] = median([r["cpu"] for r in rs])
        out[k] = d
    out["jobs"], out["iterations"], out["cores"] = j, it, cores
    return out


def section_overhead(P):
    pb = os.path.join(OUT, "pool_bench")
    rate = interleave([
        ("md5pool", [pb, "rate", f"jobs={P['rate_jobs']}", "iterations=1", "window=16384"], None),
        ("py_mp_pool", [PY, "bench/py_bench.py", "rate_pool", "--jobs", str(P["py_rate_jobs"])], None),
        ("py_executor", [PY, "bench/py_bench.py", "rate_executor", "--jobs", str(P["py_rate_jobs"])], None),
    ], P["rate_runs"], "per-job overhead (jobs/s)")
    lat = interleave([
        ("md5pool", [pb, "latency", f"samples={P['lat_samples']}"], None),
        ("py_mp_pool", [PY, "bench/py_bench.py", "latency_pool", "--samples", str(P["py_lat_samples"])], None),
        ("py_executor", [PY, "bench/py_bench.py", "latency_executor", "--samples", str(P["py_lat_samples"])], None),
        ("floor2", [pb, "floor", "hops=2", f"samples={P['lat_samples']}"], None),
        ("floor3", [pb, "floor", "hops=3", f"samples={P['lat_samples']}"], None),
    ], P["lat_runs"], "per-job overhead (latency)")
    out = {}
    for k in ("floor2", "floor3"):
        rs = lat.pop(k)
        out[k] = {"p50_us": median([r["p50_us"] for r in rs]), "p99_us": median([r["p99_us"] for r in rs])}
    for k in rate:
        out[k] = {"jobs_per_s": median([r["jobs_per_s"] for r in rate[k]]),
                  "jobs": rate[k][0]["jobs"],
                  "samples_jobs_per_s": [r["jobs_per_s"] for r in rate[k]],
                  "p50_us": median([r["p50_us"] for r in lat[k]]),
                  "p99_us": median([r["p99_us"] for r in lat[k]]),
                  "latency_samples": lat[k][0]["samples"], "runs": len(rate[k])}
        if k == "md5pool":
            out[k]["host_cpu_per_job_us"] = median([r["host_cpu"] / r["jobs"] * 1e6 for r in rate[k]])
    return out


def section_scaling(P, cores):
    pb = os.path.join(OUT, "pool_bench")
    counts = list(range(1, 2 * cores + 1))
    v = []
    for w in counts:
        for eng in ("default", "scalar"):
            env = None if eng == "default" else {"MD5POOL_KERNEL": eng}
            v.append((f"{eng}:{w}", [pb, "pool", f"jobs={P['scale_jobs']}", f"iterations={P['scale_iter']}",
                                     f"workers={w}", "warm=1"], env))
    res = interleave(v, P["scale_runs"], "scaling")
    out = {"jobs": P["scale_jobs"], "iterations": P["scale_iter"], "workers": counts, "default": {}, "scalar": {}}
    for key, rs in res.items():
        eng, w = key.split(":")
        out[eng][w] = median([r["jobs_per_s"] for r in rs])
    return out


def section_respawn(P):
    pb = os.path.join(OUT, "pool_bench")
    res = interleave([("md5pool", [pb, "respawn", f"reps={P['respawn_reps']}", "workers=1"], None)],
                     P["respawn_runs"], "respawn")["md5pool"]
    return {"p50_ms": median([r["p50_ms"] for r in res]), "max_ms": max(r["max_ms"] for r in res),
            "min_ms": min(r["min_ms"] for r in res), "reps": res[0]["reps"], "runs": len(res),
            "retried": sum(r["retried"] for r in res), "restarts": sum(r["restarts"] for r in res)}


def engines_supported(flags):
    e = ["scalar"]
    if "avx2" in flags:
        e.append("avx2")
    if {"avx512f", "avx512bw", "avx512vbmi", "avx512_vbmi2"} <= flags:
        e.append("avx512")
    return e


def section_engines(P, cores, flags, have_openssl):
    pb = os.path.join(OUT, "pool_bench")
    engines = engines_supported(flags)
    it = P["eng_iter"]
    v = []
    for eng in engines:
        for w in sorted({1, cores}):
            jobs = P["eng_jobs"][eng] * w
            v.append((f"{eng}:{w}", [pb, "pool", f"jobs={jobs}", f"iterations={it}", f"workers={w}", "warm=1"],
                      {"MD5POOL_KERNEL": eng}))
    if have_openssl:
        v.append(("openssl:1", [os.path.join(OUT, "openssl_chain"), str(it), "4"], None))
    res = interleave(v, P["eng_runs"], "engines")
    # Rates in 1M-iteration job equivalents, per CPU second (load-independent) and per core by wall.
    scale = it / 1e6
    out = {"iterations": it, "engines": engines, "rows": {}}
    for key, rs in res.items():
        eng, w = key.split(":")
        w = int(w)
        if eng == "openssl":
            out["rows"][key] = {"engine": eng, "workers": 1, "jobs": rs[0]["jobs"],
                                "per_cpu_s": median([r["jobs"] * scale / r["cpu"] for r in rs]),
                                "per_core_wall": median([r["jobs"] * scale / r["wall"] for r in rs])}
        else:
            out["rows"][key] = {"engine": eng, "workers": w, "jobs": rs[0]["jobs"],
                                "jobs_per_s": median([r["jobs_per_s"] for r in rs]),
                                "per_cpu_s": median([r["jobs"] * scale / r["workers_cpu"] for r in rs]),
                                "per_core_wall": median([r["jobs_per_s"] * scale / min(w, cores) for r in rs])}
    return out


def section_mixed(P):
    """Short jobs beside long ones (the long jobs hold every worker), and a cancel among 64."""
    pb = os.path.join(OUT, "pool_bench")
    v = [(f"mixed:{w}", [pb, "mixed", f"workers={w}", f"long_iterations={P['mixed_long_iter']}"], None)
         for w in (2, 1)]
    v += [(f"cancel:{c}", [pb, "cancel", "jobs=64", f"iterations={P['cancel_iter']}", f"cancel={c}"], None)
          for c in (0, 1)]
    res = interleave(v, P["mixed_runs"], "mixed sizes")
    out = {}
    for key, rs in res.items():
        out[key] = {k: median([r[k] for r in rs]) for k in rs[0] if isinstance(rs[0][k], (int, float))}
        out[key]["max_ms"] = max(r.get("max_ms", 0.0) for r in rs)
    return out


def section_kernel_bench(P, built):
    if not built:
        return {"lines": [], "note": "examples/kernel_bench.rs not present or did not build"}
    cmd = ["cargo", "run", "--release", "--quiet", "--example", "kernel_bench", "--",
           str(P["kb_iter"]), str(P["kb_runs"])]
    log("bench: " + " ".join(cmd))
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1800)
    lines = p.stdout.strip().splitlines()
    note = "" if p.returncode == 0 else f"exited {p.returncode}: {p.stderr.strip()[-500:]}"
    return {"cmd": " ".join(cmd), "lines": lines, "note": note}


# ------------------------------------------------------------------ report
def fmt_s(x):
    return f"{x:.3f} s" if x >= 0.1 else f"{x * 1e3:.1f} ms"


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def verdict(ok, miss_text):
    return "met" if ok else f"**MISSED** ({miss_text})"


def build_rows(R):
    """One table: (section, variant, median, ratio, target)."""
    rows = []
    K = R["kernel"]
    it = R["plan"]["kernel_iter"]
    ref = K.get("openssl")
    mp = K["md5pool"]
    sec = f"kernel: 1 job, md5chain(\"Hello World\", {it:,})"
    rows.append((sec, "md5pool pool_md5_chain (scalar, this thread)",
                 f"{fmt_s(mp['wall'])} wall, {fmt_s(mp['cpu'])} CPU",
                 (f"{mp['cpu'] / ref['cpu']:.2f}x OpenSSL's CPU time ({mp['wall'] / ref['wall']:.2f}x wall)" if ref else "-"),
                 (f"<= 0.85x OpenSSL: " + verdict(mp["cpu"] / ref["cpu"] <= 0.85,
                                                  f"{mp['cpu'] / ref['cpu']:.2f}x") if ref else "OpenSSL n/a")))
    if ref:
        rows.append((sec, f"C loop over OpenSSL MD5 ({ref.get('version', '')})",
                     f"{fmt_s(ref['wall'])} wall, {fmt_s(ref['cpu'])} CPU", "1.00x", ""))
    py = K["python"]
    rows.append((sec, "Python 3 hashlib (the seed's loop)", f"{fmt_s(py['wall'])} wall, {fmt_s(py['cpu'])} CPU",
                 f"md5pool is {py['cpu'] / mp['cpu']:.2f}x faster (CPU; {py['wall'] / mp['wall']:.2f}x wall; "
                 f"{fastest_ratio(py, mp):.2f}x fastest vs fastest)",
                 ">= 2.5x: " + verdict(py["cpu"] / mp["cpu"] >= 2.5, f"{py['cpu'] / mp['cpu']:.2f}x")))

    S = R["seed"]
    cores = S["cores"]
    serial = S["c_serial"]["wall"]
    ideal = serial / cores
    sec = f"seed experiment: {S['jobs']} jobs x {S['iterations']:,} it., {cores} cores (wall, start to finish)"
    py_walls = [S[k]["wall"] for k in ("py_serial", "py_process", "py_pipe", "py_mp_pool", "py_executor")]
    names = {"c_serial": "C serial (pool_md5_chain loop)", "c_fork": "C one fork() per job",
             "c_pool_scalar": "md5pool pool, MD5POOL_KERNEL=scalar", "c_pool_default": "md5pool pool, default engine",
             "py_serial": "Python seed 1: serial loop", "py_process": "Python seed 2: Process per job",
             "py_pipe": "Python seed 3: Pipe-fed workers", "py_mp_pool": "Python multiprocessing.Pool",
             "py_executor": "Python ProcessPoolExecutor"}
    for k in ("c_serial", "c_fork", "c_pool_scalar", "c_pool_default", "py_serial", "py_process", "py_pipe",
              "py_mp_pool", "py_executor"):
        d = S[k]
        target = ""
        ratio = f"{serial / d['wall']:.2f}x C serial speed; {d['wall'] / ideal:.2f}x (serial/cores)"
        if "cpu" in d and k != "c_serial":
            ratio += f"; CPU {d['cpu']:.2f} s = {d['cpu'] / S['c_serial']['cpu']:.3f}x serial's"
        if k.startswith("c_pool"):
            ok1 = d["wall"] <= 1.05 * ideal
            ok2 = d["wall"] < min(py_walls)
            target = ("<= 1.05x serial/cores: " + verdict(ok1, f"{d['wall'] / ideal:.2f}x")
                      + "; faster than every Python variant: "
                      + verdict(ok2, f"{d['wall'] / min(py_walls):.2f}x the best"))
            extra = f" (create {fmt_s(d['create'])}, run {fmt_s(d['run'])}, destroy {fmt_s(d['destroy'])})"
        else:
            extra = ""
        if k == "c_serial":
            extra = f" ({d['cpu']:.2f} s CPU)"
        rows.append((sec, names[k], fmt_s(d["wall"]) + extra, ratio, target))

    O = R["overhead"]
    sec = f"per-job overhead: 1-iteration jobs ({O['md5pool']['jobs']:,} for md5pool, {O['py_mp_pool']['jobs']:,} for Python)"
    m = O["md5pool"]
    for k, name in (("md5pool", "md5pool pool_submit / pool_wait_any (window 16384)"),
                    ("py_mp_pool", "multiprocessing.Pool.apply_async"),
                    ("py_executor", "ProcessPoolExecutor.submit")):
        d = O[k]
        val = f"{fmt_rate(d['jobs_per_s'])} jobs/s; latency p50 {d['p50_us']:.1f} us, p99 {d['p99_us']:.1f} us"
        if k == "md5pool":
            r_mp = d["jobs_per_s"] / O["py_mp_pool"]["jobs_per_s"]
            ratio = f"{r_mp:.1f}x multiprocessing.Pool's jobs/s, {d['jobs_per_s'] / O['py_executor']['jobs_per_s']:.1f}x the executor's"
            target = (">= 20x mp.Pool: " + verdict(r_mp >= 20, f"{r_mp:.1f}x")
                      + "; p50 < 20 us: " + verdict(d["p50_us"] < 20, f"{d['p50_us']:.1f} us"))
        else:
            ratio = f"{d['jobs_per_s'] / m['jobs_per_s']:.3f}x md5pool's jobs/s; p50 {d['p50_us'] / m['p50_us']:.1f}x md5pool's"
            target = ""
        rows.append((sec, name, val, ratio, target))
    for k, name in (("floor2", "floor, no pool: socketpair round trip to a child process (2 wake-ups)"),
                    ("floor3", "floor, no pool: same + relay thread in epoll_wait + condvar (the pool's 3 wake-ups)")):
        if k in O:
            rows.append((sec, name, f"latency p50 {O[k]['p50_us']:.1f} us, p99 {O[k]['p99_us']:.1f} us",
                         f"md5pool's p50 is {m['p50_us'] / O[k]['p50_us']:.2f}x this", ""))

    C = R["scaling"]
    sec = f"scaling: {C['jobs']} jobs x {C['iterations']:,} it., jobs/s by workers"
    for eng in ("default", "scalar"):
        base = C[eng]["1"]
        parts = [f"{w}: {fmt_rate(C[eng][str(w)])}" for w in C["workers"]]
        best = max(C[eng].values())
        rows.append((sec, f"md5pool, {'default engine' if eng == 'default' else 'MD5POOL_KERNEL=scalar'}",
                     ", ".join(parts), f"best {best / base:.2f}x 1 worker", ""))

    Rs = R["respawn"]
    rows.append(("worker respawn: SIGKILL the only worker, submit a 1-iteration job, wait",
                 "md5pool (workers=1)", f"p50 {Rs['p50_ms']:.2f} ms (min {Rs['min_ms']:.2f}, max {Rs['max_ms']:.2f})",
                 f"{Rs['reps']} kills x {Rs['runs']} runs", ""))

    E = R["engines"]
    sec = (f"engines through the pool: 1M-iteration jobs per CPU-second of the workers (jobs of "
           f"{E['iterations']:,} it.); per core by wall in brackets")
    ossl = E["rows"].get("openssl:1")
    for key, d in E["rows"].items():
        if d["engine"] == "openssl":
            continue
        val = (f"{fmt_rate(d['per_cpu_s'])} per CPU-s ({fmt_rate(d['per_core_wall'])} per core by wall; "
               f"{d['jobs']} jobs)")
        ratio = (f"{d['per_cpu_s'] / ossl['per_cpu_s']:.2f}x the OpenSSL loop "
                 f"({d['per_core_wall'] / ossl['per_core_wall']:.2f}x by wall)") if ossl else "-"
        rows.append((sec, f"MD5POOL_KERNEL={d['engine']}, workers={d['workers']}", val, ratio, ""))
    if ossl:
        rows.append((sec, "C loop over OpenSSL MD5, 1 process", f"{fmt_rate(ossl['per_cpu_s'])} per CPU-s "
                     f"({fmt_rate(ossl['per_core_wall'])} by wall; {ossl['jobs']} jobs)", "1.00x", ""))
    return rows


def table_md(rows):
    out = ["| benchmark | variant | median | ratio | target |", "|---|---|---|---|---|"]
    last = None
    for sec, name, val, ratio, target in rows:
        out.append(f"| {sec if sec != last else ''} | {name} | {val} | {ratio} | {target} |")
        last = sec
    return "\n".join(out)


def table_text(rows):
    out, last = [], None
    for sec, name, val, ratio, target in rows:
        if sec != last:
            out.append("")
            out.append(sec)
            last = sec
        out.append(f"  {name:<52} {val}")
        if ratio and ratio != "-":
            out.append(f"  {'':<52}   {ratio}")
        if target:
            out.append(f"  {'':<52}   target {target.replace('**', '')}")
    return "\n".join(out)


# ---------------------------------------------------------------------- SVG
def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(R):
    """Two panels: jobs/s vs workers (scaling), and the seed experiment's variants as bars."""
    W, H = 1000, 430
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>']
    # --- panel 1: scaling
    C = R["scaling"]
    x0, y0, pw, ph = 70, 50, 360, 300
    ws = C["workers"]
    ymax = max([v for e in ("default", "scalar") for v in C[e].values()] + [1e-9]) * 1.1
    parts.append(f'<text x="{x0 + pw / 2}" y="25" text-anchor="middle" font-size="14" font-weight="bold">'
                 f'Scaling: {C["jobs"]} jobs x {C["iterations"]:,} iterations</text>')
    parts.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    for i in range(6):
        v = ymax * i / 5
        y = y0 + ph - ph * i / 5
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt_rate(v)}</text>')

    def xpos(w):
        return x0 + (pw * (w - 1) / (len(ws) - 1) if len(ws) > 1 else pw / 2)
    for w in ws:
        parts.append(f'<text x="{xpos(w):.1f}" y="{y0 + ph + 16}" text-anchor="middle">{w}</text>')
    parts.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 34}" text-anchor="middle">workers</text>')
    parts.append(f'<text x="18" y="{y0 + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {y0 + ph / 2})">'
                 'jobs/s</text>')
    for eng, color in (("default", "#1f77b4"), ("scalar", "#d62728")):
        pts = [(xpos(w), y0 + ph - ph * C[eng][str(w)] / ymax) for w in ws]
        parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                     % (color, " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)))
        for (x, y), w in zip(pts, ws):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
            parts.append(f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" font-size="10" fill="{color}">'
                         f'{fmt_rate(C[eng][str(w)])}</text>')
    cores = R["seed"]["cores"]
    xc = xpos(cores)
    parts.append(f'<line x1="{xc:.1f}" y1="{y0}" x2="{xc:.1f}" y2="{y0 + ph}" stroke="#999" stroke-dasharray="4,3"/>')
    parts.append(f'<text x="{xc + 4:.1f}" y="{y0 + 12}" fill="#666">{cores} cores</text>')
    ly = y0 + ph + 55
    for i, (eng, color, label) in enumerate((("default", "#1f77b4", "default engine"),
                                             ("scalar", "#d62728", "MD5POOL_KERNEL=scalar"))):
        lx = x0 + i * 180
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{lx + 30}" y="{ly + 4}">{label}</text>')
    # --- panel 2: the seed experiment, wall time bars (shorter is better)
    S = R["seed"]
    bx0, by0, bw = 690, 50, 280
    items = [("C serial", S["c_serial"]["wall"], "#7f7f7f"), ("C fork per job", S["c_fork"]["wall"], "#7f7f7f"),
             ("md5pool, scalar", S["c_pool_scalar"]["wall"], "#d62728"),
             ("md5pool, default", S["c_pool_default"]["wall"], "#1f77b4"),
             ("Py serial", S["py_serial"]["wall"], "#ff7f0e"), ("Py Process/job", S["py_process"]["wall"], "#ff7f0e"),
             ("Py Pipe workers", S["py_pipe"]["wall"], "#ff7f0e"), ("Py mp.Pool", S["py_mp_pool"]["wall"], "#ff7f0e"),
             ("Py Executor", S["py_executor"]["wall"], "#ff7f0e")]
    tmax = max(t for _, t, _ in items) * 1.15
    parts.append(f'<text x="{bx0 - 110 + (bw + 110) / 2}" y="25" text-anchor="middle" font-size="14" '
                 f'font-weight="bold">Seed experiment: {S["jobs"]} jobs x {S["iterations"]:,} it. (wall s)</text>')
    bh = 300 / len(items)
    for i, (name, t, color) in enumerate(items):
        y = by0 + i * bh
        L = bw * t / tmax
        parts.append(f'<text x="{bx0 - 6}" y="{y + bh / 2 + 4:.1f}" text-anchor="end">{esc(name)}</text>')
        parts.append(f'<rect x="{bx0}" y="{y + 4:.1f}" width="{L:.1f}" height="{bh - 8:.1f}" fill="{color}"/>')
        parts.append(f'<text x="{bx0 + L + 4:.1f}" y="{y + bh / 2 + 4:.1f}">{t:.2f}</text>')
    ideal = S["c_serial"]["wall"] / cores
    xi = bx0 + bw * ideal / tmax
    parts.append(f'<line x1="{xi:.1f}" y1="{by0}" x2="{xi:.1f}" y2="{by0 + 300}" stroke="#2ca02c" '
                 'stroke-dasharray="4,3"/>')
    parts.append(f'<text x="{xi + 3:.1f}" y="{by0 + 315}" fill="#2ca02c">C serial / {cores} cores</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" fill="#666" font-size="11">'
                 f'md5pool bench, {esc(R["meta"]["date"])}, {esc(R["meta"]["cpu"])}, {cores} CPUs; medians</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------- markdown
def write_md(R, rows, path, svg_rel, json_rel):
    M = R["meta"]
    P = R["plan"]
    K = R["kernel_bench"]
    O = R["overhead"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); every number below comes from one run of it on one machine,",
        "and every ratio compares numbers measured in that same run. Do not edit by hand: re-run `make bench`.",
        "",
        "## Machine and run",
        "",
        f"- CPU: {M['cpu']} ({M['cores']} CPUs usable by the bench; SIMD flags: {M['simd']})",
        f"- Kernel: {M['kernel']}; Python {M['python']}; {M.get('openssl') or 'OpenSSL: n/a'}; C compiler: {M['cc']}",
        f"- md5pool {M['version']} at git {M['git']}"
        + (f" with {M['dirty']} uncommitted change(s) under src/ (engines in progress)" if M["dirty"] else "")
        + f"; library snapshot sha256 {M['so_sha']}",
        f"- Date: {M['date']}; whole bench took {M['elapsed_s'] / 60:.1f} min",
        f"- Load average (1/5/15 min) before: {M['load_before']}, after: {M['load_after']}"
        + ("; highest 1-min load seen after each measurement, by section (the bench itself adds up to ~2 while a"
           " pool runs): " + ", ".join(f"{k} {v:.1f}" for k, v in M.get("load_max_by_section", {}).items())
           if M.get("load_max_by_section") else "")
        + (" -- **the machine was busy at times** (other engineers' builds/tests): wall times of those sections are"
           " inflated and noisier; CPU-time figures are given beside them" if max(
               [M['load_before'][0], M['load_after'][0]] + list(M.get("load_max_by_section", {}).values()))
           > M['cores'] + 1 else ""),
        "",
        "Commands (from the repository root):",
        "",
        "```sh",
        "make bench                 # = make lib && python3 bench/run.py  (about 10 minutes on a quiet machine)",
        "make bench BENCH_QUICK=1   # small sizes, writes build/bench/ only (about 1 minute)",
        "make bench BENCH_RUNS=5    # more runs per variant",
        "# pieces, one measurement each, JSON on stdout:",
        "build/bench/pool_bench kernel|serial|fork|pool|rate|latency|floor|respawn|mixed|cancel [key=value]...",
        "build/bench/openssl_chain [iterations] [jobs]",
        "python3 bench/seed_python.py serial|process|pipe [--jobs N] [--iterations N]",
        "python3 bench/py_bench.py kernel|pool|executor|rate_pool|rate_executor|latency_pool|latency_executor",
        f"{K.get('cmd', 'cargo run --release --example kernel_bench')}",
        "```",
        "",
        "How each number is taken: every variant of a section runs once per round, rounds repeat"
        f" ({P['kernel_runs']} for the kernel, {P['seed_runs']} for the seed experiment, {P['rate_runs']} for"
        f" overhead, {P['scale_runs']} for scaling, {P['eng_runs']} for engines), and the table shows the median.",
        "Everything runs sequentially (one program at a time). Single-thread kernel ratios use CPU time"
        " (clock_gettime CPUTIME / time.thread_time), which other processes on the machine do not inflate; wall"
        " time is shown beside it. Pool figures are wall time.",
        "",
        "## Results",
        "",
        table_md(rows),
        "",
        f"![jobs/s vs workers, and the seed experiment's variants]({svg_rel})",
        "",
        "### The kernel engineer's in-process engine benchmark",
        "",
    ]
    if K["lines"]:
        lines += ["```", f"$ {K['cmd']}", *K["lines"], "```"]
    else:
        lines.append(f"Not run: {K.get('note', '')}")
    if K.get("note") and K["lines"]:
        lines.append(f"(note: {K['note']})")
    if "mixed" in R:
        lines += ["", "## Mixed sizes", "", *mixed_md(R["mixed"])]
    lines += ["", "## Targets", ""]
    lines += [f"- {t}" for t in R["targets"]]
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in R["notes"]]
    analysis = os.path.join(BENCH, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            lines += ["", f.read().rstrip()]
    # The Redis module's section, measured by bench/redis_bench.py (make bench-redis).
    redis_section = os.path.join(BENCH, "redis.md")
    if os.path.exists(redis_section):
        with open(redis_section) as f:
            lines += ["", f.read().rstrip()]
    lines += ["", f"Raw results (every run): [{json_rel}]({json_rel}).", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def mixed_md(X):
    """Short jobs beside long ones, and a cancel among 64: the continuous lanes at work."""
    rows = ["Short jobs submitted one at a time (each waited for, then a 0.5 ms pause) while long jobs hold"
            " every worker; the long jobs' wall time alone and with the short ones beside them.", "",
            "| workers | long jobs | short jobs | short p50 | short p99 | short max | long alone | long beside |"
            " short jobs' CPU |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in (2, 1):
        m = X[f"mixed:{w}"]
        rows.append(f"| {w} | {m['longs']:.0f} x {m['long_iterations']:,.0f} it. | {m['shorts']:,.0f} x"
                    f" {m['short_iterations']:,.0f} it. | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms |"
                    f" {m['max_ms']:.2f} ms | {m['long_alone']:.3f} s | {m['long_beside']:.3f} s |"
                    f" {m['short_cpu_total']:.3f} s |")
    c0, c1 = X["cancel:0"], X["cancel:1"]
    rows += ["", f"Cancel: one worker runs 64 jobs of {c0['iterations']:,.0f} iterations together; 0.1 s in, one"
             f" is canceled. The other 63 finish in {c1['wall']:.3f} s (all 64 without a cancel:"
             f" {c0['wall']:.3f} s), with {c1['worker_restarts']:.0f} worker restarts: the worker drops the"
             " canceled job and its other lanes keep their progress."]
    return rows


def fastest_ratio(slow, fast):
    """Ratio of the two variants' fastest runs (wall): robust to one variant's run-to-run spread."""
    return min(slow["samples_wall"]) / min(fast["samples_wall"])


def targets_and_notes(R):
    T, N = [], []
    K, S, O = R["kernel"], R["seed"], R["overhead"]
    mp = K["md5pool"]
    if "openssl" in K:
        r = mp["cpu"] / K["openssl"]["cpu"]
        T.append(f"pool_md5_chain <= 0.85x the OpenSSL loop's time: {'met' if r <= 0.85 else 'MISSED'} "
                 f"({r:.2f}x CPU time, {mp['wall'] / K['openssl']['wall']:.2f}x wall)")
    r = K["python"]["cpu"] / mp["cpu"]
    T.append(f"pool_md5_chain >= 2.5x faster than Python: {'met' if r >= 2.5 else 'MISSED'} ({r:.2f}x CPU time, "
             f"{K['python']['wall'] / mp['wall']:.2f}x wall; fastest run vs fastest run "
             f"{fastest_ratio(K['python'], mp):.2f}x)")
    ideal = S["c_serial"]["wall"] / S["cores"]
    best_py = min(S[k]["wall"] for k in ("py_serial", "py_process", "py_pipe", "py_mp_pool", "py_executor"))
    for k, name in (("c_pool_scalar", "scalar-forced pool"), ("c_pool_default", "default pool")):
        r = S[k]["wall"] / ideal
        T.append(f"{name} wall <= 1.05x (C serial / {S['cores']} cores): {'met' if r <= 1.05 else 'MISSED'} "
                 f"({r:.2f}x; {S[k]['wall']:.2f} s vs {ideal:.2f} s)")
        T.append(f"  {name} CPU (workers + host) = {S[k]['cpu'] / S['c_serial']['cpu']:.3f}x the serial loop's CPU "
                 "(load-independent: what the pool adds to the work itself)")
        T.append(f"{name} faster than every Python variant: {'met' if S[k]['wall'] < best_py else 'MISSED'} "
                 f"({S[k]['wall']:.2f} s vs the best Python {best_py:.2f} s)")
    r = O["md5pool"]["jobs_per_s"] / O["py_mp_pool"]["jobs_per_s"]
    T.append(f">= 20x multiprocessing.Pool's jobs/s: {'met' if r >= 20 else 'MISSED'} ({r:.1f}x: "
             f"{O['md5pool']['jobs_per_s']:,.0f} vs {O['py_mp_pool']['jobs_per_s']:,.0f} jobs/s)")
    p50 = O["md5pool"]["p50_us"]
    T.append(f"p50 submit-to-result latency < 20 us: {'met' if p50 < 20 else 'MISSED'} ({p50:.1f} us)")
    if "mixed" in R:
        X = R["mixed"]
        for w in (2, 1):
            m = X[f"mixed:{w}"]
            T.append(f"short jobs ({m['short_iterations']:,.0f} it.) beside {m['longs']:.0f} long one(s) "
                     f"({m['long_iterations']:,.0f} it.) on {w} busy worker(s): p99 < 2 ms: "
                     f"{'met' if m['p99_ms'] < 2 else 'MISSED'} (p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms,"
                     f" max {m['max_ms']:.2f} ms over {m['shorts']:,.0f} short jobs)")
            bound = m["long_alone"] + m["short_cpu_total"] / w
            r = m["long_beside"] / bound
            T.append(f"  long jobs' time with the short ones beside them <= (alone + the short jobs' CPU time"
                     f" per worker) + 10%: {'met' if r <= 1.10 else 'MISSED'} ({r:.3f}x: {m['long_beside']:.3f} s"
                     f" vs {m['long_alone']:.3f} s alone + {m['short_cpu_total'] / w:.3f} s)")
        c0, c1 = X["cancel:0"], X["cancel:1"]
        T.append(f"cancel of one running job among 64 on one worker: no fork, the others keep their progress: "
                 f"{'met' if c1['worker_restarts'] == 0 and c1['wall'] <= c0['wall'] * 1.10 else 'MISSED'}"
                 f" ({c1['worker_restarts']:.0f} worker restarts; the other 63 took {c1['wall']:.3f} s vs"
                 f" {c0['wall']:.3f} s for all 64 without a cancel)")
    # Notes that explain where time goes.
    sc = S["c_pool_scalar"]
    N.append(f"Seed experiment, scalar pool: create {sc['create'] * 1e3:.1f} ms, submit-to-last-result "
             f"{sc['run']:.3f} s, destroy {sc['destroy'] * 1e3:.1f} ms; C serial {S['c_serial']['wall']:.3f} s "
             f"({S['c_serial']['cpu']:.3f} s CPU). {S['jobs']} jobs on {S['cores']} workers: the last round of jobs"
             " decides the tail, so with a job count that does not divide evenly, serial/cores is not reachable"
             " exactly.")
    if "floor3" in O:
        N.append(f"Latency floors on this machine, same run: a bare socketpair round trip to a child process "
                 f"{O['floor2']['p50_us']:.1f} us p50; with the pool's shape (answer read by a relay thread in "
                 f"epoll_wait, handed over with a condvar) {O['floor3']['p50_us']:.1f} us. md5pool's "
                 f"{O['md5pool']['p50_us']:.1f} us is {O['md5pool']['p50_us'] - O['floor3']['p50_us']:.1f} us above "
                 "the floor of its own design; see 'Where the time goes'.")
    N.append(f"md5pool host CPU per 1-iteration job: {O['md5pool'].get('host_cpu_per_job_us', float('nan')):.2f} us "
             "(submit + wait_any, dispatcher thread included).")
    N.append("The Python seed programs are a Python 3 port of the seed's loop (`m.update(msg); msg = "
             "m.hexdigest().encode()`); the seed's slow per-process initialization is set to 0 here on every"
             " side (C and Python) so the rows compare the work and the plumbing; `make demo` shows it with a"
             " delay.")
    N.append("Respawn: with workers=1 the job cannot go to another worker, so the time is detection of the"
             f" death + fork of the replacement by the fork server + its start + one job; {R['respawn']['retried']}"
             f" of {R['respawn']['reps'] * R['respawn']['runs']} jobs were retried (sent to the dead worker before"
             " its death was seen).")
    return T, N


# --------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes; write build/bench/ only")
    ap.add_argument("--runs", type=int, default=0, help="rounds per section (default: per section)")
    ap.add_argument("--report-only", metavar="JSON",
                    help="measure nothing: rewrite the report (markdown, SVG, table) from a results JSON")
    args = ap.parse_args()
    t_start = time.time()
    os.makedirs(OUT, exist_ok=True)
    if args.report_only:
        with open(args.report_only) as f:
            R = json.load(f)
        return report(R, R["meta"]["quick"], rewrite_json=False)

    have_openssl = ensure_openssl()
    so_sha = build(have_openssl)
    kb_built = build_kernel_bench()
    model, flags = cpu_info()
    info = run_json([os.path.join(OUT, "pool_bench"), "cpus"])
    cores = info["cpus"]
    git, dirty = git_state()
    P = plan(args.quick, args.runs)
    load_before = loadavg()
    log(f"bench: {model}, {cores} CPUs, load {load_before}, {'quick' if args.quick else 'full'} run")

    R = {"plan": {k: v for k, v in P.items()}}
    R["kernel"] = section_kernel(P, have_openssl)
    R["seed"] = section_seed(P, cores)
    R["overhead"] = section_overhead(P)
    R["scaling"] = section_scaling(P, cores)
    R["respawn"] = section_respawn(P)
    R["engines"] = section_engines(P, cores, flags, have_openssl)
    R["kernel_bench"] = section_kernel_bench(P, kb_built)
    R["mixed"] = section_mixed(P)
    cc = subprocess.run([os.environ.get("CC", "cc"), "--version"], stdout=subprocess.PIPE, text=True).stdout
    R["meta"] = {"cpu": model, "cores": cores, "simd": " ".join(sorted(f for f in flags if f.startswith("avx"))),
                 "kernel": platform.release(), "python": platform.python_version(),
                 "openssl": R["kernel"].get("openssl", {}).get("version"), "cc": cc.splitlines()[0] if cc else "?",
                 "version": info["version"], "git": git, "dirty": dirty, "so_sha": so_sha,
                 "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "load_before": load_before,
                 "load_after": loadavg(), "elapsed_s": time.time() - t_start, "quick": args.quick,
                 "load_max_by_section": {}}
    for label, la in LOADS:
        sec = R["meta"]["load_max_by_section"]
        sec[label] = max(sec.get(label, 0.0), la)
    R["meta"]["version_info"] = info
    return report(R, args.quick, rewrite_json=True)


def report(R, quick, rewrite_json):
    info = R["meta"].get("version_info", {"version": R["meta"]["version"]})
    model, cores, load_before = R["meta"]["cpu"], R["meta"]["cores"], R["meta"]["load_before"]
    R["targets"], R["notes"] = targets_and_notes(R)
    rows = build_rows(R)

    if quick:
        md, js, svg = (os.path.join(OUT, n) for n in ("BENCHMARKS.quick.md", "results.quick.json", "bench.quick.svg"))
        svg_rel, json_rel = "bench.quick.svg", "results.quick.json"
    else:
        md, js, svg = os.path.join(ROOT, "BENCHMARKS.md"), os.path.join(BENCH, "results.json"), \
            os.path.join(BENCH, "bench.svg")
        svg_rel, json_rel = "bench/bench.svg", "bench/results.json"
    if rewrite_json:
        with open(js, "w") as f:
            json.dump(R, f, indent=1, sort_keys=True)
    with open(svg, "w") as f:
        f.write(svg_chart(R))
    write_md(R, rows, md, svg_rel, json_rel)

    print(f"md5pool {info['version']} benchmarks: {model}, {cores} CPUs, load {load_before} -> "
          f"{R['meta']['load_after']}, {R['meta']['elapsed_s']:.0f} s" + (" (QUICK sizes)" if quick else ""))
    print(table_text(rows))
    if R["kernel_bench"]["lines"]:
        print("\nkernel_bench (" + R["kernel_bench"]["cmd"] + "):")
        for ln in R["kernel_bench"]["lines"]:
            print("  " + ln)
    print("\nTargets:")
    for t in R["targets"]:
        print("  - " + t)
    print(f"\nwrote {os.path.relpath(md, ROOT)}, {os.path.relpath(js, ROOT)}, {os.path.relpath(svg, ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
