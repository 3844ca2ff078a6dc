/* A worker may die at any moment.
 *   - SIGKILL or SIGSEGV of a worker running a job: it is replaced and the job re-run;
 *   - a job whose worker dies max_attempts times finishes POOL_EWORKER;
 *   - a worker_init that exit(3)s on the first start: replaced, jobs answered;
 *   - crash loop (worker_init always _exit(1)): pool_create OK, then POOL_ESPAWN for
 *     submits and queued jobs, with backed-off restarts (no fork bomb);
 *   - recovery: worker_init failing the first 6 starts, then pool_submit works again.
 */
#include "check.h"

#define MAX_STARTS 256

/* Lives in a MAP_SHARED mapping made before pool_create: workers write to it. */
struct shared_starts {
    int starts;
    int fail_first; /* the first `fail_first` starts fail; -1: all of them */
    int how;        /* 0: _exit(1), 1: exit(3) */
    double at[MAX_STARTS];
};

static void counting_init(void *arg)
{
    struct shared_starts *s = arg;
    int n = host_counter_add(&s->starts, 1);
    if (n <= MAX_STARTS)
        s->at[n - 1] = now_seconds();
    if (s->fail_first < 0 || n <= s->fail_first) {
        if (s->how == 1)
            exit(3);
        _exit(1);
    }
}

static struct shared_starts *new_shared(int fail_first, int how)
{
    struct shared_starts *s = (struct shared_starts *)host_shared_counter();
    CHECK(sizeof *s <= 4096);
    s->fail_first = fail_first;
    s->how = how;
    return s;
}

static pool *pool_with(uint32_t workers, uint32_t max_attempts, struct shared_starts *s)
{
    pool_config cfg;
    pool *p = NULL;
    pool_config_init(&cfg);
    cfg.workers = workers;
    cfg.max_attempts = max_attempts;
    if (s) {
        cfg.worker_init = counting_init;
        cfg.worker_init_arg = s;
    }
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(p != NULL);
    return p;
}

/* Waits until a job runs on a live worker other than `not_pid`; returns that worker. */
static pid_t running_worker(pool *p, pid_t not_pid, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        pool_stats s;
        int32_t pids[8];
        size_t n;
        CHECK_OK(pool_stats_get(p, &s));
        n = worker_pids(p, pids, 8);
        if (s.jobs_running == 1 && n == 1 && pids[0] != not_pid)
            return pids[0];
        sleep_ms(2);
    } while (now_seconds() < end);
    fprintf(stderr, "no job started running on a new worker within %ld ms\n", ms);
    exit(1);
}

/* A worker killed by `sig` while running a job: replaced, the job re-run and answered. */
static void killed_worker_job_rerun(int sig)
{
    const char *msg = "killed while running";
    const uint64_t iters = 1000000;
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t id;
    pid_t victim, fs;
    int32_t replacement;
    pool_stats s;
    pool *p = pool_with(1, 3, NULL);

    CHECK_OK(host_run_job(p, "warm-up", 1, 10000));
    fs = host_fork_server(p);
    CHECK_OK(pool_md5_chain(msg, strlen(msg), iters, want));
    CHECK_OK(pool_submit(p, msg, strlen(msg), iters, &id));
    victim = running_worker(p, 0, 10000);
    sleep_ms(20);
    CHECK(kill(victim, sig) == 0);
    CHECK(gone_within(victim, 2000));
    CHECK_OK(pool_wait(p, id, 30000, hex));
    CHECK(strcmp(hex, want) == 0);
    CHECK_OK(pool_stats_get(p, &s));
    CHECK(s.jobs_retried == 1);
    CHECK(s.jobs_completed == 2);
    CHECK(s.jobs_failed == 0);
    CHECK(s.worker_restarts >= 1);
    CHECK(host_wait_workers(p, 1, 5000));
    CHECK(worker_pids(p, &replacement, 1) == 1);
    CHECK(replacement != victim);
    CHECK(parent_of(replacement) == fs);
    CHECK_OK(host_run_job(p, "after the kill", 7, 10000));
    CHECK_OK(pool_destroy(p));
}

/* A job whose worker is killed on each of its max_attempts tries ends POOL_EWORKER;
 * the pool goes on. */
