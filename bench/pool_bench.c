/*
 * pool_bench.c: one timed measurement of libmd5pool per invocation, printed as one
 * JSON object on stdout. bench/run.py runs it many times (interleaved with the other
 * variants) and takes medians; nothing here decides whether a number is good.
 *
 *   pool_bench MODE [key=value]...
 *
 * Modes (keys and defaults in brackets):
 *   kernel     pool_md5_chain once in this thread                 [iterations=1000000]
 *   serial     `jobs` pool_md5_chain calls in this thread          [jobs=100 iterations=1000000]
 *   fork       one fork()ed process per job, all at once           [jobs=100 iterations=1000000]
 *   pool       the seed's experiment through a pool: wall time from pool_create to
 *              pool_destroy (also: create time, submit-to-last-result time)
 *                                                                  [jobs=100 iterations=1000000 workers=0]
 *   rate       jobs/s on a warmed-up pool: submit `jobs` jobs (at most `window` outstanding),
 *              collect with pool_wait_any                          [jobs=100000 iterations=1 workers=0 window=16384]
 *   latency    submit one job, pool_wait it, repeat `samples` times (after `warmup`)
 *                                                                  [samples=10000 warmup=200 iterations=1 workers=0]
 *   floor      no pool: the latency floor of the same round trip on this machine, to show
 *              where the pool's latency goes. hops=2: this thread writes 64 bytes to a child
 *              process over a socketpair, the child answers, this thread reads it (2 wake-ups).
 *              hops=3: the pool's shape: the answer goes to a relay thread blocked in
 *              epoll_wait, which hands it to this thread with a mutex + condvar (3 wake-ups).
 *                                                                  [samples=10000 warmup=200 hops=2]
 *   respawn    workers=1: SIGKILL the worker, then submit a 1-iteration job and wait for it;
 *              `reps` times                                        [reps=20 workers=1]
 *   mixed      `longs` long jobs hold the workers while short ones stream beside them, one
 *              submitted and waited for every `gap_us`: the short jobs' latency, the long
 *              jobs' wall time with that stream and alone, and the short jobs' CPU time
 *                                                                  [workers=2 longs=workers
 *                                                                   long_iterations=50000000
 *                                                                   short_iterations=1000 gap_us=500]
 *   cancel     workers=1: `jobs` jobs run together; one is canceled mid-way (cancel=1) or
 *              not (cancel=0): wall time of the others, and worker restarts
 *                                                                  [jobs=64 iterations=1000000 cancel=1]
 * Every result is checked against pool_md5_chain (or the known 1M digest); a wrong one
 * makes the run fail (exit 1). The engine is chosen by MD5POOL_KERNEL as usual.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <md5pool.h>

#define MESSAGE "Hello World"
#define DIGEST_1M "1e4110cf294414bc2ac346ad274a7af3"

/* ------------------------------------------------------------ helpers */

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_cpu(void) /* this process, all threads */
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time (user + system) of every terminated, reaped descendant: after pool_destroy this
 * includes the pool's workers (reaped by the fork server, which the pool reaps). */
static double children_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static unsigned cpu_count(void)
{
    cpu_set_t set;
    long n;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

static void die(const char *what, pool_status st)
{
    fprintf(stderr, "pool_bench: %s: %s\n", what, pool_strerror(st));
    exit(1);
}

static int argc_g;
static char **argv_g;

/* key=value from the command line, or the default. */
static uint64_t arg_u64(const char *key, uint64_t dflt)
{
    size_t klen = strlen(key);
    int k;
    for (k = 2; k < argc_g; k++) {
        if (strncmp(argv_g[k], key, klen) == 0 && argv_g[k][klen] == '=') {
            char *end;
            unsigned long long v;
            errno = 0;
            v = strtoull(argv_g[k] + klen + 1, &end, 10);
            if (errno != 0 || *end != '\0') {
                fprintf(stderr, "pool_bench: bad value in '%s'\n", argv_g[k]);
                exit(2);
            }
            return (uint64_t)v;
        }
    }
    return dflt;
}

static void expected_hex(uint64_t iterations, char hex[POOL_HEX_LEN])
{
    pool_status st;
    if (iterations == POOL_DEFAULT_ITERATIONS) {
        memcpy(hex, DIGEST_1M, POOL_HEX_LEN);
        return;
    }
    st = pool_md5_chain(MESSAGE, strlen(MESSAGE), iterations, hex);
    if (st != POOL_OK)
        die("pool_md5_chain", st);
}

static void check_hex(const char *got, const char *want, const char *where)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "pool_bench: %s: wrong result %s, want %s\n", where, got, want);
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static pool *make_pool(uint32_t workers, uint32_t *workers_out)
{
    pool_config cfg;
    pool_stats stats;
    pool *p = NULL;
    pool_status st;
    pool_config_init(&cfg);
    cfg.workers = workers;
    st = pool_create(&cfg, &p);
    if (st != POOL_OK)
        die("pool_create", st);
    if (workers_out != NULL) {
        st = pool_stats_get(p, &stats);
        if (st != POOL_OK)
            die("pool_stats_get", st);
        *workers_out = stats.workers_configured;
    }
    return p;
}

