/* Load with failures.
 * 16 host threads submit and collect small jobs (iterations 1-50), half with
 * pool_wait, half with pool_wait_any (which may collect anybody's job); one more
 * thread submits jobs and pool_cancels random ones of its own; one calls
 * pool_stats_get all the time; a killer SIGKILLs a random worker every 50 ms.
 * Checks: every job is collected exactly once; a canceled one (pool_cancel said OK)
 * ends POOL_ECANCELED; every other ends POOL_OK with the right digest (compared with
 * pool_md5_chain) or POOL_EWORKER; nothing hangs (alarm).
 *
 * Size: STRESS_JOBS jobs per round (default 2000; make stress runs 1,000,000; or argv[1]),
 * rounds repeated until STRESS_SECONDS (default 3) have passed, STRESS_THREADS (16),
 * STRESS_WORKERS (4), STRESS_KILL_MS (50), STRESS_STATS_MS (0: back to back),
 * STRESS_TIMEOUT (seconds, default 120).
 * `make stress` runs a long soak.
 */
#include "check.h"

#include <pthread.h>

#define BATCH 32

enum { S_FREE, S_SUBMITTED, S_COLLECTED };

struct rec {
    uint64_t id;
    uint32_t idx;
    uint8_t iterations;
    uint8_t state;
    uint8_t cancel_ok;
    uint8_t collections;
    int8_t status;
    char hex[POOL_HEX_LEN];
};

static pool *g_pool;
static struct rec *recs;
static uint32_t *table; /* open addressing: id -> idx + 1 */
static size_t table_mask;
static long total_jobs, per_thread, cancel_jobs;
static int nthreads, nworkers, kill_ms, stats_ms;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop_helpers;
static long kills, cancels_ok, cancels_nojob, stats_calls;

static void msg_of(uint32_t idx, char *buf, size_t *len)
{
    *len = (size_t)snprintf(buf, 32, "stress job %u", idx);
}

static uint32_t iterations_of(uint32_t idx)
{
    return 1 + (idx * 2654435761u >> 7) % 50;
}

static size_t slot_of(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & table_mask;
}

/* Under `lock`. */
static void remember(uint32_t idx, uint64_t id)
{
    size_t s = slot_of(id);
    while (table[s] != 0) {
        CHECK(recs[table[s] - 1].id != id); /* ids are never reused */
        s = (s + 1) & table_mask;
    }
    table[s] = idx + 1;
    recs[idx].id = id;
    recs[idx].state = S_SUBMITTED;
}

/* Under `lock`. */
static struct rec *find(uint64_t id)
{
    size_t s = slot_of(id);
    while (table[s] != 0) {
        if (recs[table[s] - 1].id == id)
            return &recs[table[s] - 1];
        s = (s + 1) & table_mask;
    }
    return NULL;
}

static void record(uint64_t id, pool_status st, const char *hex)
{
    struct rec *r;
    pthread_mutex_lock(&lock);
    r = find(id);
    if (!r) {
        fprintf(stderr, "collected job %llu that nobody submitted\n", (unsigned long long)id);
        exit(1);
    }
    r->collections++;
    r->state = S_COLLECTED;
    r->status = (int8_t)st;
    if (st == POOL_OK && hex)
        memcpy(r->hex, hex, POOL_HEX_LEN);
    pthread_mutex_unlock(&lock);
    if (r->collections > 1) {
        fprintf(stderr, "job %llu reported %d times\n", (unsigned long long)id, r->collections);
        exit(1);
    }
}

static int is_job_status(pool_status st)
{
    return st == POOL_OK || st == POOL_EWORKER || st == POOL_ECANCELED;
}

static void submit_one(uint32_t idx, uint64_t *id)
{
    char msg[32];
    size_t len;
    pool_status st;
    msg_of(idx, msg, &len);
    recs[idx].idx = idx;
    recs[idx].iterations = (uint8_t)iterations_of(idx);
    /* Submit and remember under the lock, so that no collector sees it unknown. */
    pthread_mutex_lock(&lock);
    st = pool_submit(g_pool, msg, len, iterations_of(idx), id);
    if (st == POOL_OK)
        remember(idx, *id);
    pthread_mutex_unlock(&lock);
    if (st != POOL_OK) {
        fprintf(stderr, "pool_submit: %s\n", pool_strerror(st));
        exit(1);
    }
}