static void job_dies_max_attempts_times(void)
{
    const uint32_t max_attempts = 3;
    char hex[POOL_HEX_LEN];
    uint64_t id;
    uint32_t kills = 0;
    pid_t last = 0;
    pool_status st;
    pool_stats s;
    pool *p = pool_with(1, max_attempts, NULL);

    CHECK_OK(host_run_job(p, "warm-up", 1, 10000));
    /* Long enough (tens of seconds) never to finish on its own here. */
    CHECK_OK(pool_submit(p, "doomed", 6, 100000000, &id));
    for (;;) {
        /* Fails (times out) if the job stopped running before its last try. */
        last = running_worker(p, last, 10000);
        CHECK(kill(last, SIGKILL) == 0);
        kills++;
        CHECK(gone_within(last, 2000));
        if (kills == max_attempts)
            break;
    }
    st = pool_wait(p, id, 10000, hex);
    CHECK_STATUS(st, POOL_EWORKER);
    CHECK(kills == max_attempts);
    CHECK_STATUS(pool_wait(p, id, 0, hex), POOL_ENOJOB);
    CHECK_OK(pool_stats_get(p, &s));
    CHECK(s.jobs_failed == 1);
    CHECK(s.jobs_retried == max_attempts - 1);
    CHECK_OK(host_run_job(p, "after EWORKER", 3, 10000));
    CHECK_OK(pool_destroy(p));
}

/* worker_init calls exit(3) on the very first start: the pool replaces the worker
 * and answers jobs. */
static void first_start_fails(void)
{
    struct shared_starts *s = new_shared(1, 1);
    pool_stats st;
    pool *p = pool_with(1, 3, s);
    CHECK_OK(host_run_job(p, "after a failed first start", 1000, 10000));
    CHECK(host_counter_get(&s->starts) == 2);
    CHECK_OK(pool_stats_get(p, &st));
    CHECK(st.worker_restarts >= 1);
    CHECK(st.workers_alive == 1);
    CHECK_OK(pool_destroy(p));
    CHECK(munmap(s, 4096) == 0);
}

/* worker_init always _exit(1)s: pool_create succeeds, then jobs and submits get
 * POOL_ESPAWN, and the starts back off (25, 50, 100, 200 ms, then >= 1 s apart). */
static void crash_loop_backs_off(uint32_t workers)
{
    struct shared_starts *s = new_shared(-1, 0);
    uint64_t ids[3];
    char hex[POOL_HEX_LEN];
    double t0 = now_seconds(), until, destroy_start;
    int i, n, saw_espawn = 0, tries = 0;
    uint64_t id;
    pool_config cfg;
    pool *p = NULL;
    pool_status created;

    /* pool_create must return POOL_OK here; that is checked on its own by
     * create_ok_despite_crashing_init. This test is about what comes after, so it
     * retries a failed create (and says so). */
    pool_config_init(&cfg);
    cfg.workers = workers;
    cfg.worker_init = counting_init;
    cfg.worker_init_arg = s;
    do {
        s->starts = 0;
        t0 = now_seconds();
        created = pool_create(&cfg, &p);
    } while (created == POOL_ESPAWN && ++tries < 100);
    CHECK_OK(created);
    if (tries)
        printf("  (pool_create returned POOL_ESPAWN %d times first: see "
               "create_ok_with_crashing_init_4_workers)\n", tries);

    /* Jobs queued while the workers crash finish with POOL_ESPAWN (bounded waits). */
    for (i = 0; i < 3; i++)
        CHECK_OK(pool_submit(p, "never runs", 10, 5, &ids[i]));
    for (i = 0; i < 3; i++)
        CHECK_STATUS(pool_wait(p, ids[i], 5000, hex), POOL_ESPAWN);
    CHECK(now_seconds() - t0 < 5.0);
    /* The pool says it is unable to start workers. */
    until = now_seconds() + 3.0;
    while (!saw_espawn && now_seconds() < until) {
        pool_status st = pool_submit(p, "x", 1, 1, &id);
        if (st == POOL_ESPAWN)
            saw_espawn = 1;
        else {
            CHECK_OK(st);
            CHECK_STATUS(pool_wait(p, id, 5000, hex), POOL_ESPAWN);
        }
    }
    CHECK(saw_espawn);
    /* Count the starts over the first 3 seconds. */
    sleep_ms((long)((t0 + 3.0 - now_seconds()) * 1000.0));
    n = host_counter_get(&s->starts);
    printf("  crash loop, %u workers: %d starts in 3 s\n", workers, n);
    CHECK(n >= 5);
    CHECK(n <= 10);
    for (i = 0; i < n && i < MAX_STARTS; i++)
        printf("    start %d at +%.3f s\n", i + 1, s->at[i] - t0);
    /* One retry at a time, with a growing delay (the first is 25 ms): no two
     * retries at the same moment. */
    for (i = (int)workers; i < n && i < MAX_STARTS; i++)
        if (s->at[i] - s->at[i - 1] < 0.015) {
            fprintf(stderr, "retry (start %d) came %.3f s after the previous start: expected "
                            "one retry at a time after a growing delay (>= 25 ms)\n", i + 1,
                    s->at[i] - s->at[i - 1]);
            exit(1);
        }
    /* Backed off: after 5 failed starts in a row, at most one start a second. */
    for (i = 5; i < n && i < MAX_STARTS; i++)
        if (s->at[i] - s->at[i - 1] < 0.8) {
            fprintf(stderr, "start %d came %.3f s after the previous one (backed off: at "
                            "most one start a second expected)\n", i + 1, s->at[i] - s->at[i - 1]);
            exit(1);
        }
    destroy_start = now_seconds();
    CHECK_OK(pool_destroy(p));
    CHECK(now_seconds() - destroy_start < 3.0);
    CHECK(host_all_children(getpid()) == 0);
    CHECK(munmap(s, 4096) == 0);
}

