/* The most workers the contract allows (1,024) start within seconds, run jobs
 * right and are all reaped at pool_destroy, with every descriptor given back;
 * with too few descriptors for the channels pool_create fails promptly with
 * POOL_ESPAWN (or, if it fits after all, the pool works) and leaks nothing. */
#include <sys/resource.h>

#include "check.h"

#define MAX_WORKERS 1024
#define JOBS (2 * MAX_WORKERS)
#define ITERATIONS 100

/* Sets the soft descriptor limit, raising the hard one too when allowed (root);
 * else as far as the hard limit goes, which must leave room for `need`. */
static void set_fd_limit(rlim_t soft, rlim_t need)
{
    struct rlimit lim;
    CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    lim.rlim_cur = soft;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < soft) {
        struct rlimit raised = lim;
        raised.rlim_max = soft;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return;
        lim.rlim_cur = lim.rlim_max;
    }
    if (lim.rlim_cur < need) {
        fprintf(stderr, "RLIMIT_NOFILE hard limit %lu is below the %lu this test needs\n",
                (unsigned long)lim.rlim_max, (unsigned long)need);
        exit(1);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
}

static void wait_until_no_children(long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    while ((children_of(getpid()) > 0 || count_children(getpid(), 1) > 0) && now_seconds() < end)
        sleep_ms(10);
    CHECK(children_of(getpid()) == 0);
    CHECK(count_children(getpid(), 1) == 0);
}

static void test_all_workers(void)
{
    static int32_t pids[MAX_WORKERS + 1];
    static uint64_t ids[JOBS];
    char msg[32], want[POOL_HEX_LEN], got[POOL_HEX_LEN];
    int fds_before = open_fd_count();
    double start;
    pool_config cfg;
    pool *p = NULL;
    size_t n, i;

    set_fd_limit(4096, (rlim_t)fds_before + MAX_WORKERS + 64);
    pool_config_init(&cfg);
    cfg.workers = MAX_WORKERS;
    start = now_seconds();
    CHECK_OK(pool_create(&cfg, &p));
    printf("pool_create with %d workers: %.2f s\n", MAX_WORKERS, now_seconds() - start);
    CHECK(now_seconds() - start < 30.0);

    n = worker_pids(p, pids, MAX_WORKERS + 1);
    CHECK(n == MAX_WORKERS);
    for (i = 0; i < n; i++)
        CHECK(state_of(pids[i]) != 0 && state_of(pids[i]) != 'Z');
    CHECK(stats_of(p).workers_alive == MAX_WORKERS);

    for (i = 0; i < JOBS; i++) {
        int len = snprintf(msg, sizeof msg, "job %zu", i);
        ids[i] = submit(p, msg, (size_t)len, ITERATIONS);
    }
    for (i = 0; i < JOBS; i++) {
        int len = snprintf(msg, sizeof msg, "job %zu", i);
        ref_hex(msg, (size_t)len, ITERATIONS, want);
        CHECK_OK(pool_wait(p, ids[i], LONG_WAIT_MS, got));
        CHECK(strcmp(got, want) == 0);
    }
    CHECK(stats_of(p).jobs_completed == JOBS);

    start = now_seconds();
    CHECK_OK(pool_destroy(p));
    printf("pool_destroy with %d workers: %.2f s\n", MAX_WORKERS, now_seconds() - start);
    for (i = 0; i < n; i++)
        CHECK(gone_within(pids[i], 5000));
    wait_until_no_children(5000);
    CHECK(open_fd_count() == fds_before);
}

/* Room for ~100 channels, for a pool of 200 workers. */
static void test_too_few_descriptors(void)
{
    struct rlimit saved;
    int fds_before = open_fd_count();
    double start, took;
    pool_config cfg;
    pool *p = NULL;
    pool_status status;

    CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    set_fd_limit((rlim_t)fds_before + 100, (rlim_t)fds_before + 100);
    pool_config_init(&cfg);
    cfg.workers = 200;
    start = now_seconds();
    status = pool_create(&cfg, &p);
    took = now_seconds() - start;
    printf("pool_create with 200 workers and %d descriptors free: %s in %.2f s\n", 100,
           pool_strerror(status), took);
    CHECK(took < 10.0);
    if (status == POOL_OK) {
        char want[POOL_HEX_LEN];
        ref_hex("x", 1, 10, want);
        wait_ok(p, submit(p, "x", 1, 10), want);
        CHECK_OK(pool_destroy(p));
    } else {
        CHECK_STATUS(status, POOL_ESPAWN);
        CHECK(p == NULL);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    wait_until_no_children(5000);
    CHECK(open_fd_count() == fds_before);
}

int main(void)
{
    test_too_few_descriptors();
    test_all_workers();
    test_too_few_descriptors();
    printf("test_edge_workers: ok\n");
    return 0;
}