/* One tiny job per worker, waited for: every worker has started and said ready. */
static void warm_up(pool *p, uint32_t workers)
{
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t job;
    uint32_t k;
    pool_status st;
    expected_hex(1, want);
    for (k = 0; k < workers * 2; k++) {
        st = pool_submit(p, MESSAGE, strlen(MESSAGE), 1, &job);
        if (st != POOL_OK)
            die("pool_submit (warm-up)", st);
    }
    for (k = 0; k < workers * 2; k++) {
        st = pool_wait_any(p, -1, &job, hex);
        if (st != POOL_OK)
            die("pool_wait_any (warm-up)", st);
        check_hex(hex, want, "warm-up");
    }
}

/* Submits `jobs` jobs with at most `window` outstanding; collects them all. */
static void run_jobs(pool *p, uint64_t jobs, uint64_t iterations, uint64_t window,
                     const char *want)
{
    uint64_t submitted = 0, collected = 0, job;
    char hex[POOL_HEX_LEN];
    pool_status st;
    while (collected < jobs) {
        while (submitted < jobs && submitted - collected < window) {
            st = pool_submit(p, MESSAGE, strlen(MESSAGE), iterations, &job);
            if (st == POOL_EFULL)
                break;
            if (st != POOL_OK)
                die("pool_submit", st);
            submitted++;
        }
        st = pool_wait_any(p, -1, &job, hex);
        if (st != POOL_OK)
            die("pool_wait_any", st);
        check_hex(hex, want, "pool job");
        collected++;
        /* Drain what is already finished before submitting more. */
        while (collected < submitted) {
            st = pool_wait_any(p, 0, &job, hex);
            if (st == POOL_ETIMEDOUT)
                break;
            if (st != POOL_OK)
                die("pool_wait_any", st);
            check_hex(hex, want, "pool job");
            collected++;
        }
    }
}

static const char *engine_env(void)
{
    const char *e = getenv("MD5POOL_KERNEL");
    return e != NULL && e[0] != '\0' ? e : "default";
}

/* --------------------------------------------------------------- modes */

static int mode_kernel(void)
{
    uint64_t iterations = arg_u64("iterations", POOL_DEFAULT_ITERATIONS);
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    double w0, c0, wall, cpu;
    pool_status st;
    expected_hex(iterations, want);
    w0 = now_wall();
    c0 = now_cpu();
    st = pool_md5_chain(MESSAGE, strlen(MESSAGE), iterations, hex);
    cpu = now_cpu() - c0;
    wall = now_wall() - w0;
    if (st != POOL_OK)
        die("pool_md5_chain", st);
    check_hex(hex, want, "kernel");
    printf("{\"mode\":\"kernel\",\"iterations\":%llu,\"wall\":%.6f,\"cpu\":%.6f,\"hex\":\"%s\"}\n",
           (unsigned long long)iterations, wall, cpu, hex);
    return 0;
}