/* worker_init fails on the first 6 starts, then succeeds: the pool is unable to
 * start workers for a while, then pool_submit works again. */
static void recovers_after_failed_starts(void)
{
    struct shared_starts *s = new_shared(6, 0);
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    double end = now_seconds() + 15.0;
    int saw_espawn = 0;
    uint64_t id = 0;
    pool_status st = POOL_ESPAWN;
    pool *p = pool_with(1, 3, s);

    while (now_seconds() < end) {
        st = pool_submit(p, "recovered", 9, 100, &id);
        if (st == POOL_ESPAWN) {
            saw_espawn = 1;
        } else {
            CHECK_OK(st);
            if (saw_espawn)
                break;
            /* Submitted before the pool gave up: must end, with ESPAWN or OK. */
            st = pool_wait(p, id, 10000, hex);
            CHECK(st == POOL_ESPAWN || st == POOL_OK);
            st = POOL_ESPAWN;
        }
        sleep_ms(20);
    }
    CHECK(saw_espawn);
    CHECK_OK(st);
    CHECK_OK(pool_md5_chain("recovered", 9, 100, want));
    CHECK_OK(pool_wait(p, id, 10000, hex));
    CHECK(strcmp(hex, want) == 0);
    CHECK(host_counter_get(&s->starts) == 7);
    CHECK_OK(host_run_job(p, "still fine", 50, 10000));
    CHECK_OK(pool_destroy(p));
    CHECK(munmap(s, 4096) == 0);
}

/* worker_init always fails: pool_create still returns POOL_OK however many workers
 * it starts (it returns once the processes exist; a failing worker_init is a failed
 * start handled by the backoff, not a failure of pool_create). Repeated, because
 * whether a worker dies before its siblings are reported is a race. */
static void create_ok_despite_crashing_init(uint32_t workers, int tries)
{
    int i, failed = 0;
    for (i = 0; i < tries; i++) {
        struct shared_starts *s = new_shared(-1, 0);
        pool_config cfg;
        pool *p = NULL;
        pool_status st;
        pool_config_init(&cfg);
        cfg.workers = workers;
        cfg.worker_init = counting_init;
        cfg.worker_init_arg = s;
        st = pool_create(&cfg, &p);
        if (st != POOL_OK)
            failed++;
        else
            CHECK_OK(pool_destroy(p));
        CHECK(munmap(s, 4096) == 0);
    }
    if (failed) {
        fprintf(stderr, "pool_create with %u workers whose worker_init always fails returned "
                        "an error (POOL_ESPAWN) in %d of %d tries; expected POOL_OK\n",
                workers, failed, tries);
        exit(1);
    }
    CHECK(host_all_children(getpid()) == 0);
}

static void sigkill_running_worker(void) { killed_worker_job_rerun(SIGKILL); }
static void sigsegv_running_worker(void) { killed_worker_job_rerun(SIGSEGV); }
static void crash_loop_one_worker(void) { crash_loop_backs_off(1); }
static void crash_loop_two_workers(void) { crash_loop_backs_off(2); }
static void create_ok_with_crashing_init_4_workers(void) { create_ok_despite_crashing_init(4, 20); }

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(sigkill_running_worker);
    failed += HOST_SUBTEST(sigsegv_running_worker);
    failed += HOST_SUBTEST(job_dies_max_attempts_times);
    failed += HOST_SUBTEST(first_start_fails);
    failed += HOST_SUBTEST(crash_loop_one_worker);
    failed += HOST_SUBTEST(recovers_after_failed_starts);
    failed += HOST_SUBTEST(crash_loop_two_workers);
    failed += HOST_SUBTEST(create_ok_with_crashing_init_4_workers);
    CHECK(host_all_children(getpid()) == 0);
    return failed != 0;
}
