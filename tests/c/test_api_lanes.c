/* A worker runs its jobs in slices and takes new ones between them: a short job
 * never waits behind a long one, a job's timeout counts from its own start, and
 * a canceled or timed-out job is dropped by its worker, which keeps its other
 * jobs going. A worker that does not confirm a stop (here: SIGSTOPped) is killed
 * and replaced after a short grace. Run under every engine (make test-engines). */
#include "check.h"

#include <signal.h>

#define SHORT_ITERATIONS 1000

/* True while job `id` is still outstanding and not finished. */
static int still_running(pool *p, uint64_t id)
{
    char hex[POOL_HEX_LEN];
    return pool_wait(p, id, 0, hex) == POOL_ETIMEDOUT;
}

/* A short job submitted while `busy` long jobs hold every worker finishes
 * while they still run (they need minutes). */
static void short_beside_long(uint32_t workers)
{
    pool *p = make_pool(workers);
    uint64_t longs[2], id;
    char want[POOL_HEX_LEN];
    uint32_t i;
    int round;

    for (i = 0; i < workers; i++)
        longs[i] = submit(p, "long", 4, HUGE_ITERATIONS);
    CHECK(running_within(p, workers, LONG_WAIT_MS));
    ref_hex("short", 5, SHORT_ITERATIONS, want);
    for (round = 0; round < 20; round++) {
        id = submit(p, "short", 5, SHORT_ITERATIONS);
        wait_ok(p, id, want);
    }
    for (i = 0; i < workers; i++) {
        CHECK(still_running(p, longs[i]));
        CHECK_OK(pool_cancel(p, longs[i]));
    }
    CHECK(stats_of(p).worker_restarts == 0);
    CHECK_OK(pool_destroy(p));
}

/* job_timeout_ms counts per job from its own start: a short job right behind
 * one that runs forever succeeds, the long one times out, the worker lives. */
static void beside_a_timed_out_job(void)
{
    pool_config cfg;
    pool *p;
    uint64_t forever, shorts[8];
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int32_t before, after;
    int i;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.job_timeout_ms = 300;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(worker_pids(p, &before, 1) == 1);
    ref_hex("short", 5, SHORT_ITERATIONS, want);
    forever = submit(p, "forever", 7, HUGE_ITERATIONS);
    for (i = 0; i < 8; i++)
        shorts[i] = submit(p, "short", 5, SHORT_ITERATIONS);
    for (i = 0; i < 8; i++)
        wait_ok(p, shorts[i], want);
    CHECK_STATUS(pool_wait(p, forever, LONG_WAIT_MS, hex), POOL_EJOBTIMEOUT);
    /* And once more after the timeout, on the same worker. */
    wait_ok(p, submit(p, "short", 5, SHORT_ITERATIONS), want);
    CHECK(worker_pids(p, &after, 1) == 1 && after == before);
    CHECK(stats_of(p).worker_restarts == 0);
    CHECK_OK(pool_destroy(p));
}

/* Canceling one of three running jobs keeps the worker and the other two. */
static void cancel_one_of_three(void)
{
    pool *p = make_pool(1);
    uint64_t ids[3];
    char want[2][POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int32_t before, after;

    CHECK(worker_pids(p, &before, 1) == 1);
    ref_hex("first", 5, 3000000, want[0]);
    ref_hex("third", 5, 3000000, want[1]);
    ids[0] = submit(p, "first", 5, 3000000);
    ids[1] = submit(p, "second", 6, HUGE_ITERATIONS);
    ids[2] = submit(p, "third", 5, 3000000);
    CHECK(running_within(p, 3, LONG_WAIT_MS));
    CHECK_OK(pool_cancel(p, ids[1]));
    CHECK_STATUS(pool_wait(p, ids[1], LONG_WAIT_MS, hex), POOL_ECANCELED);
    wait_ok(p, ids[0], want[0]);
    wait_ok(p, ids[2], want[1]);
    CHECK(worker_pids(p, &after, 1) == 1 && after == before);
    CHECK(stats_of(p).worker_restarts == 0);
    CHECK_OK(pool_destroy(p));
}

/* A worker that cannot confirm a stop is killed after the grace and replaced;
 * the job queued behind still answers, on the new worker. */
static void worker_ignoring_a_stop(void)
{
    pool *p = make_pool(1);
    uint64_t victim, next;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int32_t before, after;

    CHECK(worker_pids(p, &before, 1) == 1);
    victim = submit(p, "victim", 6, HUGE_ITERATIONS);
    CHECK(running_within(p, 1, LONG_WAIT_MS));
    CHECK(kill(before, SIGSTOP) == 0);
    CHECK_OK(pool_cancel(p, victim));
    CHECK_STATUS(pool_wait(p, victim, LONG_WAIT_MS, hex), POOL_ECANCELED);
    CHECK(replaced_within(p, before, 1, 10000));
    CHECK(gone_within(before, 5000));
    ref_hex("next", 4, SHORT_ITERATIONS, want);
    next = submit(p, "next", 4, SHORT_ITERATIONS);
    wait_ok(p, next, want);
    CHECK(worker_pids(p, &after, 1) == 1 && after != before);
    CHECK(stats_of(p).worker_restarts == 1);
    CHECK_OK(pool_destroy(p));
}

int main(void)
{
    short_beside_long(1);
    short_beside_long(2);
    beside_a_timed_out_job();
    cancel_one_of_three();
    worker_ignoring_a_stop();
    return 0;
}