static int mode_serial(void)
{
    uint64_t jobs = arg_u64("jobs", 100), iterations = arg_u64("iterations", 1000000), k;
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    double w0, c0, wall, cpu;
    expected_hex(iterations, want);
    w0 = now_wall();
    c0 = now_cpu();
    for (k = 0; k < jobs; k++) {
        pool_status st = pool_md5_chain(MESSAGE, strlen(MESSAGE), iterations, hex);
        if (st != POOL_OK)
            die("pool_md5_chain", st);
        check_hex(hex, want, "serial");
    }
    cpu = now_cpu() - c0;
    wall = now_wall() - w0;
    printf("{\"mode\":\"serial\",\"jobs\":%llu,\"iterations\":%llu,\"wall\":%.6f,\"cpu\":%.6f}\n",
           (unsigned long long)jobs, (unsigned long long)iterations, wall, cpu);
    return 0;
}

static int mode_fork(void)
{
    uint64_t jobs = arg_u64("jobs", 100), iterations = arg_u64("iterations", 1000000), k;
    char want[POOL_HEX_LEN];
    pid_t *pids;
    int fds[2];
    double w0, wall, ch0;
    uint64_t got = 0;
    char buf[POOL_HEX_LEN];

    expected_hex(iterations, want);
    pids = calloc(jobs, sizeof *pids);
    if (pids == NULL || pipe(fds) != 0) {
        perror("pool_bench: fork mode setup");
        return 1;
    }
    signal(SIGCHLD, SIG_DFL);
    fflush(NULL);
    ch0 = children_cpu();
    w0 = now_wall();
    for (k = 0; k < jobs; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("pool_bench: fork");
            return 1;
        }
        if (pid == 0) {
            char hex[POOL_HEX_LEN];
            close(fds[0]);
            if (pool_md5_chain(MESSAGE, strlen(MESSAGE), iterations, hex) != POOL_OK)
                _exit(1);
            /* POOL_HEX_LEN bytes < PIPE_BUF: one atomic write. */
            _exit(write(fds[1], hex, POOL_HEX_LEN) == POOL_HEX_LEN ? 0 : 1);
        }
        pids[k] = pid;
    }
    close(fds[1]);
    for (;;) {
        size_t have = 0;
        ssize_t n = 0;
        while (have < POOL_HEX_LEN) {
            n = read(fds[0], buf + have, POOL_HEX_LEN - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (have < POOL_HEX_LEN)
            break;
        buf[POOL_HEX_LEN - 1] = '\0';
        check_hex(buf, want, "fork");
        got++;
    }
    for (k = 0; k < jobs; k++) {
        int status;
        while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
            ;
    }
    wall = now_wall() - w0;
    close(fds[0]);
    free(pids);
    if (got != jobs) {
        fprintf(stderr, "pool_bench: fork: %llu of %llu results\n", (unsigned long long)got,
                (unsigned long long)jobs);
        return 1;
    }
    printf("{\"mode\":\"fork\",\"jobs\":%llu,\"iterations\":%llu,\"wall\":%.6f,"
           "\"children_cpu\":%.6f}\n",
           (unsigned long long)jobs, (unsigned long long)iterations, wall, children_cpu() - ch0);
    return 0;
}

/* The seed's experiment (c), and the scaling / engine runs (same shape, `warm`=1 excludes
 * pool start-up from `run`). */
static int mode_pool(void)
{
    uint64_t jobs = arg_u64("jobs", 100), iterations = arg_u64("iterations", 1000000);
    uint32_t workers = (uint32_t)arg_u64("workers", 0), configured = 0;
    uint64_t warm = arg_u64("warm", 0);
    char want[POOL_HEX_LEN];
    double t0, t_created, t_run0, t_done, t_end, c0, cpu, ch0, ch;
    pool *p;
    pool_status st;

    expected_hex(iterations, want);
    ch0 = children_cpu();
    t0 = now_wall();
    c0 = now_cpu();
    p = make_pool(workers, &configured);
    t_created = now_wall();
    if (warm)
        warm_up(p, configured);
    t_run0 = now_wall();
    run_jobs(p, jobs, iterations, 65536 / 2, want);
    t_done = now_wall();
    st = pool_destroy(p);
    if (st != POOL_OK)
        die("pool_destroy", st);
    t_end = now_wall();
    cpu = now_cpu() - c0;
    ch = children_cpu() - ch0;
    printf("{\"mode\":\"pool\",\"engine\":\"%s\",\"workers\":%u,\"jobs\":%llu,\"iterations\":%llu,"
           "\"warm\":%llu,\"wall\":%.6f,\"create\":%.6f,\"run\":%.6f,\"destroy\":%.6f,"
           "\"host_cpu\":%.6f,\"workers_cpu\":%.6f,\"jobs_per_s\":%.3f}\n",
           engine_env(), configured, (unsigned long long)jobs, (unsigned long long)iterations,
           (unsigned long long)warm, t_end - t0, t_created - t0, t_done - t_run0, t_end - t_done,
           cpu, ch, (double)jobs / (t_done - t_run0));
    return 0;
}

static int mode_rate(void)
{
    uint64_t jobs = arg_u64("jobs", 100000), iterations = arg_u64("iterations", 1);
    uint64_t window = arg_u64("window", 16384);
    uint32_t workers = (uint32_t)arg_u64("workers", 0), configured = 0;
    char want[POOL_HEX_LEN];
    double t0, wall, c0, cpu;
    pool *p;
    pool_status st;

    if (window == 0 || window >= 65536) {
        fprintf(stderr, "pool_bench: window must be 1..65535\n");
        return 2;
    }
    expected_hex(iterations, want);
    p = make_pool(workers, &configured);
    warm_up(p, configured);
    t0 = now_wall();
    c0 = now_cpu();
    run_jobs(p, jobs, iterations, window, want);
    cpu = now_cpu() - c0;
    wall = now_wall() - t0;
    st = pool_destroy(p);
    if (st != POOL_OK)
        die("pool_destroy", st);
    printf("{\"mode\":\"rate\",\"engine\":\"%s\",\"workers\":%u,\"jobs\":%llu,\"iterations\":%llu,"
           "\"window\":%llu,\"wall\":%.6f,\"host_cpu\":%.6f,\"jobs_per_s\":%.1f}\n",
           engine_env(), configured, (unsigned long long)jobs, (unsigned long long)iterations,
           (unsigned long long)window, wall, cpu, (double)jobs / wall);
    return 0;
}

static int mode_latency(void)
{
    uint64_t samples = arg_u64("samples", 10000), warmup = arg_u64("warmup", 200);
    uint64_t iterations = arg_u64("iterations", 1), k;
    uint32_t workers = (uint32_t)arg_u64("workers", 0), configured = 0;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    double *lat, sum = 0.0;
    pool *p;
    pool_status st;

    if (samples == 0)
        return 2;
    lat = malloc(samples * sizeof *lat);
    if (lat == NULL)
        return 1;
    expected_hex(iterations, want);
    p = make_pool(workers, &configured);
    warm_up(p, configured);
    for (k = 0; k < warmup + samples; k++) {
        uint64_t job;
        double t0 = now_wall(), dt;
        st = pool_submit(p, MESSAGE, strlen(MESSAGE), iterations, &job);
        if (st != POOL_OK)
            die("pool_submit", st);
        st = pool_wait(p, job, -1, hex);
        dt = now_wall() - t0;
        if (st != POOL_OK)
            die("pool_wait", st);
        check_hex(hex, want, "latency");
        if (k >= warmup) {
            lat[k - warmup] = dt;
            sum += dt;
        }
    }
    st = pool_destroy(p);
    if (st != POOL_OK)
        die("pool_destroy", st);
    qsort(lat, samples, sizeof *lat, cmp_double);
    printf("{\"mode\":\"latency\",\"engine\":\"%s\",\"workers\":%u,\"samples\":%llu,"
           "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,"
           "\"mean_us\":%.2f}\n",
           engine_env(), configured, (unsigned long long)samples, quantile(lat, samples, 0.5) * 1e6,
           quantile(lat, samples, 0.9) * 1e6, quantile(lat, samples, 0.99) * 1e6, lat[0] * 1e6,
           lat[samples - 1] * 1e6, sum / (double)samples * 1e6);
    free(lat);
    return 0;
}

/* Waits (polling) until `n` jobs run; 0 if 10 s passed first. */
static int running_at_least(pool *p, uint64_t n)
{
    double end = now_wall() + 10.0;
    pool_stats stats;
    struct timespec ms = {0, 1000000};
    while (now_wall() < end) {
        if (pool_stats_get(p, &stats) == POOL_OK && stats.jobs_running >= n)
            return 1;
        nanosleep(&ms, NULL);
    }
    return 0;
}

static int mode_mixed(void)
{
    uint32_t workers = (uint32_t)arg_u64("workers", 2), configured = 0;
    uint64_t longs = arg_u64("longs", workers), long_it = arg_u64("long_iterations", 50000000);
    uint64_t short_it = arg_u64("short_iterations", 1000), gap_us = arg_u64("gap_us", 500);
    uint64_t ids[64], job, k, n = 0, left, cap = 1000000;
    struct timespec gap;
    char hex[POOL_HEX_LEN], want_short[POOL_HEX_LEN], want_long[POOL_HEX_LEN];
    double t0, alone, beside = 0.0, short_cpu, *lat = malloc(cap * sizeof *lat);
    pool_status st;
    pool *p;

    if (lat == NULL || longs == 0 || longs > 64)
        return 2;
    gap.tv_sec = (time_t)(gap_us / 1000000);
    gap.tv_nsec = (long)(gap_us % 1000000) * 1000;
    expected_hex(short_it, want_short);
    expected_hex(long_it, want_long);
    t0 = now_cpu();
    for (k = 0; k < 100; k++)
        expected_hex(short_it, hex);
    short_cpu = (now_cpu() - t0) / 100.0;
    p = make_pool(workers, &configured);
    warm_up(p, configured);

    /* The long jobs alone. */
    t0 = now_wall();
    for (k = 0; k < longs; k++)
        if ((st = pool_submit(p, MESSAGE, strlen(MESSAGE), long_it, &ids[k])) != POOL_OK)
            die("pool_submit", st);
    for (k = 0; k < longs; k++) {
        if ((st = pool_wait(p, ids[k], -1, hex)) != POOL_OK)
            die("pool_wait", st);
        check_hex(hex, want_long, "long job");
    }
    alone = now_wall() - t0;

    /* The same with short jobs streaming beside them. */
    t0 = now_wall();
    for (k = 0; k < longs; k++)
        if ((st = pool_submit(p, MESSAGE, strlen(MESSAGE), long_it, &ids[k])) != POOL_OK)
            die("pool_submit", st);
    if (!running_at_least(p, longs))
        die("long jobs never started", POOL_OK);
    for (left = longs; left > 0 && n < cap;) {
        double ts = now_wall();
        if ((st = pool_submit(p, MESSAGE, strlen(MESSAGE), short_it, &job)) != POOL_OK)
            die("pool_submit", st);
        if ((st = pool_wait(p, job, -1, hex)) != POOL_OK)
            die("pool_wait", st);
        lat[n++] = now_wall() - ts;
        check_hex(hex, want_short, "short job");
        for (k = 0; k < longs; k++) {
            if (ids[k] == 0 || (st = pool_wait(p, ids[k], 0, hex)) == POOL_ETIMEDOUT)
                continue;
            if (st != POOL_OK)
                die("pool_wait (long)", st);
            check_hex(hex, want_long, "long job");
            ids[k] = 0;
            left--;
            beside = now_wall() - t0;
        }
        nanosleep(&gap, NULL);
    }
    if ((st = pool_destroy(p)) != POOL_OK)
        die("pool_destroy", st);
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("{\"mode\":\"mixed\",\"engine\":\"%s\",\"workers\":%u,\"longs\":%llu,"
           "\"long_iterations\":%llu,\"short_iterations\":%llu,\"shorts\":%llu,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"long_alone\":%.4f,"
           "\"long_beside\":%.4f,\"short_cpu_total\":%.4f}\n",
           engine_env(), configured, (unsigned long long)longs, (unsigned long long)long_it,
           (unsigned long long)short_it, (unsigned long long)n, quantile(lat, n, 0.5) * 1e3,
           quantile(lat, n, 0.99) * 1e3, lat[n - 1] * 1e3, alone, beside,
           short_cpu * (double)n);
    free(lat);
    return 0;
}

static int mode_cancel(void)
{
    uint64_t jobs = arg_u64("jobs", 64), iterations = arg_u64("iterations", 1000000);
    uint64_t cancel = arg_u64("cancel", 1), *ids, k, got;
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    struct timespec tenth = {0, 100000000};
    pool_stats stats;
    pool_status st;
    double t0, wall;
    pool *p;

    if (jobs < 2 || (ids = malloc(jobs * sizeof *ids)) == NULL)
        return 2;
    expected_hex(iterations, want);
    p = make_pool(1, NULL);
    warm_up(p, 1);
    t0 = now_wall();
    for (k = 0; k < jobs; k++)
        if ((st = pool_submit(p, MESSAGE, strlen(MESSAGE), iterations, &ids[k])) != POOL_OK)
            die("pool_submit", st);
    if (!running_at_least(p, jobs))
        die("jobs never all ran", POOL_OK);
    nanosleep(&tenth, NULL);
    if (cancel && (st = pool_cancel(p, ids[0])) != POOL_OK)
        die("pool_cancel", st);
    for (k = 0; k < jobs; k++) {
        st = pool_wait_any(p, -1, &got, hex);
        if (cancel && got == ids[0]) {
            if (st != POOL_ECANCELED)
                die("canceled job", st);
            continue;
        }
        if (st != POOL_OK)
            die("pool_wait_any", st);
        check_hex(hex, want, "cancel");
    }
    wall = now_wall() - t0;
    if ((st = pool_stats_get(p, &stats)) != POOL_OK)
        die("pool_stats_get", st);
    if ((st = pool_destroy(p)) != POOL_OK)
        die("pool_destroy", st);
    printf("{\"mode\":\"cancel\",\"engine\":\"%s\",\"jobs\":%llu,\"iterations\":%llu,"
           "\"cancel\":%llu,\"wall\":%.4f,\"worker_restarts\":%llu}\n",
           engine_env(), (unsigned long long)jobs, (unsigned long long)iterations,
           (unsigned long long)cancel, wall, (unsigned long long)stats.worker_restarts);
    free(ids);
    return 0;
}

static int mode_respawn(void)
{
    uint64_t reps = arg_u64("reps", 20), k;
    uint32_t workers = (uint32_t)arg_u64("workers", 1), configured = 0;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    double *lat;
    pool_stats s0, s1;
    pool *p;
    pool_status st;

    if (reps == 0)
        return 2;
    lat = malloc(reps * sizeof *lat);
    if (lat == NULL)
        return 1;
    expected_hex(1, want);
    p = make_pool(workers, &configured);
    warm_up(p, configured);
    if (pool_stats_get(p, &s0) != POOL_OK)
        return 1;
    for (k = 0; k < reps; k++) {
        int32_t pids[1024];
        size_t count = 0, i;
        uint64_t job;
        double t0;
        st = pool_worker_pids(p, pids, 1024, &count);
        if (st != POOL_OK)
            die("pool_worker_pids", st);
        if (count == 0) {
            fprintf(stderr, "pool_bench: respawn: no live worker\n");
            return 1;
        }
        t0 = now_wall();
        for (i = 0; i < count && i < 1024; i++) /* workers=1: the one worker */
            kill(pids[i], SIGKILL);
        st = pool_submit(p, MESSAGE, strlen(MESSAGE), 1, &job);
        if (st != POOL_OK)
            die("pool_submit", st);
        st = pool_wait(p, job, -1, hex);
        lat[k] = now_wall() - t0;
        if (st != POOL_OK)
            die("pool_wait", st);
        check_hex(hex, want, "respawn");
        /* Let the replacement settle so the next kill hits a started worker. */
        {
            struct timespec d = {0, 20 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    if (pool_stats_get(p, &s1) != POOL_OK)
        return 1;
    st = pool_destroy(p);
    if (st != POOL_OK)
        die("pool_destroy", st);
    qsort(lat, reps, sizeof *lat, cmp_double);
    printf("{\"mode\":\"respawn\",\"engine\":\"%s\",\"workers\":%u,\"reps\":%llu,"
           "\"p50_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f,\"restarts\":%llu,\"retried\":%llu}\n",
           engine_env(), configured, (unsigned long long)reps, quantile(lat, reps, 0.5) * 1e3,
           lat[0] * 1e3, lat[reps - 1] * 1e3,
           (unsigned long long)(s1.worker_restarts - s0.worker_restarts),
           (unsigned long long)(s1.jobs_retried - s0.jobs_retried));
    free(lat);
    return 0;
}

/* ------------------------------------------------- latency floor (no pool) */

struct relay {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int have;
    int stop;
};

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    char buf[64];
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev);
    for (;;) {
        ssize_t n;
        if (epoll_wait(ep, &ev, 1, -1) < 1)
            continue;
        n = read(r->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        pthread_mutex_lock(&r->mu);
        r->have = 1;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    close(ep);
    return NULL;
}

static int mode_floor(void)
{
    uint64_t samples = arg_u64("samples", 10000), warmup = arg_u64("warmup", 200);
    uint64_t hops = arg_u64("hops", 2), k;
    int sv[2];
    pid_t pid;
    double *lat;
    char buf[64];
    struct relay r;
    pthread_t th;

    if (samples == 0 || (hops != 2 && hops != 3))
        return 2;
    lat = malloc(samples * sizeof *lat);
    if (lat == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 1;
    memset(buf, 'x', sizeof buf);
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(sv[0]);
        for (;;) {
            ssize_t n = read(sv[1], buf, sizeof buf);
            if (n <= 0 || write(sv[1], buf, (size_t)n) != n)
                _exit(0);
        }
    }
    close(sv[1]);
    memset(&r, 0, sizeof r);
    r.fd = sv[0];
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    if (hops == 3 && pthread_create(&th, NULL, relay_main, &r) != 0)
        return 1;
    for (k = 0; k < warmup + samples; k++) {
        double t0 = now_wall(), dt;
        if (write(sv[0], buf, sizeof buf) != (ssize_t)sizeof buf)
            return 1;
        if (hops == 2) {
            if (read(sv[0], buf, sizeof buf) <= 0)
                return 1;
        } else {
            pthread_mutex_lock(&r.mu);
            while (!r.have)
                pthread_cond_wait(&r.cv, &r.mu);
            r.have = 0;
            pthread_mutex_unlock(&r.mu);
        }
        dt = now_wall() - t0;
        if (k >= warmup)
            lat[k - warmup] = dt;
    }
    shutdown(sv[0], SHUT_RDWR);
    if (hops == 3)
        pthread_join(th, NULL);
    close(sv[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    qsort(lat, samples, sizeof *lat, cmp_double);
    printf("{\"mode\":\"floor\",\"hops\":%llu,\"samples\":%llu,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"min_us\":%.2f}\n",
           (unsigned long long)hops, (unsigned long long)samples, quantile(lat, samples, 0.5) * 1e6,
           quantile(lat, samples, 0.99) * 1e6, lat[0] * 1e6);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode;
    argc_g = argc;
    argv_g = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: %s kernel|serial|fork|pool|rate|latency|floor|respawn|mixed|cancel [key=value]...\n",
                argv[0]);
        return 2;
    }
    mode = argv[1];
    if (strcmp(mode, "kernel") == 0)
        return mode_kernel();
    if (strcmp(mode, "serial") == 0)
        return mode_serial();
    if (strcmp(mode, "fork") == 0)
        return mode_fork();
    if (strcmp(mode, "pool") == 0)
        return mode_pool();
    if (strcmp(mode, "rate") == 0)
        return mode_rate();
    if (strcmp(mode, "latency") == 0)
        return mode_latency();
    if (strcmp(mode, "respawn") == 0)
        return mode_respawn();
    if (strcmp(mode, "floor") == 0)
        return mode_floor();
    if (strcmp(mode, "mixed") == 0)
        return mode_mixed();
    if (strcmp(mode, "cancel") == 0)
        return mode_cancel();
    if (strcmp(mode, "cpus") == 0) {
        printf("{\"mode\":\"cpus\",\"cpus\":%u,\"version\":\"%s\"}\n", cpu_count(), pool_version());
        return 0;
    }
    fprintf(stderr, "pool_bench: unknown mode '%s'\n", mode);
    return 2;
}
