/* The host forks after pool_create (basics: test_api_fork.c).
 *   - the child gets POOL_EFORKED from every call, pool_destroy returns POOL_OK, and
 *     it leaves through exit() (atexit handlers, stdio flush): the parent's workers,
 *     fork server and jobs in flight are untouched;
 *   - a child that stays alive (holding copies of the pool's descriptors) while the
 *     parent destroys its pool: the parent's pool_destroy still takes < 2 s and every
 *     pool process is gone.
 */
#include "check.h"

static pool *g_pool;

static void child_atexit(void)
{
    /* Runs in the child at exit(): nothing of the pool may depend on it. */
    fflush(stdout);
}

static void child_uses_copy_then_exits(void)
{
    char hex[POOL_HEX_LEN];
    uint64_t id = 0;
    int32_t pids[4];
    size_t count = 99;
    pool_stats st;
    pool *p = g_pool;
    memset(hex, 'z', sizeof hex);
    CHECK_STATUS(pool_submit(p, "child", 5, 1, &id), POOL_EFORKED);
    CHECK(id == 0);
    CHECK_STATUS(pool_wait(p, 1, 0, hex), POOL_EFORKED);
    CHECK_STATUS(pool_wait(p, 1, -1, hex), POOL_EFORKED);
    CHECK_STATUS(pool_wait_any(p, -1, &id, hex), POOL_EFORKED);
    CHECK_STATUS(pool_cancel(p, 1), POOL_EFORKED);
    CHECK_STATUS(pool_stats_get(p, &st), POOL_EFORKED);
    CHECK_STATUS(pool_worker_pids(p, pids, 4, &count), POOL_EFORKED);
    CHECK(count == 99);
    CHECK(hex[0] == 'z');
    CHECK(pool_fd(p) == -1);
    CHECK_OK(pool_destroy(p));
    CHECK(atexit(child_atexit) == 0);
    exit(0); /* normally: atexit handlers and stdio flush */
}

static void child_destroys_copy_and_exits_normally(void)
{
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int32_t before[2], after[2];
    pid_t fs, child;
    uint64_t inflight;
    int status, i;
    pool_stats st;
    g_pool = make_pool(2);
    CHECK_OK(host_run_job(g_pool, "parent", 10, 10000));
    CHECK(host_wait_workers(g_pool, 2, 10000));
    CHECK(worker_pids(g_pool, before, 2) == 2);
    fs = parent_of(before[0]);
    /* A job in flight across the fork. */
    CHECK_OK(pool_md5_chain("in flight", 9, 500000, want));
    CHECK_OK(pool_submit(g_pool, "in flight", 9, 500000, &inflight));
    fflush(stdout);
    child = fork();
    CHECK(child >= 0);
    if (child == 0)
        child_uses_copy_then_exits();
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Parent's pool intact: same workers, same fork server, job answered, more jobs. */
    CHECK_OK(pool_wait(g_pool, inflight, 30000, hex));
    CHECK(strcmp(hex, want) == 0);
    for (i = 0; i < 10; i++)
        CHECK_OK(host_run_job(g_pool, "parent after child", 100 + (uint64_t)i, 10000));
    CHECK(worker_pids(g_pool, after, 2) == 2);
    CHECK((after[0] == before[0] && after[1] == before[1]) ||
          (after[0] == before[1] && after[1] == before[0]));
    CHECK(parent_of(after[0]) == fs && parent_of(fs) == getpid());
    CHECK_OK(pool_stats_get(g_pool, &st));
    CHECK(st.worker_restarts == 0 && st.jobs_failed == 0 && st.workers_alive == 2);
    CHECK(children_of(getpid()) == 1);
    CHECK_OK(pool_destroy(g_pool));
    CHECK(host_all_children(getpid()) == 0);
}

static void parent_destroys_while_child_lives(void)
{
    int gate[2], i, status;
    int32_t pids[2];
    pid_t fs, child;
    double t;
    char c = 0;
    pool *p = make_pool(2);
    CHECK_OK(host_run_job(p, "parent", 10, 10000));
    CHECK(host_wait_workers(p, 2, 10000));
    CHECK(worker_pids(p, pids, 2) == 2);
    fs = parent_of(pids[0]);
    /* One worker busy with a long job when the pool is destroyed. */
    {
        uint64_t id;
        CHECK_OK(pool_submit(p, "long", 4, 500000000, &id));
        CHECK(running_within(p, 1, 10000));
    }
    CHECK(pipe(gate) == 0);
    fflush(stdout);
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* Stays alive, holding its copies of every pool descriptor, until told. */
        close(gate[1]);
        while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    close(gate[0]);
    sleep_ms(20);
    t = now_seconds();
    CHECK_OK(pool_destroy(p));
    t = now_seconds() - t;
    printf("  pool_destroy with a live forked child: %.3f s\n", t);
    CHECK(t < 2.0);
    CHECK(gone_within(fs, 1000));
    for (i = 0; i < 2; i++)
        CHECK(gone_within(pids[i], 1000));
    CHECK(state_of(child) != 0 && state_of(child) != 'Z'); /* it really stayed alive */
    CHECK(write(gate[1], "x", 1) == 1);
    close(gate[1]);
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(host_all_children(getpid()) == 0);
}

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(child_destroys_copy_and_exits_normally);
    failed += HOST_SUBTEST(parent_destroys_while_child_lives);
    return failed != 0;
}
