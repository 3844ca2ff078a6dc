/*
 * demo.c: the seed's three experiments, in C, through libmd5pool.
 *
 * `jobs` jobs of md5chain("Hello World", iterations), run three ways:
 *   (a) serial, in the calling process (pool_md5_chain);
 *   (b) one fork()ed process per job, all at once; each child first sleeps the
 *       init delay (the seed's slow initialization, repaid by every process);
 *   (c) a pool whose worker_init sleeps the init delay once per worker; the
 *       time includes pool_create, the workers' init and pool_destroy.
 * Every result is checked against the expected digest. Exit status: 0 all
 * good, 1 a wrong result or a failed call, 2 a usage error.
 *
 *   make demo DEMO_ARGS="--jobs 10 --iterations 100000 --init-delay 0.2"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <md5pool.h>

#define MESSAGE "Hello World"
#define MESSAGE_DIGEST_1M "1e4110cf294414bc2ac346ad274a7af3" /* md5chain(MESSAGE, 1000000) */
#define MAX_JOBS 1000000u
#define MAX_WORKERS 1024u
#define MAX_INIT_DELAY 3600.0
#define MAX_REPORTED_MISMATCHES 5

struct options {
    uint64_t jobs;
    uint64_t iterations;
    uint32_t workers; /* 0 = one per CPU */
    double init_delay;
    int skip_fork_per_job;
};

/* One experiment's bookkeeping: what to expect, what was seen. */
struct run {
    const struct options *opt;
    const char *expected;
    const char *label; /* for progress and messages, e.g. "(c) pool" */
    int progress;      /* stderr is a terminal */
    double last_progress;
    uint64_t done;    /* jobs finished, well or badly */
    uint64_t ok;      /* results equal to expected */
    uint64_t wrong;   /* results that differ, or jobs that failed */
    uint32_t workers; /* (c): workers the pool started */
};

/* What a fork-per-job child writes to the shared pipe: one atomic write. */
struct child_record {
    uint64_t job;
    char hex[POOL_HEX_LEN];
};

/* ------------------------------------------------------------------ time */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds)
{
    struct timespec left;
    left.tv_sec = (time_t)seconds;
    left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* The pool's worker_init: the seed's "very long initializing time". */
static void slow_init(void *arg)
{
    sleep_seconds(*(const double *)arg);
}

/* "2.0", "0.25", "1.125": at least one decimal, no trailing zeros. */
static const char *format_seconds(double seconds, char *buf, size_t len)
{
    size_t n;
    snprintf(buf, len, "%.3f", seconds);
    n = strlen(buf);
    while (n >= 3 && buf[n - 1] == '0' && buf[n - 2] != '.')
        buf[--n] = '\0';
    return buf;
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

/* --------------------------------------------------------------- options */

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTION]...\n"
            "Run the seed's experiment through libmd5pool: JOBS jobs of\n"
            "md5chain(\"" MESSAGE "\", ITERATIONS), (a) serially in this process, (b) in one\n"
            "forked process per job, each paying the init delay, and (c) in a pool of\n"
            "pre-forked workers, each paying the init delay once. Prints each way's wall\n"
            "time and speedup over (a), and checks every result.\n"
            "\n"
            "  -j, --jobs N              jobs per way (default 100)\n"
            "  -i, --iterations N        chain length (default 1000000)\n"
            "  -w, --workers N           pool workers, 0 = one per CPU (default 0)\n"
            "  -d, --init-delay SECONDS  slow initialization per process (default 2.0)\n"
            "  -s, --skip-fork-per-job   skip way (b)\n"
            "  -h, --help                show this help\n"
            "\n"
            "Environment: DEMO_JOBS, DEMO_ITERATIONS, DEMO_WORKERS, DEMO_INIT_DELAY,\n"
            "DEMO_SKIP_FORK_PER_JOB (0 or 1) set the same options; flags override them.\n"
            "\n"
            "Exit status: 0 every result correct, 1 a wrong result or a failed call,\n"
            "2 a usage error.\n",
            prog);
}

