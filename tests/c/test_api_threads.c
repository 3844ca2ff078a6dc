/* Concurrency: 8 threads submit 50 jobs each and pool_wait their own, while
 * 2 threads drain a second pool with pool_wait_any. Every result right, no
 * job lost or collected twice, ids unique. */
#include <pthread.h>

#include "check.h"

#define SUBMITTERS 8
#define PER_THREAD 50
#define DRAINERS 2
#define ANY_JOBS 300

static pool *p1, *p2;

static uint64_t all_ids[SUBMITTERS * PER_THREAD];

struct any_job {
    uint64_t id;
    char want[POOL_HEX_LEN];
    int collected;
};
static struct any_job any_jobs[ANY_JOBS];
static pthread_mutex_t any_lock = PTHREAD_MUTEX_INITIALIZER;

static void *submitter(void *arg)
{
    int t = (int)(intptr_t)arg, i;
    uint64_t ids[PER_THREAD];
    char want[PER_THREAD][POOL_HEX_LEN], msg[32];

    for (i = 0; i < PER_THREAD; i++) {
        int len = snprintf(msg, sizeof msg, "thread %d job %d", t, i);
        uint64_t iterations = 1 + (uint64_t)((t * 131 + i * 17) % 3000);
        ref_hex(msg, (size_t)len, iterations, want[i]);
        ids[i] = submit(p1, msg, (size_t)len, iterations);
        all_ids[t * PER_THREAD + i] = ids[i];
    }
    /* Wait in reverse order, half of them polling first. */
    for (i = PER_THREAD - 1; i >= 0; i--) {
        char hex[POOL_HEX_LEN];
        pool_status st = pool_wait(p1, ids[i], i % 2 ? 0 : LONG_WAIT_MS, hex);
        if (st == POOL_ETIMEDOUT)
            st = pool_wait(p1, ids[i], LONG_WAIT_MS, hex);
        CHECK_OK(st);
        CHECK(strcmp(hex, want[i]) == 0);
        CHECK_STATUS(pool_wait(p1, ids[i], 0, hex), POOL_ENOJOB);
    }
    return NULL;
}

static void *drainer(void *arg)
{
    int *count = arg;
    for (;;) {
        char hex[POOL_HEX_LEN];
        uint64_t id = 0;
        pool_status st = pool_wait_any(p2, 10000, &id, hex);
        int i;
        /* Everything collected (by us or the other drainer): ENOJOB, even for
         * a wait that was blocked when the other drainer took the last job. */
        if (st == POOL_ENOJOB)
            return NULL;
        CHECK_OK(st);
        for (i = 0; i < ANY_JOBS && any_jobs[i].id != id; i++) {
        }
        CHECK(i < ANY_JOBS);
        CHECK(strcmp(hex, any_jobs[i].want) == 0);
        pthread_mutex_lock(&any_lock);
        CHECK(!any_jobs[i].collected);
        any_jobs[i].collected = 1;
        pthread_mutex_unlock(&any_lock);
        (*count)++;
    }
}

/* Two threads pool_wait the same job: one collects it, the other gets
 * POOL_ENOJOB (and does not hang). */
static uint64_t shared_id;
static pool_status shared_status[2];
static char shared_hex[2][POOL_HEX_LEN];

static void *same_job_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    shared_status[i] = pool_wait(p1, shared_id, LONG_WAIT_MS, shared_hex[i]);
    return NULL;
}

static void two_waiters_one_job(void)
{
    pthread_t t[2];
    char want[POOL_HEX_LEN];
    int i, winner;

    ref_hex("shared", 6, 1000000, want);
    shared_id = submit(p1, "shared", 6, 1000000);
    for (i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, same_job_waiter, (void *)(intptr_t)i) == 0);
    for (i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    winner = shared_status[0] == POOL_OK ? 0 : 1;
    CHECK_OK(shared_status[winner]);
    CHECK_STATUS(shared_status[1 - winner], POOL_ENOJOB);
    CHECK(strcmp(shared_hex[winner], want) == 0);
}

int main(void)
{
    pthread_t subs[SUBMITTERS], drains[DRAINERS];
    int counts[DRAINERS] = {0, 0};
    char msg[32];
    int i, k;

    p1 = make_pool(2);
    p2 = make_pool(2);

    for (i = 0; i < ANY_JOBS; i++) {
        int len = snprintf(msg, sizeof msg, "any %d", i);
        uint64_t iterations = 1 + (uint64_t)((i * 7) % 2000);
        if (i % 50 == 49)
            iterations = 200000; /* the drainers block on these, both at the end */
        ref_hex(msg, (size_t)len, iterations, any_jobs[i].want);
        any_jobs[i].id = submit(p2, msg, (size_t)len, iterations);
    }
    for (i = 0; i < DRAINERS; i++)
        CHECK(pthread_create(&drains[i], NULL, drainer, &counts[i]) == 0);
    for (i = 0; i < SUBMITTERS; i++)
        CHECK(pthread_create(&subs[i], NULL, submitter, (void *)(intptr_t)i) == 0);
    for (i = 0; i < SUBMITTERS; i++)
        CHECK(pthread_join(subs[i], NULL) == 0);
    for (i = 0; i < DRAINERS; i++)
        CHECK(pthread_join(drains[i], NULL) == 0);

    CHECK(counts[0] + counts[1] == ANY_JOBS);
    for (i = 0; i < ANY_JOBS; i++)
        CHECK(any_jobs[i].collected);
    for (i = 0; i < SUBMITTERS * PER_THREAD; i++)
        for (k = i + 1; k < SUBMITTERS * PER_THREAD; k++)
            CHECK(all_ids[i] != 0 && all_ids[i] != all_ids[k]);

    {
        pool_stats s1 = stats_of(p1), s2 = stats_of(p2);
        CHECK(s1.jobs_completed == SUBMITTERS * PER_THREAD && s1.jobs_ready == 0);
        CHECK(s2.jobs_completed == ANY_JOBS && s2.jobs_ready == 0);
        CHECK(s1.jobs_failed == 0 && s2.jobs_failed == 0);
    }
    two_waiters_one_job();
    CHECK_OK(pool_destroy(p1));
    CHECK_OK(pool_destroy(p2));
    return 0;
}