static void *submitter(void *arg)
{
    long t = (long)arg, done = 0;
    uint32_t first = (uint32_t)(t * per_thread);
    int use_any = t % 2;
    char hex[POOL_HEX_LEN];
    while (done < per_thread) {
        uint64_t ids[BATCH];
        long k, n = per_thread - done < BATCH ? per_thread - done : BATCH;
        for (k = 0; k < n; k++)
            submit_one(first + (uint32_t)(done + k), &ids[k]);
        if (!use_any) {
            for (k = 0; k < n; k++) {
                /* Mix of forever and finite waits; ENOJOB: a wait_any thread took it. */
                pool_status st = pool_wait(g_pool, ids[k], k % 2 ? -1 : 60000, hex);
                if (st == POOL_ENOJOB)
                    continue;
                if (!is_job_status(st)) {
                    fprintf(stderr, "pool_wait: %s\n", pool_strerror(st));
                    exit(1);
                }
                record(ids[k], st, hex);
            }
        } else {
            for (k = 0; k < n; k++) {
                uint64_t id = 0;
                pool_status st = pool_wait_any(g_pool, k % 2 ? -1 : 100, &id, hex);
                if (st == POOL_ENOJOB || st == POOL_ETIMEDOUT)
                    break; /* others collected ours; the final drain takes what is left */
                if (!is_job_status(st)) {
                    fprintf(stderr, "pool_wait_any: %s\n", pool_strerror(st));
                    exit(1);
                }
                record(id, st, hex);
            }
        }
        done += n;
    }
    return NULL;
}

static void *canceler(void *arg)
{
    uint32_t first = (uint32_t)(nthreads * per_thread), seed = 12345;
    long done = 0;
    char hex[POOL_HEX_LEN];
    (void)arg;
    while (done < cancel_jobs) {
        uint64_t ids[BATCH];
        long k, n = cancel_jobs - done < BATCH ? cancel_jobs - done : BATCH;
        for (k = 0; k < n; k++)
            submit_one(first + (uint32_t)(done + k), &ids[k]);
        for (k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 3 == 0) {
                pool_status st = pool_cancel(g_pool, ids[k]);
                if (st == POOL_OK) {
                    pthread_mutex_lock(&lock);
                    find(ids[k])->cancel_ok = 1;
                    cancels_ok++;
                    pthread_mutex_unlock(&lock);
                } else if (st == POOL_ENOJOB) {
                    /* Only when it was already collected (by a wait_any thread, which
                     * records it just after collecting: give it a moment). */
                    double end = now_seconds() + 10.0;
                    int collected = 0;
                    while (!collected && now_seconds() < end) {
                        pthread_mutex_lock(&lock);
                        collected = find(ids[k])->state == S_COLLECTED;
                        pthread_mutex_unlock(&lock);
                        if (!collected)
                            sleep_ms(1);
                    }
                    CHECK(collected);
                    pthread_mutex_lock(&lock);
                    cancels_nojob++;
                    pthread_mutex_unlock(&lock);
                } else {
                    fprintf(stderr, "pool_cancel: %s\n", pool_strerror(st));
                    exit(1);
                }
            }
        }
        for (k = 0; k < n; k++) {
            pool_status st = pool_wait(g_pool, ids[k], 60000, hex);
            if (st == POOL_ENOJOB)
                continue;
            if (!is_job_status(st)) {
                fprintf(stderr, "pool_wait (canceler): %s\n", pool_strerror(st));
                exit(1);
            }
            record(ids[k], st, hex);
            /* A collected id: cancel must say ENOJOB now. */
            if (k == 0)
                CHECK_STATUS(pool_cancel(g_pool, ids[k]), POOL_ENOJOB);
        }
        done += n;
    }
    return NULL;
}