static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (text[0] == '\0' || text[0] == '-' || text[0] == '+')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_delay(const char *text, double *out)
{
    char *end;
    double v;
    if (text[0] == '\0')
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0.0 || v > MAX_INIT_DELAY)
        return -1;
    *out = v;
    return 0;
}

static int parse_flag(const char *text, int *out)
{
    if (strcmp(text, "") == 0 || strcmp(text, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (strcmp(text, "1") == 0) {
        *out = 1;
        return 0;
    }
    return -1;
}

/* Sets one option from its text; `source` names the flag or variable in messages. */
static int set_option(struct options *opt, int key, const char *text, const char *source)
{
    uint64_t v;
    const char *want;
    switch (key) {
    case 'j':
        want = "an integer from 1 to 1000000";
        if (parse_u64(text, 1, MAX_JOBS, &v) != 0)
            break;
        opt->jobs = v;
        return 0;
    case 'i':
        want = "a positive integer";
        if (parse_u64(text, 1, UINT64_MAX, &v) != 0)
            break;
        opt->iterations = v;
        return 0;
    case 'w':
        want = "an integer from 0 to 1024";
        if (parse_u64(text, 0, MAX_WORKERS, &v) != 0)
            break;
        opt->workers = (uint32_t)v;
        return 0;
    case 'd':
        want = "seconds from 0 to 3600, e.g. 0.5";
        if (parse_delay(text, &opt->init_delay) != 0)
            break;
        return 0;
    case 's':
        want = "0 or 1";
        if (parse_flag(text, &opt->skip_fork_per_job) != 0)
            break;
        return 0;
    default:
        return -1;
    }
    fprintf(stderr, "demo: %s: '%s' is not valid (want %s)\n", source, text, want);
    return -1;
}

static int options_from_env(struct options *opt)
{
    static const struct {
        const char *name;
        int key;
    } vars[] = {
        {"DEMO_JOBS", 'j'},
        {"DEMO_ITERATIONS", 'i'},
        {"DEMO_WORKERS", 'w'},
        {"DEMO_INIT_DELAY", 'd'},
        {"DEMO_SKIP_FORK_PER_JOB", 's'},
    };
    size_t k;
    for (k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *text = getenv(vars[k].name);
        if (text != NULL && set_option(opt, vars[k].key, text, vars[k].name) != 0)
            return -1;
    }
    return 0;
}

static const struct option longopts[] = {
    {"jobs", required_argument, NULL, 'j'},
    {"iterations", required_argument, NULL, 'i'},
    {"workers", required_argument, NULL, 'w'},
    {"init-delay", required_argument, NULL, 'd'},
    {"skip-fork-per-job", no_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *long_name(int key)
{
    size_t k;
    for (k = 0; longopts[k].name != NULL; k++)
        if (longopts[k].val == key)
            return longopts[k].name;
    return "?";
}

/* Returns 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_options(struct options *opt, int argc, char **argv)
{
    int c;

    opt->jobs = 100;
    opt->iterations = POOL_DEFAULT_ITERATIONS;
    opt->workers = 0;
    opt->init_delay = 2.0;
    opt->skip_fork_per_job = 0;
    if (options_from_env(opt) != 0)
        return -1;

    opterr = 0; /* our own messages */
    while ((c = getopt_long(argc, argv, ":j:i:w:d:sh", longopts, NULL)) != -1) {
        char source[32];
        switch (c) {
        case 'h':
            usage(stdout, argv[0]);
            return 1;
        case 's':
            opt->skip_fork_per_job = 1;
            break;
        case ':':
            fprintf(stderr, "demo: option '%s' needs a value\n", argv[optind - 1]);
            return -1;
        case '?':
            if (optopt != 0)
                fprintf(stderr, "demo: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "demo: unknown option '%s'\n", argv[optind - 1]);
            return -1;
        default:
            snprintf(source, sizeof source, "--%s", long_name(c));
            if (set_option(opt, c, optarg, source) != 0)
                return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "demo: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ checks, progress */

static void run_start(struct run *r, const struct options *opt, const char *expected,
                      const char *label)
{
    memset(r, 0, sizeof *r);
    r->opt = opt;
    r->expected = expected;
    r->label = label;
    r->progress = isatty(STDERR_FILENO);
}

static void progress_show(struct run *r)
{
    double now;
    if (!r->progress)
        return;
    now = now_seconds();
    if (r->done != 0 && r->done != r->opt->jobs && now - r->last_progress < 0.1)
        return;
    r->last_progress = now;
    fprintf(stderr, "\r%s: %llu/%llu jobs", r->label, (unsigned long long)r->done,
            (unsigned long long)r->opt->jobs);
}

static void progress_clear(const struct run *r)
{
    if (r->progress)
        fprintf(stderr, "\r\033[K");
}

/* Records one job's result; a wrong one is counted and (the first few) reported. */
static void run_check(struct run *r, uint64_t job, const char *hex)
{
    r->done++;
    if (strcmp(hex, r->expected) == 0) {
        r->ok++;
    } else {
        r->wrong++;
        if (r->wrong <= MAX_REPORTED_MISMATCHES) {
            progress_clear(r);
            fprintf(stderr, "demo: %s: job %llu: got %s, want %s\n", r->label,
                    (unsigned long long)job, hex, r->expected);
        }
    }
    progress_show(r);
}

/* A job that produced no result (failed call, failed child). */
static void run_fail(struct run *r, uint64_t job, const char *why)
{
    r->done++;
    r->wrong++;
    progress_clear(r);
    fprintf(stderr, "demo: %s: job %llu: %s\n", r->label, (unsigned long long)job, why);
    progress_show(r);
}

/* ---------------------------------------------------------- (a) serial */

static int way_serial(struct run *r)
{
    char hex[POOL_HEX_LEN];
    uint64_t job;
    progress_show(r);
    for (job = 1; job <= r->opt->jobs; job++) {
        pool_status st = pool_md5_chain(MESSAGE, strlen(MESSAGE), r->opt->iterations, hex);
        if (st != POOL_OK)
            run_fail(r, job, pool_strerror(st));
        else
            run_check(r, job, hex);
    }
    return 0;
}

/* -------------------------------------------------- (b) fork per job */

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes: 1 done, 0 clean EOF, -1 read error (errno), -2 EOF mid-record. */
static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return got == 0 ? 0 : -2;
        got += (size_t)n;
    }
    return 1;
}

/* The child: pay the init, compute, report, _exit (never return, never flush stdio). */
static void child_main(const struct options *opt, uint64_t job, int out_fd)
{
    struct child_record rec;
    memset(&rec, 0, sizeof rec);
    rec.job = job;
    sleep_seconds(opt->init_delay);
    if (pool_md5_chain(MESSAGE, strlen(MESSAGE), opt->iterations, rec.hex) != POOL_OK)
        _exit(1);
    _exit(write_full(out_fd, &rec, sizeof rec) == 0 ? 0 : 1);
}

/* Forks up to `jobs` children; returns how many started (stops at the first failure). */
static uint64_t fork_children(const struct run *r, int fds[2], pid_t *pids)
{
    uint64_t started;
    fflush(NULL); /* nothing buffered may be duplicated into the children */
    for (started = 0; started < r->opt->jobs; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            progress_clear(r);
            fprintf(stderr, "demo: %s: fork for job %llu: %s\n", r->label,
                    (unsigned long long)started + 1, strerror(errno));
            break;
        }
        if (pid == 0) {
            close(fds[0]);
            child_main(r->opt, started + 1, fds[1]);
        }
        pids[started] = pid;
    }
    return started;
}

/* Reads records until every child has closed the pipe. */
static int read_children(struct run *r, int fd)
{
    struct child_record rec;
    int rc;
    while ((rc = read_full(fd, &rec, sizeof rec)) == 1) {
        rec.hex[POOL_HEX_LEN - 1] = '\0';
        run_check(r, rec.job, rec.hex);
    }
    if (rc < 0) {
        progress_clear(r);
        fprintf(stderr, "demo: %s: reading results: %s\n", r->label,
                rc == -1 ? strerror(errno) : "short record");
        return -1;
    }
    return 0;
}

/* Reaps every child; a child that did not exit 0 is a failure. */
static int reap_children(struct run *r, const pid_t *pids, uint64_t count)
{
    int failed = 0;
    uint64_t k;
    for (k = 0; k < count; k++) {
        int status;
        pid_t got;
        while ((got = waitpid(pids[k], &status, 0)) < 0 && errno == EINTR)
            ;
        if (got < 0) {
            run_fail(r, k + 1, strerror(errno));
            failed = 1;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            run_fail(r, k + 1, "child process failed");
            failed = 1;
        }
    }
    return failed ? -1 : 0;
}

static int way_fork_per_job(struct run *r)
{
    int fds[2], rc = 0;
    uint64_t started;
    pid_t *pids = malloc(r->opt->jobs * sizeof *pids);

    if (pids == NULL) {
        fprintf(stderr, "demo: %s: out of memory\n", r->label);
        return -1;
    }
    if (pipe(fds) != 0) {
        fprintf(stderr, "demo: %s: pipe: %s\n", r->label, strerror(errno));
        free(pids);
        return -1;
    }
    progress_show(r);
    started = fork_children(r, fds, pids);
    close(fds[1]); /* EOF once the last child is done */
    if (read_children(r, fds[0]) != 0)
        rc = -1;
    close(fds[0]);
    if (reap_children(r, pids, started) != 0)
        rc = -1;
    if (started < r->opt->jobs || r->done != started)
        rc = -1;
    free(pids);
    return rc;
}

/* -------------------------------------------------------------- (c) pool */

/* Collects one finished job, blocking. Returns -1 if the call itself failed. */
static int collect_one(struct run *r, pool *p)
{
    char hex[POOL_HEX_LEN];
    uint64_t job = 0;
    pool_status st = pool_wait_any(p, -1, &job, hex);
    switch (st) {
    case POOL_OK:
        run_check(r, job, hex);
        return 0;
    case POOL_EWORKER:
    case POOL_EJOBTIMEOUT:
    case POOL_ECANCELED:
    case POOL_ESPAWN:
        run_fail(r, job, pool_strerror(st)); /* the job finished badly; keep going */
        return 0;
    default:
        progress_clear(r);
        fprintf(stderr, "demo: %s: pool_wait_any: %s\n", r->label, pool_strerror(st));
        return -1;
    }
}

/* Submits every job, collecting whenever the queue is full, then collects the rest. */
static int submit_and_collect(struct run *r, pool *p)
{
    uint64_t submitted = 0, job;
    while (submitted < r->opt->jobs) {
        pool_status st = pool_submit(p, MESSAGE, strlen(MESSAGE), r->opt->iterations, &job);
        if (st == POOL_OK) {
            submitted++;
        } else if (st == POOL_EFULL) {
            if (collect_one(r, p) != 0)
                return -1;
        } else {
            progress_clear(r);
            fprintf(stderr, "demo: %s: pool_submit: %s\n", r->label, pool_strerror(st));
            return -1;
        }
    }
    while (r->done < submitted)
        if (collect_one(r, p) != 0)
            return -1;
    return 0;
}

static int way_pool(struct run *r)
{
    pool_config cfg;
    pool_stats stats;
    pool *p = NULL;
    pool_status st;
    int rc;

    pool_config_init(&cfg);
    cfg.workers = r->opt->workers;
    r->workers = cfg.workers;
    if (r->opt->init_delay > 0.0) {
        cfg.worker_init = slow_init;
        cfg.worker_init_arg = (void *)&r->opt->init_delay; /* read only, by slow_init */
    }
    st = pool_create(&cfg, &p);
    if (st != POOL_OK) {
        fprintf(stderr, "demo: %s: pool_create: %s\n", r->label, pool_strerror(st));
        return -1;
    }
    if (pool_stats_get(p, &stats) == POOL_OK)
        r->workers = stats.workers_configured;
    progress_show(r);
    rc = submit_and_collect(r, p);
    st = pool_destroy(p);
    if (st != POOL_OK) {
        progress_clear(r);
        fprintf(stderr, "demo: %s: pool_destroy: %s\n", r->label, pool_strerror(st));
        rc = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ main */

/* Runs one way and returns its wall time; *failed is set if a call failed. */
static double run_timed(int (*way)(struct run *), struct run *r, int *failed)
{
    double start = now_seconds();
    if (way(r) != 0)
        *failed = 1;
    progress_clear(r);
    return now_seconds() - start;
}

static void print_row(const char *way, double seconds, double serial_seconds)
{
    printf("  %-24s %7.2f s %8.2fx\n", way, seconds,
           seconds > 0.0 ? serial_seconds / seconds : 0.0);
    fflush(stdout);
}

static int expected_digest(const struct options *opt, char hex[POOL_HEX_LEN])
{
    pool_status st;
    if (opt->iterations == POOL_DEFAULT_ITERATIONS) {
        memcpy(hex, MESSAGE_DIGEST_1M, POOL_HEX_LEN);
        return 0;
    }
    st = pool_md5_chain(MESSAGE, strlen(MESSAGE), opt->iterations, hex);
    if (st != POOL_OK) {
        fprintf(stderr, "demo: pool_md5_chain: %s\n", pool_strerror(st));
        return -1;
    }
    return 0;
}

static void print_header(const struct options *opt)
{
    char delay[32];
    printf("md5pool %s demo: %llu jobs of md5chain(\"%s\", %llu), %u CPUs, init delay %s s\n",
           pool_version(), (unsigned long long)opt->jobs, MESSAGE,
           (unsigned long long)opt->iterations, cpu_count(),
           format_seconds(opt->init_delay, delay, sizeof delay));
    printf("  %-24s %9s %9s\n", "way", "wall time", "speedup");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct options opt;
    struct run a, b, c;
    char expected[POOL_HEX_LEN], label[48];
    double serial;
    uint64_t want, ok;
    int failed = 0;

    switch (parse_options(&opt, argc, argv)) {
    case 1:
        return 0;
    case -1:
        fprintf(stderr, "Try '%s --help'.\n", argv[0]);
        return 2;
    }
    /* (b) reaps its own children: an inherited SIGCHLD=SIG_IGN would hide them. */
    signal(SIGCHLD, SIG_DFL);
    if (expected_digest(&opt, expected) != 0)
        return 1;
    print_header(&opt);

    run_start(&a, &opt, expected, "(a) serial");
    serial = run_timed(way_serial, &a, &failed);
    print_row("(a) serial, in-process", serial, serial);

    run_start(&b, &opt, expected, "(b) fork per job");
    if (opt.skip_fork_per_job) {
        printf("  %-24s %9s %9s\n", "(b) fork per job", "skipped", "-");
    } else {
        double t = run_timed(way_fork_per_job, &b, &failed);
        print_row("(b) fork per job", t, serial);
    }

    run_start(&c, &opt, expected, "(c) pool");
    {
        double t = run_timed(way_pool, &c, &failed);
        snprintf(label, sizeof label, "(c) pool, %u worker%s", (unsigned)c.workers,
                 c.workers == 1 ? "" : "s");
        print_row(label, t, serial);
    }

    want = opt.jobs * (opt.skip_fork_per_job ? 2u : 3u);
    ok = a.ok + b.ok + c.ok;
    if (ok == want && !failed) {
        printf("all %llu results == %s\n", (unsigned long long)ok, expected);
        return 0;
    }
    printf("FAILED: %llu of %llu results wrong or missing (want %s)\n",
           (unsigned long long)(want - ok), (unsigned long long)want, expected);
    return 1;
}
