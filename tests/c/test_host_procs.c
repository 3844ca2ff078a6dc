/* Respawning never forks the host.
 *   - every worker's parent is one process, the fork server, whose parent is the host;
 *   - after workers are killed, the replacements' parent is still the fork server and
 *     the host still has exactly one child;
 *   - a pool created from a pthread that then exits keeps working: jobs answer right
 *     after that thread is joined, and a killed worker is still replaced.
 */
#include "check.h"

#include <pthread.h>

#define WORKERS 3

/* All `n` workers are children of one fork server, itself the host's only child. */
static pid_t check_family(pool *p, size_t n, int32_t *pids)
{
    size_t i;
    pid_t fs;
    CHECK(host_wait_workers(p, n, 10000));
    CHECK(worker_pids(p, pids, n) == n);
    fs = parent_of(pids[0]);
    CHECK(fs > 0 && fs != getpid());
    for (i = 0; i < n; i++)
        CHECK(parent_of(pids[i]) == fs);
    CHECK(parent_of(fs) == getpid());
    CHECK(children_of(getpid()) == 1);
    return fs;
}

/* Kills every worker of `p` and checks the replacements' family. */
static void kill_all_and_check(pool *p, pid_t fs, int32_t *pids, size_t n)
{
    int32_t fresh[WORKERS];
    size_t i, j;
    double end;
    for (i = 0; i < n; i++)
        CHECK(kill(pids[i], SIGKILL) == 0);
    for (i = 0; i < n; i++)
        CHECK(gone_within(pids[i], 2000));
    /* Wait until n workers are alive and none of them is an old one. */
    end = now_seconds() + 10.0;
    for (;;) {
        int old = 0;
        size_t count = worker_pids(p, fresh, n);
        for (i = 0; i < count && i < n; i++)
            for (j = 0; j < n; j++)
                old |= fresh[i] == pids[j];
        if (count == n && !old)
            break;
        CHECK(now_seconds() < end);
        sleep_ms(5);
    }
    for (i = 0; i < n; i++) {
        CHECK(parent_of(fresh[i]) == fs);
        pids[i] = fresh[i];
    }
    CHECK(children_of(getpid()) == 1);
    CHECK(parent_of(fs) == getpid());
}

static void respawn_never_forks_the_host(void)
{
    int32_t pids[WORKERS];
    pid_t fs;
    int round;
    pool_stats s;
    pool *p = make_pool(WORKERS);
    CHECK_OK(host_run_job(p, "first", 10, 10000));
    fs = check_family(p, WORKERS, pids);
    for (round = 0; round < 3; round++) {
        kill_all_and_check(p, fs, pids, WORKERS);
        CHECK_OK(host_run_job(p, "after respawn", 100 + (uint64_t)round, 10000));
        check_family(p, WORKERS, pids);
        CHECK(parent_of(pids[0]) == fs);
    }
    CHECK_OK(pool_stats_get(p, &s));
    CHECK(s.worker_restarts >= 3 * WORKERS);
    CHECK_OK(pool_destroy(p));
    CHECK(gone_within(fs, 2000));
    CHECK(host_all_children(getpid()) == 0);
}

/* Two pools: two fork servers, each the parent of its own workers only. */
static void two_pools_two_fork_servers(void)
{
    int32_t a[2], b[2];
    pid_t fa, fb;
    pool *pa = make_pool(2), *pb = make_pool(2);
    CHECK_OK(host_run_job(pa, "a", 5, 10000));
    CHECK_OK(host_run_job(pb, "b", 5, 10000));
    CHECK(host_wait_workers(pa, 2, 10000) && host_wait_workers(pb, 2, 10000));
    CHECK(worker_pids(pa, a, 2) == 2 && worker_pids(pb, b, 2) == 2);
    fa = parent_of(a[0]);
    fb = parent_of(b[0]);
    CHECK(fa != fb);
    CHECK(parent_of(a[1]) == fa && parent_of(b[1]) == fb);
    CHECK(parent_of(fa) == getpid() && parent_of(fb) == getpid());
    CHECK(children_of(getpid()) == 2);
    CHECK_OK(pool_destroy(pa));
    CHECK(children_of(getpid()) == 1);
    CHECK_OK(host_run_job(pb, "b still works", 9, 10000));
    CHECK_OK(pool_destroy(pb));
    CHECK(host_all_children(getpid()) == 0);
}

static void *create_in_thread(void *arg)
{
    pool **out = arg;
    *out = make_pool(2);
    return NULL;
}

static void pool_outlives_creating_thread(void)
{
    pthread_t t;
    pool *p = NULL;
    int32_t pids[2];
    pid_t fs, victim;
    int i;
    CHECK(pthread_create(&t, NULL, create_in_thread, &p) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(p != NULL);
    /* Right after the join: jobs answer. */
    for (i = 0; i < 10; i++)
        CHECK_OK(host_run_job(p, "creator thread gone", 1000 + (uint64_t)i, 10000));
    fs = check_family(p, 2, pids);
    /* Give a PR_SET_PDEATHSIG tied to the dead thread time to fire, if it were. */
    sleep_ms(200);
    CHECK(state_of(fs) != 0 && state_of(fs) != 'Z');
    CHECK(state_of(pids[0]) != 0 && state_of(pids[1]) != 0);
    victim = pids[0];
    CHECK(kill(victim, SIGKILL) == 0);
    CHECK(gone_within(victim, 2000));
    CHECK_OK(host_run_job(p, "after the kill", 77, 10000));
    {
        double end = now_seconds() + 10.0;
        for (;;) {
            size_t n = worker_pids(p, pids, 2);
            if (n == 2 && pids[0] != victim && pids[1] != victim)
                break;
            CHECK(now_seconds() < end);
            sleep_ms(5);
        }
    }
    CHECK(parent_of(pids[0]) == fs && parent_of(pids[1]) == fs);
    CHECK(children_of(getpid()) == 1);
    CHECK_OK(pool_destroy(p));
    CHECK(host_all_children(getpid()) == 0);
}

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(respawn_never_forks_the_host);
    failed += HOST_SUBTEST(two_pools_two_fork_servers);
    failed += HOST_SUBTEST(pool_outlives_creating_thread);
    return failed != 0;
}
