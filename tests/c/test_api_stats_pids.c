/* pool_stats_get counters after known operations, and pool_worker_pids: the
 * cap, the count, and the process tree (workers are children of one fork
 * server, which is a child of this process). */
#include <sched.h>

#include "check.h"

#define MAX_HUGE 4096

static void check_pids(pool *p, uint32_t workers)
{
    int32_t pids[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, first[8];
    size_t count = 999, i, k;
    pid_t server;

    /* cap 0 with NULL pids: just the count. */
    CHECK_OK(pool_worker_pids(p, NULL, 0, &count));
    CHECK(count == workers);

    /* cap smaller than the count: only cap written. */
    count = 0;
    CHECK_OK(pool_worker_pids(p, pids, 1, &count));
    CHECK(count == workers);
    CHECK(pids[0] > 0 && pids[1] == -1);
    first[0] = pids[0];

    count = 0;
    CHECK_OK(pool_worker_pids(p, pids, 8, &count));
    CHECK(count == workers);
    CHECK(pids[workers] == -1);
    server = parent_of(pids[0]);
    CHECK(server > 0 && server != getpid());
    CHECK(parent_of(server) == getpid());
    for (i = 0; i < workers; i++) {
        CHECK(pids[i] > 0 && pids[i] != getpid() && pids[i] != server);
        CHECK(parent_of(pids[i]) == server);
        CHECK(state_of(pids[i]) != 'Z');
        for (k = 0; k < i; k++)
            CHECK(pids[k] != pids[i]);
    }
    /* The one pid written with cap 1 is one of them. */
    for (i = 0; i < workers && pids[i] != first[0]; i++) {
    }
    CHECK(i < workers);
    CHECK(children_of(getpid()) == 1);
}

/* workers = 0 means the CPUs this process may run on (its affinity mask). */
static void default_workers(void)
{
    cpu_set_t all, one;
    pool *p;

    CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
    p = make_pool(0);
    CHECK(stats_of(p).workers_configured == (uint32_t)CPU_COUNT(&all));
    check_pids(p, (uint32_t)CPU_COUNT(&all));
    CHECK_OK(pool_destroy(p));

    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    p = make_pool(0);
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    CHECK(stats_of(p).workers_configured == 1);
    check_pids(p, 1);
    CHECK_OK(pool_destroy(p));
}

int main(void)
{
    pool_config cfg;
    pool_stats st;
    pool *p;
    uint64_t ids[3], q1, q2;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    size_t nhuge;
    int i;

    pool_config_init(&cfg);
    cfg.workers = 3;
    CHECK_OK(pool_create(&cfg, &p));

    st = stats_of(p);
    CHECK(st.workers_configured == 3);
    CHECK(st.workers_alive <= 3);
    CHECK(st.jobs_queued == 0 && st.jobs_running == 0 && st.jobs_ready == 0);
    CHECK(st.jobs_completed == 0 && st.jobs_failed == 0);
    CHECK(st.jobs_retried == 0 && st.worker_restarts == 0);
    check_pids(p, 3);

    /* Three jobs finished, not collected. */
    ref_hex("s", 1, 1000, want);
    for (i = 0; i < 3; i++)
        ids[i] = submit(p, "s", 1, 1000);
    CHECK(ready_within(p, 3, LONG_WAIT_MS));
    st = stats_of(p);
    CHECK(st.jobs_ready == 3 && st.jobs_queued == 0 && st.jobs_running == 0);
    CHECK(st.jobs_completed == 3 && st.jobs_failed == 0);
    CHECK(st.workers_alive == 3);

    /* Collected: ready drops, the totals stay. */
    for (i = 0; i < 3; i++)
        wait_ok(p, ids[i], want);
    st = stats_of(p);
    CHECK(st.jobs_ready == 0 && st.jobs_completed == 3 && st.jobs_failed == 0);

    /* Every worker busy: running and queued jobs. */
    nhuge = saturate(p, NULL, MAX_HUGE);
    q1 = submit(p, "s", 1, 1000);
    q2 = submit(p, "s", 1, 1000);
    st = stats_of(p);
    CHECK(st.jobs_running >= 3);
    CHECK(st.jobs_queued >= 3);
    CHECK(st.jobs_running + st.jobs_queued == nhuge + 2);
    CHECK(st.jobs_ready == 0 && st.jobs_completed == 3);

    /* A canceled queued job counts as failed once it is finished. */
    CHECK_OK(pool_cancel(p, q1));
    st = stats_of(p);
    CHECK(st.jobs_failed == 1 && st.jobs_ready == 1);
    CHECK(st.jobs_running + st.jobs_queued == nhuge + 1);
    CHECK_STATUS(pool_wait(p, q1, 0, hex), POOL_ECANCELED);
    st = stats_of(p);
    CHECK(st.jobs_ready == 0 && st.jobs_failed == 1 && st.jobs_completed == 3);
    CHECK(st.worker_restarts == 0 && st.jobs_retried == 0);
    CHECK(st.workers_alive == 3);
    check_pids(p, 3);

    (void)q2;
    CHECK_OK(pool_destroy(p));

    /* One worker: the count is exact with cap == count too. */
    p = make_pool(1);
    check_pids(p, 1);
    CHECK(stats_of(p).workers_configured == 1);
    CHECK_OK(pool_destroy(p));

    default_workers();
    return 0;
}