static void *stats_reader(void *arg)
{
    pool_stats prev, s;
    (void)arg;
    memset(&prev, 0, sizeof prev);
    while (!stop_helpers) {
        CHECK_OK(pool_stats_get(g_pool, &s));
        CHECK(s.workers_configured == (uint32_t)nworkers);
        /* A worker being stopped (canceled job) still counts while its replacement
         * starts: at most one replacement per configured worker. */
        CHECK(s.workers_alive <= 2 * (uint32_t)nworkers);
        CHECK(s.jobs_queued + s.jobs_running + s.jobs_ready <= (uint64_t)total_jobs);
        CHECK(s.jobs_completed >= prev.jobs_completed && s.jobs_failed >= prev.jobs_failed);
        CHECK(s.jobs_retried >= prev.jobs_retried && s.worker_restarts >= prev.worker_restarts);
        prev = s;
        stats_calls++;
        if (stats_ms)
            sleep_ms(stats_ms);
    }
    return NULL;
}

static void *killer(void *arg)
{
    /* Prefers a worker seen alive at the previous round (>= kill_ms old: surely done
     * starting, so its death is a death at work, not a failed start); when cancels
     * replaced them all meanwhile, kills a random live one anyway. */
    int32_t prev[64], now[64], pick[64];
    size_t np = 0, nn, npick, i, j;
    uint32_t seed = 777;
    (void)arg;
    while (!stop_helpers) {
        sleep_ms(kill_ms);
        nn = worker_pids(g_pool, now, 64);
        if (nn > 64)
            nn = 64;
        for (i = 0, npick = 0; i < nn; i++)
            for (j = 0; j < np; j++)
                if (prev[j] == now[i]) {
                    pick[npick++] = now[i];
                    break;
                }
        if (npick == 0) {
            memcpy(pick, now, nn * sizeof *now);
            npick = nn;
        }
        seed = seed * 1103515245u + 12345u;
        if (npick > 0 && kill(pick[(seed >> 16) % npick], SIGKILL) == 0)
            kills++;
        memcpy(prev, now, nn * sizeof *now);
        np = nn;
    }
    return NULL;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : dflt;
}

static long n_ok, n_eworker, n_canceled;

/* One round: total_jobs jobs submitted by the threads, all collected and checked. */
static void run_round(void)
{
    pthread_t *subs = calloc((size_t)nthreads, sizeof *subs), canc;
    pool_stats s;
    long i;
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    CHECK(subs != NULL);
    memset(recs, 0, (size_t)total_jobs * sizeof *recs);
    memset(table, 0, (table_mask + 1) * sizeof *table);
    for (i = 0; i < nthreads; i++)
        CHECK(pthread_create(&subs[i], NULL, submitter, (void *)i) == 0);
    CHECK(pthread_create(&canc, NULL, canceler, NULL) == 0);
    for (i = 0; i < nthreads; i++)
        CHECK(pthread_join(subs[i], NULL) == 0);
    CHECK(pthread_join(canc, NULL) == 0);
    free(subs);

    /* What the wait_any threads left behind (they stop early on ENOJOB). */
    for (;;) {
        uint64_t id = 0;
        pool_status st = pool_wait_any(g_pool, 60000, &id, hex);
        if (st == POOL_ENOJOB)
            break;
        if (!is_job_status(st)) {
            fprintf(stderr, "final pool_wait_any: %s\n", pool_strerror(st));
            exit(1);
        }
        record(id, st, hex);
    }
    CHECK_OK(pool_stats_get(g_pool, &s));
    CHECK(s.jobs_queued == 0 && s.jobs_running == 0 && s.jobs_ready == 0);

    for (i = 0; i < total_jobs; i++) {
        struct rec *r = &recs[i];
        char msg[32];
        size_t len;
        if (r->state != S_COLLECTED || r->collections != 1) {
            fprintf(stderr, "job #%ld (id %llu): state %d, collected %d times\n", i,
                    (unsigned long long)r->id, r->state, r->collections);
            exit(1);
        }
        if (r->cancel_ok) {
            if (r->status != POOL_ECANCELED) {
                fprintf(stderr, "job %llu: pool_cancel said OK but it ended %s\n",
                        (unsigned long long)r->id, pool_strerror((pool_status)r->status));
                exit(1);
            }
            n_canceled++;
            continue;
        }
        if (r->status == POOL_EWORKER) {
            n_eworker++;
            continue;
        }
        if (r->status != POOL_OK) {
            fprintf(stderr, "job %llu ended %s\n", (unsigned long long)r->id,
                    pool_strerror((pool_status)r->status));
            exit(1);
        }
        msg_of((uint32_t)i, msg, &len);
        CHECK_OK(pool_md5_chain(msg, len, r->iterations, want));
        if (strcmp(r->hex, want) != 0) {
            fprintf(stderr, "job %llu: %s, expected %s\n", (unsigned long long)r->id, r->hex,
                    want);
            exit(1);
        }
        n_ok++;
    }
}

