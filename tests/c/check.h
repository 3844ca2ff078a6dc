/* Tiny test harness shared by the C tests: checks that exit on failure, and
 * helpers that look at processes and descriptors through /proc. */
#ifndef MD5POOL_TEST_CHECK_H
#define MD5POOL_TEST_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <md5pool.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* Checks that `call` returns status `want`, naming both on failure. */
#define CHECK_STATUS(call, want)                                                       \
    do {                                                                               \
        pool_status got_ = (call);                                                     \
        if (got_ != (want)) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, \
                    __LINE__, #call, (int)got_, pool_strerror(got_), (int)(want),      \
                    pool_strerror(want));                                              \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, POOL_OK)

static inline double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline void sleep_ms(long ms)
{
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

/* Descriptors open in this process. */
static inline int open_fd_count(void)
{
    int n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Parent pid of `pid` from /proc/PID/stat, or -1 when it is gone. */
static inline pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *close_paren;
    int ppid = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL)
        sscanf(close_paren + 2, "%*c %d", &ppid);
    fclose(f);
    return (pid_t)ppid;
}

/* Process state letter of `pid` ('Z' zombie, ...), or 0 when it is gone. */
static inline char state_of(pid_t pid)
{
    char path[64], buf[512], *close_paren, st = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL)
        st = close_paren[2];
    fclose(f);
    return st;
}

/* Processes whose parent is `parent`: the zombies among them if `zombies`,
 * else the live ones. */
static inline int count_children(pid_t parent, int zombies)
{
    int n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && parent_of(pid) == parent && (state_of(pid) == 'Z') == !!zombies)
            n++;
    }
    closedir(d);
    return n;
}

/* Live (non-zombie) processes whose parent is `parent`. */
static inline int children_of(pid_t parent)
{
    return count_children(parent, 0);
}

/* True once `pid` no longer exists (or is a zombie), polling up to `ms`. */
static inline int gone_within(pid_t pid, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        char st = state_of(pid);
        if (st == 0 || st == 'Z')
            return 1;
        sleep_ms(5);
    } while (now_seconds() < end);
    return 0;
}

/* A pool with `workers` workers and otherwise default settings. */
static inline pool *make_pool(uint32_t workers)
{
    pool_config cfg;
    pool *p = NULL;
    pool_config_init(&cfg);
    cfg.workers = workers;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(p != NULL);
    return p;
}

/* ---- Added for the tests/c/test_api_*.c programs. ---- */

/* A bound for waits that should end long before it: a hang fails instead of
 * stalling the run. */
#define LONG_WAIT_MS 30000

/* The kernel's answer computed in this process (the reference for pool results). */
static inline void ref_hex(const void *msg, size_t len, uint64_t iterations, char hex[POOL_HEX_LEN])
{
    CHECK_OK(pool_md5_chain(msg, len, iterations, hex));
    CHECK(strlen(hex) == POOL_HEX_LEN - 1);
}

/* Submits a job and returns its id. */
static inline uint64_t submit(pool *p, const void *msg, size_t len, uint64_t iterations)
{
    uint64_t id = 0;
    CHECK_OK(pool_submit(p, msg, len, iterations, &id));
    CHECK(id != 0);
    return id;
}

/* Waits (bounded) for job `id` and checks it answers `want` with POOL_OK. */
static inline void wait_ok(pool *p, uint64_t id, const char *want)
{
    char hex[POOL_HEX_LEN];
    CHECK_OK(pool_wait(p, id, LONG_WAIT_MS, hex));
    if (strcmp(hex, want) != 0) {
        fprintf(stderr, "job %llu: got %s, expected %s\n", (unsigned long long)id, hex, want);
        exit(1);
    }
}

static inline pool_stats stats_of(const pool *p)
{
    pool_stats s;
    CHECK_OK(pool_stats_get(p, &s));
    return s;
}

/* The live worker pids into pids[cap]; returns how many there are. */
static inline size_t worker_pids(const pool *p, int32_t *pids, size_t cap)
{
    size_t n = 0;
    CHECK_OK(pool_worker_pids(p, pids, cap, &n));
    return n;
}

