/* A child forked after pool_create: every call on the pool returns
 * POOL_EFORKED and does nothing, pool_destroy returns POOL_OK without
 * touching the workers; the parent's pool works on, with the same workers. */
#include <pthread.h>
#include <sys/wait.h>

#include "check.h"

/* In the child: report and _exit (no exit(): the parent's atexit handlers and
 * stdio buffers are not the child's to run). */
#define CHILD_CHECK(cond)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            char m_[256];                                                              \
            int n_ = snprintf(m_, sizeof m_, "child: %s:%d: CHECK failed: %s\n",        \
                              __FILE__, __LINE__, #cond);                              \
            if (write(2, m_, (size_t)n_) < 0) {                                        \
            }                                                                          \
            _exit(1);                                                                  \
        }                                                                              \
    } while (0)

static void in_child(pool *p, uint64_t outstanding, const int32_t *pids)
{
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t id = 42;
    pool_stats st;
    int32_t got[2] = {-1, -1};
    size_t count = 99;

    memset(hex, 'X', sizeof hex);
    memset(&st, 0xab, sizeof st);
    CHILD_CHECK(pool_submit(p, "x", 1, 10, &id) == POOL_EFORKED);
    CHILD_CHECK(id == 42);
    CHILD_CHECK(pool_wait(p, outstanding, -1, hex) == POOL_EFORKED);
    CHILD_CHECK(pool_wait(p, outstanding, 0, hex) == POOL_EFORKED);
    CHILD_CHECK(pool_wait_any(p, -1, &id, hex) == POOL_EFORKED);
    CHILD_CHECK(id == 42 && hex[0] == 'X');
    CHILD_CHECK(pool_cancel(p, outstanding) == POOL_EFORKED);
    CHILD_CHECK(pool_stats_get(p, &st) == POOL_EFORKED);
    CHILD_CHECK(st.workers_configured == 0xabababab);
    CHILD_CHECK(pool_worker_pids(p, got, 2, &count) == POOL_EFORKED);
    CHILD_CHECK(count == 99 && got[0] == -1);
    CHILD_CHECK(pool_fd(p) == -1);
    /* The workers are the parent's: the child's calls did not touch them. */
    CHILD_CHECK(state_of(pids[0]) != 0 && state_of(pids[0]) != 'Z');
    CHILD_CHECK(state_of(pids[1]) != 0 && state_of(pids[1]) != 'Z');
    /* No pool involved: works in the child too. */
    CHILD_CHECK(pool_md5_chain("Hello World", 11, 1, want) == POOL_OK);
    CHILD_CHECK(strcmp(want, "b10a8db164e0754105b7a99be72e3fe5") == 0);
    CHILD_CHECK(pool_destroy(p) == POOL_OK);
    CHILD_CHECK(state_of(pids[0]) != 0 && state_of(pids[0]) != 'Z');
    CHILD_CHECK(state_of(pids[1]) != 0 && state_of(pids[1]) != 'Z');
    _exit(0);
}

/* Forks, runs in_child there, and checks it exited 0. */
static void fork_and_check(pool *p, uint64_t outstanding, const int32_t *pids)
{
    int status;
    pid_t child;

    fflush(NULL);
    child = fork();
    CHECK(child >= 0);
    if (child == 0)
        in_child(p, outstanding, pids);
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Another thread busy in the pool's calls while we fork: the child must not
 * wait for a lock that thread held at the fork. */
static volatile int hammering = 1;

static void *hammer(void *arg)
{
    pool *p = arg;
    while (hammering) {
        pool_stats st;
        size_t n;
        uint64_t id;
        char hex[POOL_HEX_LEN];
        CHECK_OK(pool_stats_get(p, &st));
        CHECK_OK(pool_worker_pids(p, NULL, 0, &n));
        if (pool_submit(p, "h", 1, 1, &id) == POOL_OK)
            CHECK_OK(pool_wait(p, id, LONG_WAIT_MS, hex));
    }
    return NULL;
}

static void fork_while_busy(pool *p)
{
    pthread_t t;
    int i;

    CHECK(pthread_create(&t, NULL, hammer, p) == 0);
    for (i = 0; i < 20; i++) {
        int status;
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            pool_stats st;
            uint64_t id;
            char hex[POOL_HEX_LEN];
            alarm(10); /* a deadlock fails the test instead of hanging it */
            CHILD_CHECK(pool_stats_get(p, &st) == POOL_EFORKED);
            CHILD_CHECK(pool_submit(p, "x", 1, 1, &id) == POOL_EFORKED);
            CHILD_CHECK(pool_wait_any(p, -1, &id, hex) == POOL_EFORKED);
            CHILD_CHECK(pool_destroy(p) == POOL_OK);
            _exit(0);
        }
        CHECK(waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    hammering = 0;
    CHECK(pthread_join(t, NULL) == 0);
}

int main(void)
{
    pool *p = make_pool(2);
    int32_t before[2], after[2];
    char want[POOL_HEX_LEN], want_slow[POOL_HEX_LEN];
    uint64_t slow, id;
    pool_stats st;

    CHECK(worker_pids(p, before, 2) == 2);
    ref_hex("fork", 4, 1000, want);
    ref_hex("slow", 4, 1000000, want_slow);

    /* With an outstanding job, and again with a finished-uncollected one. */
    slow = submit(p, "slow", 4, 1000000);
    fork_and_check(p, slow, before);
    id = submit(p, "fork", 4, 1000);
    CHECK(ready_within(p, 1, LONG_WAIT_MS));
    fork_and_check(p, id, before);

    /* The parent's pool is untouched: its jobs, its workers, its descriptor. */
    wait_ok(p, id, want);
    wait_ok(p, slow, want_slow);
    id = submit(p, "fork", 4, 1000);
    wait_ok(p, id, want);
    CHECK(worker_pids(p, after, 2) == 2);
    CHECK((after[0] == before[0] && after[1] == before[1]) ||
          (after[0] == before[1] && after[1] == before[0]));
    st = stats_of(p);
    CHECK(st.worker_restarts == 0 && st.jobs_completed == 3 && st.jobs_failed == 0);
    CHECK(pool_fd(p) >= 0);

    fork_while_busy(p);
    id = submit(p, "fork", 4, 1000);
    wait_ok(p, id, want);
    CHECK(worker_pids(p, after, 2) == 2);
    CHECK((after[0] == before[0] && after[1] == before[1]) ||
          (after[0] == before[1] && after[1] == before[0]));
    CHECK(children_of(getpid()) == 1);
    CHECK_OK(pool_destroy(p));
    CHECK(children_of(getpid()) == 0);
    return 0;
}