int main(int argc, char **argv)
{
    pthread_t stats, kil;
    pool_config cfg;
    pool_stats s;
    long rounds = 0;
    double min_seconds;
    size_t table_size = 1;
    double t0 = now_seconds();

    total_jobs = argc > 1 ? atol(argv[1]) : env_long("STRESS_JOBS", 2000);
    min_seconds = (double)env_long("STRESS_SECONDS", 3);
    nthreads = (int)env_long("STRESS_THREADS", 16);
    nworkers = (int)env_long("STRESS_WORKERS", 4);
    kill_ms = (int)env_long("STRESS_KILL_MS", 50);
    stats_ms = (int)env_long("STRESS_STATS_MS", 0); /* pause between pool_stats_get calls */
    alarm((unsigned)env_long("STRESS_TIMEOUT", 120)); /* a hang fails (SIGALRM) */
    CHECK(total_jobs >= 100 && nthreads >= 2 && nworkers >= 1 && kill_ms >= 1);
    cancel_jobs = total_jobs / 10;
    per_thread = (total_jobs - cancel_jobs) / nthreads;
    cancel_jobs = total_jobs - per_thread * nthreads;

    recs = calloc((size_t)total_jobs, sizeof *recs);
    while (table_size < 2 * (size_t)total_jobs)
        table_size *= 2;
    table = calloc(table_size, sizeof *table);
    table_mask = table_size - 1;
    CHECK(recs && table);

    pool_config_init(&cfg);
    cfg.workers = (uint32_t)nworkers;
    CHECK_OK(pool_create(&cfg, &g_pool));
    CHECK(pthread_create(&stats, NULL, stats_reader, NULL) == 0);
    CHECK(pthread_create(&kil, NULL, killer, NULL) == 0);

    /* At least one round, and rounds until STRESS_SECONDS have passed, so that the
     * killer has time to strike even when the jobs go fast. */
    do {
        run_round();
        rounds++;
    } while (now_seconds() - t0 < min_seconds);

    stop_helpers = 1;
    CHECK(pthread_join(kil, NULL) == 0);
    CHECK(pthread_join(stats, NULL) == 0);
    CHECK(n_ok + n_eworker + n_canceled == total_jobs * rounds);
    CHECK(n_ok > 0);
    if (min_seconds >= 1 && kill_ms <= 100)
        CHECK(kills > 0); /* the failures really happened */
    CHECK(host_wait_workers(g_pool, (size_t)nworkers, 10000));
    CHECK_OK(pool_stats_get(g_pool, &s));
    CHECK(s.worker_restarts + (uint64_t)nworkers >= (uint64_t)kills);
    CHECK_OK(pool_destroy(g_pool));
    CHECK(host_all_children(getpid()) == 0);
    printf("%ld rounds of %ld jobs, %d threads, %d workers: %ld ok, %ld POOL_EWORKER, %ld "
           "canceled (cancel: %ld ok, %ld ENOJOB); %ld kills, %llu restarts, %llu retried, "
           "%ld stats calls; %.2fs\n",
           rounds, total_jobs, nthreads, nworkers, n_ok, n_eworker, n_canceled, cancels_ok,
           cancels_nojob, kills, (unsigned long long)s.worker_restarts,
           (unsigned long long)s.jobs_retried, stats_calls, now_seconds() - t0);
    free(recs);
    free(table);
    return 0;
}