/* The pid of a one-worker pool once it has stayed the same for 200 ms (10 s at most). */
static inline int32_t settled_worker(const pool *p)
{
    int32_t pid = 0, seen = -1;
    double end = now_seconds() + 10.0, stable_since = now_seconds();
    while (now_seconds() < end) {
        int32_t current = worker_pids(p, &pid, 1) == 1 ? pid : -1;
        if (current != seen) {
            seen = current;
            stable_since = now_seconds();
        } else if (current != -1 && now_seconds() - stable_since >= 0.2) {
            return current;
        }
        sleep_ms(5);
    }
    CHECK(!"the pool's worker never settled");
    return -1;
}

/* Polls the stats until jobs_running >= n; returns 0 if `ms` passed first. */
static inline int running_within(const pool *p, uint64_t n, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        if (stats_of(p).jobs_running >= n)
            return 1;
        sleep_ms(2);
    } while (now_seconds() < end);
    return 0;
}

/* Polls the stats until jobs_ready >= n; returns 0 if `ms` passed first. */
static inline int ready_within(const pool *p, uint64_t n, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        if (stats_of(p).jobs_ready >= n)
            return 1;
        sleep_ms(2);
    } while (now_seconds() < end);
    return 0;
}

/* Polls until the pool has `n` live workers none of which is `old`; returns 0
 * if `ms` passed first. */
static inline int replaced_within(const pool *p, pid_t old, size_t n, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        int32_t pids[64];
        size_t i, count = worker_pids(p, pids, 64);
        int found = 0;
        for (i = 0; i < count && i < 64; i++)
            found |= pids[i] == old;
        if (count == n && !found && stats_of(p).workers_alive == n)
            return 1;
        sleep_ms(5);
    } while (now_seconds() < end);
    return 0;
}

/* True once `pid` no longer exists at all (reaped, not a zombie), polling up to `ms`. */
static inline int reaped_within(pid_t pid, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        if (state_of(pid) == 0)
            return 1;
        sleep_ms(5);
    } while (now_seconds() < end);
    return 0;
}

/* A job no worker finishes within a test (about 20 minutes): only cancel,
 * job_timeout_ms or pool_destroy end it. */
#define HUGE_ITERATIONS 10000000000ULL

/* Submits up to `cap` HUGE_ITERATIONS jobs (their ids into ids[] unless NULL)
 * until one stays queued, i.e. every worker is busy however many jobs each runs
 * at once (a vector engine runs dozens). Returns how many were submitted. */
static inline size_t saturate(pool *p, uint64_t *ids, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        uint64_t id = submit(p, "huge", 4, HUGE_ITERATIONS);
        if (ids)
            ids[n] = id;
        n++;
        if (stats_of(p).jobs_queued > 0) {
            sleep_ms(100); /* a worker still starting would take it now */
            if (stats_of(p).jobs_queued > 0)
                return n;
        }
    }
    fprintf(stderr, "saturate: %zu huge jobs and none stays queued\n", n);
    exit(1);
}

/* Zombie processes whose parent is `parent`. */
static inline int zombies_of(pid_t parent)
{
    return count_children(parent, 1);
}

/* ------------------------------------------------------------------------------
 * Helpers added for the host-hardening tests (tests/c/test_host_*.c). All names
 * start with host_ so that they cannot collide with a test's own helpers.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* Fails the test with a message (printf-style, one string argument). */
#define HOST_FAIL(msg, arg)                                                            \
    do {                                                                               \
        fprintf(stderr, "%s:%d: %s%s\n", __FILE__, __LINE__, (msg), (arg));           \
        exit(1);                                                                       \
    } while (0)

/* Polls until `p` reports exactly `n` live workers, up to `ms`; 1 on success. */
static inline int host_wait_workers(const pool *p, size_t n, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        if (worker_pids(p, NULL, 0) == n)
            return 1;
        sleep_ms(2);
    } while (now_seconds() < end);
    return 0;
}

