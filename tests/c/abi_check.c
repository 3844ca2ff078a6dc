/*
 * The ABI a program compiled against an older md5pool.h relies on, pinned at
 * compile time: names, values, signatures, field offsets and sizes of the 1.0
 * API and of what 1.1 appends. A change that would break such a program fails
 * this compile (`make abi-check`, in `make test`); an addition at the end of a
 * struct does not.
 */
#include <stddef.h>
#include <md5pool.h>

#define PIN(name, condition) typedef char pin_##name[(condition) ? 1 : -1]
#define PIN_FIELD(type, field, offset, size)                                   \
    PIN(type##_##field##_offset, offsetof(type, field) == (offset));           \
    PIN(type##_##field##_size, sizeof(((type *)0)->field) == (size))

PIN(hex_len, POOL_HEX_LEN == 33);
PIN(default_iterations, POOL_DEFAULT_ITERATIONS == 1000000);
PIN(ok, POOL_OK == 0);
PIN(einval, POOL_EINVAL == 1);
PIN(etoobig, POOL_ETOOBIG == 2);
PIN(efull, POOL_EFULL == 3);
PIN(etimedout, POOL_ETIMEDOUT == 4);
PIN(enojob, POOL_ENOJOB == 5);
PIN(eworker, POOL_EWORKER == 6);
PIN(ejobtimeout, POOL_EJOBTIMEOUT == 7);
PIN(ecanceled, POOL_ECANCELED == 8);
PIN(espawn, POOL_ESPAWN == 9);
PIN(enomem, POOL_ENOMEM == 10);
PIN(eforked, POOL_EFORKED == 11);
PIN(einternal, POOL_EINTERNAL == 12);
PIN(status_is_int_sized, sizeof(pool_status) == sizeof(int));

/* pool_config as 1.0 laid it out (x86_64, LP64): cfg.size == 64 */
PIN_FIELD(pool_config, size, 0, 4);
PIN_FIELD(pool_config, workers, 4, 4);
PIN_FIELD(pool_config, queue_capacity, 8, 4);
PIN_FIELD(pool_config, max_attempts, 12, 4);
PIN_FIELD(pool_config, job_timeout_ms, 16, 4);
PIN_FIELD(pool_config, max_jobs_per_worker, 20, 4);
PIN_FIELD(pool_config, max_message_bytes, 24, 4);
PIN_FIELD(pool_config, worker_init, 32, 8);
PIN_FIELD(pool_config, worker_init_arg, 40, 8);
PIN_FIELD(pool_config, log, 48, 8);
PIN_FIELD(pool_config, log_arg, 56, 8);

/* pool_stats as 1.0 laid it out */
PIN_FIELD(pool_stats, workers_configured, 0, 4);
PIN_FIELD(pool_stats, workers_alive, 4, 4);
PIN_FIELD(pool_stats, jobs_queued, 8, 8);
PIN_FIELD(pool_stats, jobs_running, 16, 8);
PIN_FIELD(pool_stats, jobs_ready, 24, 8);
PIN_FIELD(pool_stats, jobs_completed, 32, 8);
PIN_FIELD(pool_stats, jobs_failed, 40, 8);
PIN_FIELD(pool_stats, jobs_retried, 48, 8);
PIN_FIELD(pool_stats, worker_restarts, 56, 8);

/* A header that says 1.1 has 1.1's field, appended after the 1.0 ones. */
#if POOL_VERSION_MAJOR == 1 && POOL_VERSION_MINOR >= 1
PIN_FIELD(pool_config, max_queued_bytes, 64, 8);
PIN_FIELD(pool_stats, queued_bytes, 64, 8);
#else
PIN(config_1_0_size, sizeof(pool_config) == 64);
#endif
PIN(stats_grows_only_at_its_end, sizeof(pool_stats) >= 64);

/* Every 1.0 function with its exact type: a changed parameter fails. */
static void (*const config_init)(pool_config *) = pool_config_init;
static pool_status (*const create)(const pool_config *, pool **) = pool_create;
static pool_status (*const submit)(pool *, const void *, size_t, uint64_t, uint64_t *) = pool_submit;
static pool_status (*const wait_one)(pool *, uint64_t, int64_t, char *) = pool_wait;
static pool_status (*const wait_any)(pool *, int64_t, uint64_t *, char *) = pool_wait_any;
static int (*const fd)(const pool *) = pool_fd;
static pool_status (*const cancel)(pool *, uint64_t) = pool_cancel;
static pool_status (*const stats_get)(const pool *, pool_stats *) = pool_stats_get;
static pool_status (*const worker_pids)(const pool *, int32_t *, size_t, size_t *) = pool_worker_pids;
static pool_status (*const destroy)(pool *) = pool_destroy;
static pool_status (*const md5_chain)(const void *, size_t, uint64_t, char *) = pool_md5_chain;
static const char *(*const strerror_fn)(pool_status) = pool_strerror;
static const char *(*const version)(void) = pool_version;

/* 1.1's sized entry points, which the header's pool_config_init(cfg) and
 * pool_stats_get(p, out) macros call (taking the address above still gets the
 * 1.0 functions). */
#if POOL_VERSION_MAJOR == 1 && POOL_VERSION_MINOR >= 1
static void (*const config_init_sized)(pool_config *, size_t) = pool_config_init_sized;
static pool_status (*const stats_get_sized)(const pool *, pool_stats *, size_t) =
    pool_stats_get_sized;
#define SIZED_MISSING (config_init_sized == NULL || stats_get_sized == NULL)
#else
#define SIZED_MISSING 0
#endif

/* The callbacks' types: a program's functions of these types still fit. */
static void on_log(int level, const char *message, void *arg)
{
    (void)level, (void)message, (void)arg;
}

static void on_worker_start(void *arg)
{
    (void)arg;
}

/* Links against the library: every pinned function is exported. */
int main(void)
{
    pool_config cfg;

    cfg.log = on_log;
    cfg.worker_init = on_worker_start;
    return config_init == NULL || create == NULL || submit == NULL || wait_one == NULL ||
           wait_any == NULL || fd == NULL || cancel == NULL || stats_get == NULL ||
           worker_pids == NULL || destroy == NULL || md5_chain == NULL ||
           strerror_fn == NULL || version == NULL || SIZED_MISSING || cfg.log == NULL ||
           cfg.worker_init == NULL;
}
