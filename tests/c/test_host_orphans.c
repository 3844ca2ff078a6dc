/* No orphans. A child "host" process creates a pool (2 workers),
 * reports the fork server's and the workers' pids through a pipe, and is SIGKILLed:
 * the fork server and every worker are gone within 1 s. Variants: idle workers,
 * workers busy with long jobs, a pool created by a thread that has exited. */
#include "check.h"

#include <pthread.h>

enum { IDLE, BUSY, THREAD_GONE };

static void *create_in_thread(void *arg)
{
    pool **out = arg;
    *out = make_pool(2);
    return NULL;
}

/* The child host: never returns. */
static void run_host(int mode, int report_fd)
{
    int32_t pids[3];
    pool *p = NULL;
    if (mode == THREAD_GONE) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, create_in_thread, &p) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    } else {
        p = make_pool(2);
    }
    CHECK_OK(host_run_job(p, "orphan", 10, 10000));
    CHECK_OK(host_run_job(p, "orphan", 11, 10000));
    CHECK(host_wait_workers(p, 2, 10000));
    CHECK(worker_pids(p, pids + 1, 2) == 2);
    pids[0] = (int32_t)parent_of(pids[1]);
    if (mode == BUSY) {
        uint64_t id;
        CHECK_OK(pool_submit(p, "busy", 4, 500000000, &id));
        CHECK_OK(pool_submit(p, "busy", 4, 500000001, &id));
        CHECK(running_within(p, 2, 10000));
    }
    CHECK(write(report_fd, pids, sizeof pids) == (ssize_t)sizeof pids);
    for (;;)
        pause();
}

static void host_killed(int mode)
{
    int fd[2], i, status;
    int32_t pids[3];
    pid_t host;
    CHECK(pipe(fd) == 0);
    host = fork();
    CHECK(host >= 0);
    if (host == 0) {
        close(fd[0]);
        run_host(mode, fd[1]);
    }
    close(fd[1]);
    CHECK(read(fd[0], pids, sizeof pids) == (ssize_t)sizeof pids);
    close(fd[0]);
    CHECK(parent_of(pids[0]) == host);
    CHECK(parent_of(pids[1]) == pids[0] && parent_of(pids[2]) == pids[0]);
    CHECK(kill(host, SIGKILL) == 0);
    CHECK(waitpid(host, &status, 0) == host);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (i = 0; i < 3; i++)
        if (!gone_within(pids[i], 1000)) {
            fprintf(stderr, "%s %d still runs 1 s after its host was killed\n",
                    i == 0 ? "the fork server" : "worker", (int)pids[i]);
            for (i = 0; i < 3; i++)
                kill(pids[i], SIGKILL);
            exit(1);
        }
}

static void idle_pool_host_killed(void) { host_killed(IDLE); }
static void busy_pool_host_killed(void) { host_killed(BUSY); }
static void thread_created_pool_host_killed(void) { host_killed(THREAD_GONE); }

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(idle_pool_host_killed);
    failed += HOST_SUBTEST(busy_pool_host_killed);
    failed += HOST_SUBTEST(thread_created_pool_host_killed);
    return failed != 0;
}
