/* max_queued_bytes caps the message bytes the pool holds for jobs not finished
 * yet: a submit that would pass it is POOL_EFULL, a message longer than the
 * cap alone is POOL_ETOOBIG, room comes back when a job ends, and queued_bytes
 * in the stats says what is held. A config of the 1.0 size (ending at log_arg)
 * is valid and gets the default cap. */
#include <stddef.h>

#include "check.h"

#define KIB 1024
#define MIB (1024 * KIB)
#define FOREVER 4000000000000ULL /* iterations no test waits for */

static char msg[2 * MIB];

static void test_budget(void)
{
    char hex[POOL_HEX_LEN];
    uint64_t ids[16], id;
    pool_config cfg;
    pool *p = NULL;
    int i;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_message_bytes = 4 * MIB; /* so that only the byte cap refuses 2 MiB */
    cfg.max_queued_bytes = MIB;
    CHECK_OK(pool_create(&cfg, &p));

    for (i = 0; i < 16; i++)
        ids[i] = submit(p, msg, 64 * KIB, FOREVER);
    CHECK(stats_of(p).queued_bytes == MIB);
    CHECK_STATUS(pool_submit(p, msg, 64 * KIB, FOREVER, &id), POOL_EFULL);
    CHECK_STATUS(pool_submit(p, msg, 1, 1, &id), POOL_EFULL);
    CHECK_STATUS(pool_submit(p, msg, 2 * MIB, 1, &id), POOL_ETOOBIG);
    /* An empty message holds no bytes: it still fits. */
    CHECK_OK(pool_submit(p, msg, 0, 1, &id));
    CHECK_OK(pool_cancel(p, id));
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_ECANCELED);

    /* A job that ends (canceled here) gives its room back. */
    CHECK_OK(pool_cancel(p, ids[0]));
    CHECK(stats_of(p).queued_bytes == MIB - 64 * KIB);
    CHECK_STATUS(pool_wait(p, ids[0], LONG_WAIT_MS, hex), POOL_ECANCELED);
    ids[0] = submit(p, msg, 64 * KIB, FOREVER);
    CHECK_STATUS(pool_submit(p, msg, 64 * KIB, FOREVER, &id), POOL_EFULL);

    for (i = 0; i < 16; i++) {
        CHECK_OK(pool_cancel(p, ids[i]));
        CHECK_STATUS(pool_wait(p, ids[i], LONG_WAIT_MS, hex), POOL_ECANCELED);
    }
    CHECK(stats_of(p).queued_bytes == 0);
    CHECK_OK(pool_destroy(p));
}

/* The 1.0 struct ended at log_arg; a program built against the 1.0 header
 * passes that size, and whatever lies past it is not read. */
static void test_config_of_version_1_0(void)
{
    size_t size_1_0 = offsetof(pool_config, log_arg) + sizeof(void *);
    char want[POOL_HEX_LEN];
    pool_config cfg;
    pool *p = NULL;

    pool_config_init(&cfg);
    CHECK(cfg.size == sizeof(pool_config));
    CHECK(size_1_0 < sizeof(pool_config));
    cfg.workers = 1;
    cfg.size = (uint32_t)size_1_0;
    cfg.max_queued_bytes = 1; /* past the 1.0 size: must be ignored */
    CHECK_OK(pool_create(&cfg, &p));
    ref_hex(msg, 64 * KIB, 3, want);
    wait_ok(p, submit(p, msg, 64 * KIB, 3), want);
    CHECK_OK(pool_destroy(p));

    cfg.size = (uint32_t)size_1_0 - 8;
    CHECK_STATUS(pool_create(&cfg, &p), POOL_EINVAL);
}

int main(void)
{
    size_t i;
    for (i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    test_budget();
    test_config_of_version_1_0();
    printf("test_edge_budget: ok\n");
    return 0;
}