/* The fork server of `p`: the parent of its first live worker (waits for one). */
static inline pid_t host_fork_server(const pool *p)
{
    int32_t pid = 0;
    double end = now_seconds() + 10.0;
    while (worker_pids(p, &pid, 1) == 0 && now_seconds() < end)
        sleep_ms(2);
    CHECK(pid > 0);
    return parent_of((pid_t)pid);
}

/* Processes whose parent is `parent`, zombies included. */
static inline int host_all_children(pid_t parent)
{
    return count_children(parent, 0) + count_children(parent, 1);
}

/* The descriptors of process `pid`: numbers into fds[], link targets into
 * links[][128] (e.g. "socket:[123]", "/dev/null"); returns how many (-1 if gone). */
static inline int host_proc_fds(pid_t pid, int *fds, char (*links)[128], int cap)
{
    char dir[64], path[384];
    int n = 0;
    struct dirent *e;
    DIR *d;
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    d = opendir(dir);
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL && n < cap) {
        ssize_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        len = readlink(path, links[n], 127);
        if (len < 0)
            continue;
        links[n][len] = '\0';
        fds[n] = atoi(e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* A hexadecimal field ("SigBlk", "SigIgn", "SigCgt", ...) of /proc/PID/status;
 * exits the test when it cannot be read. */
static inline unsigned long long host_status_mask(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    unsigned long long value = 0;
    int found = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            found = sscanf(line + flen + 1, "%llx", &value) == 1;
            break;
        }
    fclose(f);
    CHECK(found);
    return value;
}

/* A counter shared with every process forked after this call (fork server and
 * workers included): for counting worker starts from a worker_init. */
static inline volatile int *host_shared_counter(void)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    memset(m, 0, 4096);
    return (volatile int *)m;
}

static inline int host_counter_add(volatile int *c, int delta)
{
    return __atomic_add_fetch(c, delta, __ATOMIC_SEQ_CST);
}

static inline int host_counter_get(volatile int *c)
{
    return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

/* Submits one job and waits for it (at most `ms`); returns its status and, on
 * POOL_OK, checks the digest against pool_md5_chain. */
static inline pool_status host_run_job(pool *p, const char *msg, uint64_t iterations, long ms)
{
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t id = 0;
    pool_status st;
    CHECK_OK(pool_md5_chain(msg, strlen(msg), iterations, want));
    CHECK_OK(pool_submit(p, msg, strlen(msg), iterations, &id));
    st = pool_wait(p, id, ms, hex);
    if (st == POOL_OK && strcmp(hex, want) != 0) {
        fprintf(stderr, "wrong digest for %s x %llu: %s, expected %s\n", msg,
                (unsigned long long)iterations, hex, want);
        exit(1);
    }
    return st;
}

/* Runs fn() in a forked child that then exits 0 (a CHECK failing in it exits 1);
 * returns the child's wait status. Each piece of a test that changes process-wide
 * state (signal dispositions, stdio) runs this way. */
static inline int host_in_child(void (*fn)(void))
{
    int status = 0;
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        exit(0);
    }
    while (waitpid(pid, &status, 0) < 0)
        CHECK(errno == EINTR);
    return status;
}

/* Runs a named sub-test in a child (host_in_child), prints its verdict and time,
 * and returns 1 if it failed (exit status not 0, or killed by a signal), else 0.
 * Use: failed += HOST_SUBTEST(fn); ... return failed != 0; */
static inline int host_subtest(const char *name, void (*fn)(void))
{
    double t0 = now_seconds();
    int st = host_in_child(fn);
    int failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (WIFSIGNALED(st))
        printf("%-44s FAILED (killed by signal %d: %s)  %.2fs\n", name, WTERMSIG(st),
               strsignal(WTERMSIG(st)), now_seconds() - t0);
    else
        printf("%-44s %s  %.2fs\n", name, failed ? "FAILED" : "ok", now_seconds() - t0);
    fflush(stdout);
    return failed;
}

#define HOST_SUBTEST(fn) host_subtest(#fn, fn)

#endif
