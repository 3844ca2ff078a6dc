/* pool_config and pool_stats grew in 1.1, and the library never writes past
 * the struct its caller has:
 * - code that calls pool_config_init and pool_stats_get themselves (built against
 *   the API contract's header, or taking their addresses) gets the contract's
 *   layouts: pool_config of 1.1 (with max_queued_bytes), pool_stats as the
 *   contract has it (without queued_bytes); the canary after each stays intact;
 * - a 1.0 config (size up to log_arg) still makes a working pool;
 * - code compiled against this header calls them through its macros, which
 *   pass sizeof the struct: it gets the 1.1 fields (max_queued_bytes honoured,
 *   queued_bytes reported);
 * - a struct larger than the library's (a later version's) gets zeros past it;
 *   one smaller than 1.0's is refused. */
#include <stddef.h>
#include <string.h>

#include "check.h"

/* The structs as a program compiled against the 1.0 header has them: copied on
 * purpose, frozen at 1.0 (md5pool.h's grow). */
struct config_1_0 {
    uint32_t size;
    uint32_t workers;
    uint32_t queue_capacity;
    uint32_t max_attempts;
    uint32_t job_timeout_ms;
    uint32_t max_jobs_per_worker;
    uint32_t max_message_bytes;
    pool_worker_init_fn worker_init;
    void *worker_init_arg;
    pool_log_fn log;
    void *log_arg;
};

struct stats_1_0 {
    uint32_t workers_configured;
    uint32_t workers_alive;
    uint64_t jobs_queued;
    uint64_t jobs_running;
    uint64_t jobs_ready;
    uint64_t jobs_completed;
    uint64_t jobs_failed;
    uint64_t jobs_retried;
    uint64_t worker_restarts;
};

/* What lies right after a struct on its caller's stack: must stay as it was. */
#define CANARY 0x5ca1ab1e5ca1ab1eULL
#define GARBAGE 0xa5 /* the bytes of a struct before the library fills it */

struct old_config {
    struct config_1_0 cfg;
    uint64_t canary[2];
};

struct old_stats {
    struct stats_1_0 stats;
    uint64_t canary[2];
};

/* A struct of a later version than this library's, one more field at its end. */
struct newer_config {
    pool_config cfg;
    uint64_t field_of_a_later_version;
    uint64_t canary;
};

struct newer_stats {
    pool_stats stats;
    uint64_t counter_of_a_later_version;
    uint64_t canary;
};

static char msg[2048];

static void test_contract_layouts_through_the_plain_functions(void)
{
    void (*config_init)(pool_config *) = pool_config_init;
    pool_status (*stats_get)(const pool *, pool_stats *) = pool_stats_get;
    struct {
        pool_config cfg;
        uint64_t canary[2];
    } full;
    struct old_config old;
    struct old_stats st;
    char want[POOL_HEX_LEN];
    pool *p = NULL;

    memset(&full, GARBAGE, sizeof full);
    full.canary[0] = full.canary[1] = CANARY;
    config_init(&full.cfg);
    CHECK(full.canary[0] == CANARY && full.canary[1] == CANARY);
    CHECK(full.cfg.size == sizeof full.cfg && full.cfg.max_queued_bytes == 256u << 20);

    /* A 1.0 config, as a 1.0 program filled it: its size ends at log_arg. */
    memset(&old, GARBAGE, sizeof old);
    old.canary[0] = old.canary[1] = CANARY;
    memcpy(&old.cfg, &full.cfg, sizeof old.cfg);
    old.cfg.size = sizeof old.cfg;
    CHECK(old.cfg.workers == 0 && old.cfg.queue_capacity == 65536 && old.cfg.max_attempts == 3);
    CHECK(old.cfg.job_timeout_ms == 0 && old.cfg.max_jobs_per_worker == 0);
    CHECK(old.cfg.max_message_bytes == 1048576);
    CHECK(old.cfg.worker_init == NULL && old.cfg.worker_init_arg == NULL);
    CHECK(old.cfg.log == NULL && old.cfg.log_arg == NULL);

    old.cfg.workers = 1;
    CHECK_OK(pool_create((const pool_config *)(void *)&old.cfg, &p));
    ref_hex(msg, sizeof msg, 5, want);
    wait_ok(p, submit(p, msg, sizeof msg, 5), want);

    memset(&st, GARBAGE, sizeof st);
    st.canary[0] = st.canary[1] = CANARY;
    CHECK_OK(stats_get(p, (pool_stats *)(void *)&st.stats));
    CHECK(st.canary[0] == CANARY && st.canary[1] == CANARY);
    CHECK(st.stats.workers_configured == 1 && st.stats.workers_alive == 1);
    CHECK(st.stats.jobs_queued == 0 && st.stats.jobs_running == 0 && st.stats.jobs_ready == 0);
    CHECK(st.stats.jobs_completed == 1 && st.stats.jobs_failed == 0);
    CHECK(st.stats.jobs_retried == 0 && st.stats.worker_restarts == 0);
    CHECK_OK(pool_destroy(p));
}

