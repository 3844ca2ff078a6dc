/* pool_destroy with queued, running and finished-uncollected jobs: quick,
 * POOL_OK, every process the pool started reaped (no zombie left), every
 * descriptor closed. */
#include "check.h"

static void slow_init(void *arg)
{
    (void)arg;
    sleep_ms(20000);
}

/* Destroys p (with the workers in pids[n] and their fork server) and checks
 * that it is quick and leaves nothing behind. */
static void destroy_and_check(pool *p, const int32_t *pids, size_t n, int fds)
{
    pid_t server = parent_of(pids[0]);
    double t;
    size_t i;

    CHECK(server > 0 && server != getpid());
    CHECK(parent_of(server) == getpid()); /* the fork server is our child */
    for (i = 0; i < n; i++)
        CHECK(parent_of(pids[i]) == server);

    t = now_seconds();
    CHECK_OK(pool_destroy(p));
    t = now_seconds() - t;
    fprintf(stderr, "pool_destroy took %.3f s\n", t);
    CHECK(t < 3.0);

    /* Reaped by pool_destroy itself: not even a zombie is left. */
    CHECK(state_of(server) == 0);
    for (i = 0; i < n; i++) {
        CHECK(gone_within(pids[i], 2000));
        CHECK(reaped_within(pids[i], 2000));
    }
    CHECK(children_of(getpid()) == 0);
    CHECK(zombies_of(getpid()) == 0);
    CHECK(open_fd_count() == fds);
}

int main(void)
{
    int fds = open_fd_count();
    int32_t pids[2];
    pool_config cfg;
    pool *p;

    CHECK(children_of(getpid()) == 0);

    /* Finished-uncollected + running (every worker busy) + queued jobs. */
    p = make_pool(2);
    CHECK(worker_pids(p, pids, 2) == 2);
    submit(p, "tiny", 4, 10);
    CHECK(ready_within(p, 1, LONG_WAIT_MS));
    saturate(p, NULL, 4096);
    submit(p, "tiny", 4, 10);
    submit(p, "tiny", 4, 10);
    {
        pool_stats st = stats_of(p);
        CHECK(st.jobs_ready == 1 && st.jobs_running >= 2 && st.jobs_queued >= 3);
    }
    CHECK(worker_pids(p, pids, 2) == 2);
    destroy_and_check(p, pids, 2, fds);

    /* Right after pool_create, nothing submitted. */
    p = make_pool(2);
    CHECK(worker_pids(p, pids, 2) == 2);
    destroy_and_check(p, pids, 2, fds);

    /* Workers still inside a long worker_init, a job waiting for them. */
    pool_config_init(&cfg);
    cfg.workers = 2;
    cfg.worker_init = slow_init;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(worker_pids(p, pids, 2) == 2);
    submit(p, "tiny", 4, 10);
    sleep_ms(100);
    destroy_and_check(p, pids, 2, fds);

    /* Stopped workers (SIGSTOP) cannot take a polite request to exit. */
    p = make_pool(2);
    CHECK(worker_pids(p, pids, 2) == 2);
    submit(p, "huge", 4, HUGE_ITERATIONS);
    CHECK(running_within(p, 1, LONG_WAIT_MS));
    CHECK(kill(pids[0], SIGSTOP) == 0);
    CHECK(kill(pids[1], SIGSTOP) == 0);
    destroy_and_check(p, pids, 2, fds);

    /* A job submitted just before destroy: dropped, no hang. */
    p = make_pool(1);
    CHECK(worker_pids(p, pids, 1) == 1);
    submit(p, "huge", 4, HUGE_ITERATIONS);
    destroy_and_check(p, pids, 1, fds);
    return 0;
}
