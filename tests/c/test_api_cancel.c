/* pool_cancel on a queued, a running and a finished job: each is collected
 * with POOL_ECANCELED (once), a running one is dropped by its worker, which
 * lives on, and the other jobs still answer right. */
#include "check.h"

#define MAX_HUGE 4096

static uint64_t huge[MAX_HUGE];

int main(void)
{
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    uint64_t queued, after, finished;
    size_t nhuge, i;
    int32_t old_pid, new_pid;
    pool_stats st;
    pool *p = make_pool(1);

    ref_hex("other", 5, 5000, want);
    CHECK(worker_pids(p, &old_pid, 1) == 1);

    /* The only worker busy with huge jobs; two small ones wait in the queue. */
    nhuge = saturate(p, huge, MAX_HUGE);
    queued = submit(p, "queued", 6, 5000);
    after = submit(p, "other", 5, 5000);
    st = stats_of(p);
    CHECK(st.jobs_queued >= 3 && st.jobs_running >= 1);

    /* Queued: dropped; the worker is not touched. */
    CHECK_OK(pool_cancel(p, queued));
    CHECK_STATUS(pool_wait(p, queued, LONG_WAIT_MS, hex), POOL_ECANCELED);
    CHECK_STATUS(pool_cancel(p, queued), POOL_ENOJOB);
    CHECK_STATUS(pool_wait(p, queued, 0, hex), POOL_ENOJOB);
    CHECK(worker_pids(p, &new_pid, 1) == 1 && new_pid == old_pid);
    CHECK(stats_of(p).worker_restarts == 0);

    /* Running (and the queued huge ones): the worker drops them and lives on. */
    for (i = 0; i < nhuge; i++)
        CHECK_OK(pool_cancel(p, huge[i]));
    for (i = 0; i < nhuge; i++) {
        CHECK_STATUS(pool_wait(p, huge[i], LONG_WAIT_MS, hex), POOL_ECANCELED);
        CHECK_STATUS(pool_cancel(p, huge[i]), POOL_ENOJOB);
    }

    /* The job queued behind them runs on the same worker. */
    wait_ok(p, after, want);
    CHECK(worker_pids(p, &new_pid, 1) == 1 && new_pid == old_pid);
    CHECK(stats_of(p).worker_restarts == 0);

    /* Finished: the result is discarded. */
    finished = submit(p, "other", 5, 5000);
    CHECK(ready_within(p, 1, LONG_WAIT_MS));
    CHECK_OK(pool_cancel(p, finished));
    CHECK_STATUS(pool_wait(p, finished, 0, hex), POOL_ECANCELED);
    CHECK_STATUS(pool_cancel(p, finished), POOL_ENOJOB);
    CHECK(worker_pids(p, &old_pid, 1) == 1 && old_pid == new_pid); /* no kill for that */

    /* A canceled job is also offered by pool_wait_any, with its status. */
    {
        uint64_t got = 0, id = submit(p, "huge", 4, HUGE_ITERATIONS);
        CHECK(running_within(p, 1, LONG_WAIT_MS));
        CHECK_OK(pool_cancel(p, id));
        CHECK_STATUS(pool_wait_any(p, LONG_WAIT_MS, &got, hex), POOL_ECANCELED);
        CHECK(got == id);
        CHECK_STATUS(pool_wait_any(p, 0, &got, hex), POOL_ENOJOB);
    }

    /* A job that shares the worker with a canceled one (a worker runs several at
     * once) goes on: even with max_attempts = 1 it answers. */
    {
        pool_config cfg;
        pool *q;
        uint64_t victim, mate;
        pool_config_init(&cfg);
        cfg.workers = 1;
        cfg.max_attempts = 1;
        CHECK_OK(pool_create(&cfg, &q));
        ref_hex("mate", 4, 1000000, want);
        victim = submit(q, "huge", 4, HUGE_ITERATIONS);
        mate = submit(q, "mate", 4, 1000000);
        CHECK(running_within(q, 1, LONG_WAIT_MS));
        sleep_ms(20);
        CHECK_OK(pool_cancel(q, victim));
        wait_ok(q, mate, want);
        CHECK_STATUS(pool_wait(q, victim, 0, hex), POOL_ECANCELED);
        CHECK(stats_of(q).jobs_failed == 1);
        CHECK_OK(pool_destroy(q));
    }

    /* Even the longest job there can be is canceled like any other. */
    {
        uint64_t id = submit(p, "max", 3, UINT64_MAX);
        CHECK(running_within(p, 1, LONG_WAIT_MS));
        CHECK_OK(pool_cancel(p, id));
        CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_ECANCELED);
    }

    /* Canceling one running job leaves the pool's other work right. */
    {
        pool *q = make_pool(2);
        uint64_t ids[6], victim;
        char w[6][POOL_HEX_LEN], msg[16];
        for (i = 0; i < 6; i++) {
            int len = snprintf(msg, sizeof msg, "m%d", (int)i);
            ref_hex(msg, (size_t)len, 300000, w[i]);
            ids[i] = submit(q, msg, (size_t)len, 300000);
        }
        victim = submit(q, "huge", 4, HUGE_ITERATIONS);
        CHECK(running_within(q, 1, LONG_WAIT_MS));
        CHECK_OK(pool_cancel(q, victim));
        for (i = 0; i < 6; i++)
            wait_ok(q, ids[i], w[i]);
        CHECK_STATUS(pool_wait(q, victim, LONG_WAIT_MS, hex), POOL_ECANCELED);
        CHECK_OK(pool_destroy(q));
    }

    st = stats_of(p);
    CHECK(st.jobs_queued == 0 && st.jobs_running == 0 && st.jobs_ready == 0);
    CHECK_OK(pool_destroy(p));
    return 0;
}