/* Code compiled against this header gets the fields 1.1 appended. */
static pool *test_code_built_against_this_header(void)
{
    char hex[POOL_HEX_LEN];
    uint64_t job;
    pool_config cfg;
    pool_stats st;
    pool *p = NULL;

    memset(&cfg, GARBAGE, sizeof cfg);
    pool_config_init(&cfg);
    CHECK(cfg.size == sizeof cfg);
    CHECK(cfg.max_queued_bytes == 256u << 20);
    cfg.workers = 1;
    cfg.max_queued_bytes = 1024;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK_STATUS(pool_submit(p, msg, 1025, 1, &job), POOL_ETOOBIG);

    job = submit(p, msg, 1000, HUGE_ITERATIONS);
    memset(&st, GARBAGE, sizeof st);
    CHECK_OK(pool_stats_get(p, &st));
    CHECK(st.queued_bytes == 1000 && st.workers_configured == 1);
    CHECK_OK(pool_cancel(p, job));
    CHECK_STATUS(pool_wait(p, job, LONG_WAIT_MS, hex), POOL_ECANCELED);
    return p;
}

static void test_struct_of_a_later_version(pool *p)
{
    struct newer_config newer;
    struct newer_stats st;

    memset(&newer, GARBAGE, sizeof newer);
    newer.canary = CANARY;
    pool_config_init_sized(&newer.cfg, offsetof(struct newer_config, canary));
    CHECK(newer.cfg.size == sizeof(pool_config)); /* what pool_create can read */
    CHECK(newer.cfg.queue_capacity == 65536 && newer.cfg.max_queued_bytes == 256u << 20);
    CHECK(newer.field_of_a_later_version == 0 && newer.canary == CANARY);

    memset(&st, GARBAGE, sizeof st);
    st.canary = CANARY;
    CHECK_OK(pool_stats_get_sized(p, &st.stats, offsetof(struct newer_stats, canary)));
    CHECK(st.stats.workers_configured == 1 && st.stats.queued_bytes == 0);
    CHECK(st.counter_of_a_later_version == 0 && st.canary == CANARY);
}

/* Below the 1.0 size: a caller's bug, refused without writing the fields. */
static void test_size_below_1_0(pool *p)
{
    pool_config cfg;
    pool_stats st, untouched;
    pool *q = NULL;

    memset(&cfg, GARBAGE, sizeof cfg);
    pool_config_init_sized(&cfg, offsetof(pool_config, log_arg));
    CHECK(cfg.size == 0 && cfg.workers == 0xa5a5a5a5u);
    CHECK_STATUS(pool_create(&cfg, &q), POOL_EINVAL);
    CHECK(q == NULL);

    memset(&st, GARBAGE, sizeof st);
    untouched = st;
    CHECK_STATUS(pool_stats_get_sized(p, &st, offsetof(pool_stats, worker_restarts)), POOL_EINVAL);
    CHECK(memcmp(&st, &untouched, sizeof st) == 0);
}

int main(void)
{
    pool *p;

    memset(msg, 'v', sizeof msg);
    test_contract_layouts_through_the_plain_functions();
    p = test_code_built_against_this_header();
    test_struct_of_a_later_version(p);
    test_size_below_1_0(p);
    CHECK_OK(pool_destroy(p));
    printf("test_api_struct_sizes: ok\n");
    return 0;
}
