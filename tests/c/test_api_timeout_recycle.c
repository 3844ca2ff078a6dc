/* job_timeout_ms: a job past it ends with POOL_EJOBTIMEOUT and its worker drops
 * it and lives on. max_jobs_per_worker: workers are recycled, jobs still right. */
#include "check.h"

static void job_timeout(void)
{
    pool_config cfg;
    pool *p;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int32_t old_pid, new_pid;
    uint64_t id, got;
    pool_stats st;
    double t;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.job_timeout_ms = 200;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(worker_pids(p, &old_pid, 1) == 1);

    /* Well under the limit: fine. */
    ref_hex("short", 5, 20000, want);
    id = submit(p, "short", 5, 20000);
    wait_ok(p, id, want);

    t = now_seconds();
    id = submit(p, "huge", 4, HUGE_ITERATIONS);
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_EJOBTIMEOUT);
    t = now_seconds() - t;
    fprintf(stderr, "timed out after %.3f s\n", t);
    CHECK(t >= 0.19 && t < 5.0);
    CHECK_STATUS(pool_wait(p, id, 0, hex), POOL_ENOJOB);

    st = stats_of(p);
    CHECK(st.jobs_failed == 1 && st.jobs_completed == 1);
    CHECK(st.jobs_retried == 0); /* a timeout is not retried */

    /* The next short job answers right on the same worker. */
    id = submit(p, "short", 5, 20000);
    wait_ok(p, id, want);

    CHECK(worker_pids(p, &new_pid, 1) == 1 && new_pid == old_pid);
    CHECK(stats_of(p).worker_restarts == 0);

    /* Through pool_wait_any as well. */
    id = submit(p, "huge", 4, HUGE_ITERATIONS);
    CHECK_STATUS(pool_wait_any(p, LONG_WAIT_MS, &got, hex), POOL_EJOBTIMEOUT);
    CHECK(got == id);
    CHECK_OK(pool_destroy(p));
}

static void recycling(void)
{
    pool_config cfg;
    pool *p;
    char want[10][POOL_HEX_LEN], msg[16];
    uint64_t ids[10];
    int32_t first_pid, last_pid;
    pool_stats st;
    int i;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_jobs_per_worker = 3; /* max_attempts left at its default */
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(worker_pids(p, &first_pid, 1) == 1);

    for (i = 0; i < 10; i++) {
        int len = snprintf(msg, sizeof msg, "r%d", i);
        ref_hex(msg, (size_t)len, 1000 + (uint64_t)i, want[i]);
        ids[i] = submit(p, msg, (size_t)len, 1000 + (uint64_t)i);
    }
    for (i = 0; i < 10; i++)
        wait_ok(p, ids[i], want[i]);

    CHECK(worker_pids(p, &last_pid, 1) == 1 && last_pid != first_pid);
    CHECK(gone_within(first_pid, 5000));
    st = stats_of(p);
    fprintf(stderr, "worker_restarts %llu\n", (unsigned long long)st.worker_restarts);
    CHECK(st.worker_restarts >= 3);
    CHECK(st.jobs_completed == 10 && st.jobs_failed == 0);
    CHECK(st.jobs_retried == 0); /* recycling is not a failure */
    CHECK(st.workers_configured == 1);

    /* One job at a time: the same, 4 jobs -> a new worker after the third. */
    for (i = 0; i < 4; i++) {
        ids[0] = submit(p, "r0", 2, 1000);
        wait_ok(p, ids[0], want[0]);
    }
    CHECK(stats_of(p).worker_restarts >= 4);
    CHECK(stats_of(p).jobs_retried == 0);
    CHECK_OK(pool_destroy(p));
}

int main(void)
{
    job_timeout();
    recycling();
    return 0;
}
