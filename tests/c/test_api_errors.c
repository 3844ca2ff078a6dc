/* Every status a caller can provoke, with its exact code, and out-params left
 * untouched on failure. (POOL_EFORKED: test_api_fork.c; POOL_ESPAWN, POOL_EWORKER,
 * POOL_EJOBTIMEOUT, POOL_ECANCELED: their own tests.) */
#include <stddef.h>

#include "check.h"

#define SENTINEL_ID 0x5eed5eed5eedULL

static const char sentinel_hex[POOL_HEX_LEN] = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";

static void fill(char hex[POOL_HEX_LEN])
{
    memcpy(hex, sentinel_hex, POOL_HEX_LEN);
}

static int untouched(const char hex[POOL_HEX_LEN])
{
    return memcmp(hex, sentinel_hex, POOL_HEX_LEN) == 0;
}

static void create_errors(void)
{
    pool_config cfg;
    pool *sentinel = (pool *)&cfg, *p = sentinel;
    uint32_t bad[4];
    size_t i;

    pool_config_init(NULL); /* harmless */
    CHECK_OK(pool_destroy(NULL));
    CHECK(pool_fd(NULL) == -1);

    pool_config_init(&cfg);
    CHECK(cfg.size == sizeof cfg);
    CHECK_STATUS(pool_create(&cfg, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_create(NULL, NULL), POOL_EINVAL);

    bad[0] = 0;
    bad[1] = (uint32_t)offsetof(pool_config, log_arg) + (uint32_t)sizeof(void *) - 1; /* < 1.0's */
    bad[2] = (uint32_t)sizeof cfg + 1;
    bad[3] = 0xffffffffu;
    for (i = 0; i < 4; i++) {
        pool_config_init(&cfg);
        cfg.workers = 1;
        cfg.size = bad[i];
        CHECK_STATUS(pool_create(&cfg, &p), POOL_EINVAL);
        CHECK(p == sentinel);
    }

    /* Any size from 1.0's up to ours is accepted; a field that does not fit whole
     * in it takes its default (a max_queued_bytes of 1 would refuse every job). */
    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_queued_bytes = 1;
    cfg.size = (uint32_t)offsetof(pool_config, max_queued_bytes) + 4;
    p = NULL;
    CHECK_OK(pool_create(&cfg, &p));
    {
        char hex[POOL_HEX_LEN];
        uint64_t id = submit(p, "ab", 2, 1);
        CHECK_OK(pool_wait(p, id, LONG_WAIT_MS, hex));
    }
    CHECK_OK(pool_destroy(p));

    /* cfg NULL means the defaults. */
    p = NULL;
    CHECK_OK(pool_create(NULL, &p));
    CHECK(p != NULL);
    CHECK_OK(pool_destroy(p));
}

static void null_pointers(pool *p)
{
    char hex[POOL_HEX_LEN];
    uint64_t id = SENTINEL_ID, job;
    pool_stats st;
    int32_t pids[4] = {-7, -7, -7, -7};
    size_t count = 12345;

    /* NULL pool. */
    CHECK_STATUS(pool_submit(NULL, "x", 1, 1, &id), POOL_EINVAL);
    fill(hex);
    CHECK_STATUS(pool_wait(NULL, 1, 0, hex), POOL_EINVAL);
    CHECK_STATUS(pool_wait_any(NULL, 0, &id, hex), POOL_EINVAL);
    CHECK(untouched(hex));
    CHECK_STATUS(pool_cancel(NULL, 1), POOL_EINVAL);
    CHECK_STATUS(pool_stats_get(NULL, &st), POOL_EINVAL);
    CHECK_STATUS(pool_worker_pids(NULL, pids, 4, &count), POOL_EINVAL);
    CHECK(id == SENTINEL_ID && count == 12345 && pids[0] == -7);

    /* NULL out-params and messages. */
    CHECK_STATUS(pool_submit(p, "x", 1, 1, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_submit(p, NULL, 1, 1, &id), POOL_EINVAL);
    CHECK_STATUS(pool_submit(p, NULL, 100, 1, &id), POOL_EINVAL);
    CHECK_STATUS(pool_stats_get(p, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_worker_pids(p, pids, 4, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_worker_pids(p, NULL, 4, &count), POOL_EINVAL);
    CHECK(id == SENTINEL_ID && count == 12345 && pids[0] == -7);
    CHECK(stats_of(p).jobs_queued + stats_of(p).jobs_running + stats_of(p).jobs_ready == 0);

    /* NULL msg with len 0 is the empty message. */
    job = submit(p, NULL, 0, 5);
    ref_hex("", 0, 5, hex);
    {
        char via_null[POOL_HEX_LEN];
        CHECK_OK(pool_md5_chain(NULL, 0, 5, via_null));
        CHECK(strcmp(via_null, hex) == 0);
    }
    /* A NULL hex_out is refused and leaves the job as it was. */
    CHECK(ready_within(p, 1, LONG_WAIT_MS));
    CHECK_STATUS(pool_wait(p, job, -1, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_wait(p, job, 0, NULL), POOL_EINVAL);
    wait_ok(p, job, hex);

    /* pool_md5_chain. */
    fill(hex);
    CHECK_STATUS(pool_md5_chain("x", 1, 1, NULL), POOL_EINVAL);
    CHECK_STATUS(pool_md5_chain(NULL, 1, 1, hex), POOL_EINVAL);
    CHECK_STATUS(pool_md5_chain("x", 1, 0, hex), POOL_EINVAL);
    CHECK(untouched(hex));
}

static void zero_iterations_and_sizes(pool *p)
{
    uint64_t id = SENTINEL_ID;
    char want[POOL_HEX_LEN];
    unsigned char *big = calloc(1, 1024 * 1024 + 1);
    pool_config cfg;
    pool *small;
    CHECK(big != NULL);

    CHECK_STATUS(pool_submit(p, "x", 1, 0, &id), POOL_EINVAL);
    CHECK(id == SENTINEL_ID);

    /* Default max_message_bytes is 1 MiB: one byte more is too big. */
    CHECK_STATUS(pool_submit(p, big, 1024 * 1024 + 1, 1, &id), POOL_ETOOBIG);
    CHECK(id == SENTINEL_ID);
    free(big);

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_message_bytes = 100;
    CHECK_OK(pool_create(&cfg, &small));
    big = calloc(1, 101);
    CHECK(big != NULL);
    CHECK_STATUS(pool_submit(small, big, 101, 1, &id), POOL_ETOOBIG);
    CHECK_STATUS(pool_submit(small, big, 1000, 1, &id), POOL_ETOOBIG);
    CHECK(id == SENTINEL_ID);
    id = submit(small, big, 100, 2); /* == max is accepted */
    ref_hex(big, 100, 2, want);
    wait_ok(small, id, want);
    free(big);
    CHECK_OK(pool_destroy(small));
}

static void unknown_and_collected_ids(pool *p)
{
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t id = submit(p, "abc", 3, 100);

    ref_hex("abc", 3, 100, want);
    fill(hex);
    CHECK_STATUS(pool_wait(p, 0, 0, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait(p, id + 1000, 0, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait(p, id + 1000, 100, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait(p, UINT64_MAX, -1, hex), POOL_ENOJOB);
    CHECK(untouched(hex));
    CHECK_STATUS(pool_cancel(p, 0), POOL_ENOJOB);
    CHECK_STATUS(pool_cancel(p, id + 1000), POOL_ENOJOB);
    CHECK_STATUS(pool_cancel(p, UINT64_MAX), POOL_ENOJOB);

    wait_ok(p, id, want);
    fill(hex);
    CHECK_STATUS(pool_wait(p, id, 0, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait(p, id, -1, hex), POOL_ENOJOB);
    CHECK(untouched(hex));
    CHECK_STATUS(pool_cancel(p, id), POOL_ENOJOB);
}

/* queue_capacity counts outstanding jobs: finished-but-uncollected ones too. */
static void full_queue(void)
{
    pool_config cfg;
    pool *p;
    uint64_t ids[3], id = SENTINEL_ID;
    char want[POOL_HEX_LEN];
    double t;
    int i;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.queue_capacity = 3;
    CHECK_OK(pool_create(&cfg, &p));
    ref_hex("q", 1, 10, want);
    for (i = 0; i < 3; i++)
        ids[i] = submit(p, "q", 1, 10);
    CHECK(ready_within(p, 3, LONG_WAIT_MS)); /* all finished, none collected */

    t = now_seconds();
    CHECK_STATUS(pool_submit(p, "q", 1, 10, &id), POOL_EFULL);
    CHECK_STATUS(pool_submit(p, "q", 1, 10, &id), POOL_EFULL);
    CHECK(now_seconds() - t < 1.0); /* never blocks */
    CHECK(id == SENTINEL_ID);

    wait_ok(p, ids[0], want); /* collecting one frees one place */
    ids[0] = submit(p, "q", 1, 10);
    CHECK_STATUS(pool_submit(p, "q", 1, 10, &id), POOL_EFULL);

    /* Canceling is not collecting: the place frees when the canceled job is collected. */
    CHECK_OK(pool_cancel(p, ids[1]));
    CHECK_STATUS(pool_submit(p, "q", 1, 10, &id), POOL_EFULL);
    CHECK_STATUS(pool_wait(p, ids[1], LONG_WAIT_MS, want), POOL_ECANCELED);
    ref_hex("q", 1, 10, want);
    ids[1] = submit(p, "q", 1, 10);

    /* Full with queued and running jobs as well. */
    for (i = 0; i < 3; i++)
        wait_ok(p, ids[i], want);
    ids[0] = submit(p, "long", 4, 10000000000ULL);
    ids[1] = submit(p, "q", 1, 10);
    ids[2] = submit(p, "q", 1, 10);
    t = now_seconds();
    CHECK_STATUS(pool_submit(p, "q", 1, 10, &id), POOL_EFULL);
    CHECK(now_seconds() - t < 1.0);
    CHECK_OK(pool_destroy(p));

    /* queue_capacity 0 means 65536. */
    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.queue_capacity = 0;
    CHECK_OK(pool_create(&cfg, &p));
    for (i = 0; i < 65536; i++)
        CHECK_OK(pool_submit(p, "q", 1, 1, &id));
    CHECK_STATUS(pool_submit(p, "q", 1, 1, &id), POOL_EFULL);
    CHECK_OK(pool_wait_any(p, LONG_WAIT_MS, &id, want));
    CHECK_OK(pool_submit(p, "q", 1, 1, &id));
    CHECK_STATUS(pool_submit(p, "q", 1, 1, &id), POOL_EFULL);
    CHECK_OK(pool_destroy(p));
}

/* Any negative timeout waits forever, any large one is just long. */
static void extreme_timeouts(pool *p)
{
    const int64_t timeouts[] = {-1, -2, INT64_MIN, INT64_MAX, (int64_t)1 << 62};
    char want[POOL_HEX_LEN];
    uint64_t id, got;
    size_t i;

    ref_hex("t", 1, 20000, want);
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        char hex[POOL_HEX_LEN];
        id = submit(p, "t", 1, 20000);
        CHECK_OK(pool_wait(p, id, timeouts[i], hex));
        CHECK(strcmp(hex, want) == 0);
        id = submit(p, "t", 1, 20000);
        CHECK_OK(pool_wait_any(p, timeouts[i], &got, hex));
        CHECK(got == id && strcmp(hex, want) == 0);
    }
}

/* The wait's own timeout: POOL_ETIMEDOUT, and the job is still collectable. */
static void wait_timeouts(pool *p)
{
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    uint64_t id, got = SENTINEL_ID;
    const uint64_t iterations = 3000000; /* ~0.4 s or more */
    double t;

    ref_hex("slow", 4, iterations, want);
    id = submit(p, "slow", 4, iterations);
    CHECK(running_within(p, 1, LONG_WAIT_MS));

    fill(hex);
    CHECK_STATUS(pool_wait(p, id, 0, hex), POOL_ETIMEDOUT);
    CHECK(untouched(hex));
    t = now_seconds();
    CHECK_STATUS(pool_wait(p, id, 50, hex), POOL_ETIMEDOUT);
    t = now_seconds() - t;
    CHECK(t >= 0.045 && t < 2.0);
    CHECK(untouched(hex));
    CHECK_STATUS(pool_wait_any(p, 0, &got, hex), POOL_ETIMEDOUT);
    CHECK_STATUS(pool_wait_any(p, 50, &got, hex), POOL_ETIMEDOUT);
    CHECK(got == SENTINEL_ID);
    CHECK(untouched(hex));

    wait_ok(p, id, want);
}

static void strings(void)
{
    int v;
    unsigned a, b, c;
    int n = -1;
    const char *version = pool_version();

    for (v = 0; v <= 12; v++) {
        const char *s = pool_strerror((pool_status)v);
        CHECK(s != NULL && s[0] != '\0');
    }
    CHECK(pool_strerror((pool_status)13) != NULL);
    CHECK(pool_strerror((pool_status)999) != NULL);
    CHECK(pool_strerror((pool_status)-1) != NULL);
    CHECK(pool_strerror((pool_status)0x7fffffff) != NULL);
    CHECK(strcmp(pool_strerror(POOL_OK), pool_strerror(POOL_EINVAL)) != 0);

    CHECK(version != NULL);
    CHECK(sscanf(version, "%u.%u.%u%n", &a, &b, &c, &n) == 3);
    CHECK(n == (int)strlen(version));
    CHECK(version[0] >= '0' && version[0] <= '9');
    CHECK(pool_version() == version || strcmp(pool_version(), version) == 0);
}

int main(void)
{
    pool *p;
    int fds = open_fd_count();

    strings();
    create_errors();
    p = make_pool(1);
    null_pointers(p);
    zero_iterations_and_sizes(p);
    unknown_and_collected_ids(p);
    wait_timeouts(p);
    extreme_timeouts(p);
    CHECK_OK(pool_destroy(p));
    full_queue();
    CHECK(open_fd_count() == fds);
    return 0;
}
