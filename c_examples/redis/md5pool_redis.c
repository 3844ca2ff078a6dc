/*
 * md5pool as a Redis module: MD5 chains run in md5pool's worker processes while
 * Redis's single thread keeps serving other clients.
 *
 *   redis-server --loadmodule build/redis/md5pool_redis.so [workers N]
 *       [queue_capacity N] [job_timeout_ms N] [max_attempts N] [wait_thread yes|no]
 *
 *   MD5POOL.CHAIN <iterations> <message>   the chain, computed by the pool; the
 *                                          client waits, Redis does not
 *   MD5POOL.LOCAL <iterations> <message>   the same chain in Redis's own thread
 *   MD5POOL.STATS                          pool and module counters, name/value pairs
 *
 * The pool is created when Redis loads the module (after it daemonized, before
 * it serves) and destroyed at SHUTDOWN or MODULE UNLOAD.
 */
#include <errno.h>
#include <md5pool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "completion.h"
#include "inflight.h"
#include "redis_api.h"

#define MODULE_NAME "md5pool"
#define MODULE_VERSION 1
#define DEFAULT_WORKER_NICE 10
/* Built with -fvisibility=hidden: Redis looks up only these two by name. */
#define MODULE_EXPORT __attribute__((visibility("default")))

static pool *md5_pool;
static struct inflight book;

/* ------------------------------------------------------------------ replies */
static const char *status_name(pool_status status) {
    switch (status) {
    case POOL_OK: return "POOL_OK";
    case POOL_EINVAL: return "POOL_EINVAL";
    case POOL_ETOOBIG: return "POOL_ETOOBIG";
    case POOL_EFULL: return "POOL_EFULL";
    case POOL_ETIMEDOUT: return "POOL_ETIMEDOUT";
    case POOL_ENOJOB: return "POOL_ENOJOB";
    case POOL_EWORKER: return "POOL_EWORKER";
    case POOL_EJOBTIMEOUT: return "POOL_EJOBTIMEOUT";
    case POOL_ECANCELED: return "POOL_ECANCELED";
    case POOL_ESPAWN: return "POOL_ESPAWN";
    case POOL_ENOMEM: return "POOL_ENOMEM";
    case POOL_EFORKED: return "POOL_EFORKED";
    case POOL_EINTERNAL: return "POOL_EINTERNAL";
    }
    return "POOL_EUNKNOWN";
}

/* "-BUSY md5pool queue full" for a full queue (the client may retry, as with
 * Redis's own -BUSY), else "-ERR POOL_<NAME> <description>". */
static int reply_with_status(RedisModuleCtx *ctx, pool_status status) {
    char message[160];
    if (status == POOL_EFULL) {
        return RedisModule_ReplyWithError(ctx, "BUSY md5pool queue full");
    }
    (void)snprintf(message, sizeof message, "ERR %s %s", status_name(status), pool_strerror(status));
    return RedisModule_ReplyWithError(ctx, message);
}

static int reply_with_digest(RedisModuleCtx *ctx, const char *hex) {
    return RedisModule_ReplyWithStringBuffer(ctx, hex, POOL_HEX_LEN - 1);
}

/* The arguments of MD5POOL.CHAIN and MD5POOL.LOCAL: <iterations> <message>. */
struct chain_args {
    uint64_t iterations;
    const char *message; /* any bytes, owned by Redis for the command's duration */
    size_t length;
};

/* 1 with *out filled, or 0 after replying with the error. */
static int parse_chain_args(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, struct chain_args *out) {
    long long iterations;
    if (argc != 3) {
        RedisModule_WrongArity(ctx);
        return 0;
    }
    if (RedisModule_StringToLongLong(argv[1], &iterations) != REDISMODULE_OK || iterations < 1) {
        RedisModule_ReplyWithError(ctx, "ERR iterations must be a positive integer");
        return 0;
    }
    out->iterations = (uint64_t)iterations;
    out->message = RedisModule_StringPtrLen(argv[2], &out->length);
    return 1;
}

/* ------------------------------------------------------------ MD5POOL.CHAIN */
static int chain_reply(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    const struct request *req = RedisModule_GetBlockedClientPrivateData(ctx);
    (void)argv;
    (void)argc;
    if (req == NULL) {
        return RedisModule_ReplyWithNull(ctx); /* unblocked without a result: its client left */
    }
    return req->status == POOL_OK ? reply_with_digest(ctx, req->hex) : reply_with_status(ctx, req->status);
}

static void free_request(RedisModuleCtx *ctx, void *privdata) {
    (void)ctx;
    free(privdata);
}

/* The client will not read the result: cancel its job (the completion side
 * drops the canceled job's outcome) and release the client's handle. */
static void abandon_client(RedisModuleBlockedClient *client) {
    uint64_t job;

    inflight_lock(&book);
    job = inflight_abandon(&book, client);
    inflight_unlock(&book);
    if (job == 0) {
        return; /* its job finished first: its unblocking is already on its way */
    }
    /* POOL_ENOJOB when the job was collected meanwhile; either way its result
     * goes nowhere, and nothing else can be done about another status. */
    (void)pool_cancel(md5_pool, job);
    RedisModule_UnblockClient(client, NULL);
}

static void chain_client_disconnected(RedisModuleCtx *ctx, RedisModuleBlockedClient *client) {
    (void)ctx;
    abandon_client(client);
}

/* Called for CLIENT UNBLOCK <id> [TIMEOUT]: the command has no timeout of its own. */
static int chain_timed_out(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    abandon_client(RedisModule_GetBlockedClientHandle(ctx));
    return RedisModule_ReplyWithNull(ctx);
}

static int chain_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    const int cannot_block =
        REDISMODULE_CTX_FLAGS_LUA | REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_DENY_BLOCKING;
    struct request *req;
    struct chain_args args;
    pool_status status;

    if (!parse_chain_args(ctx, argv, argc, &args)) {
        return REDISMODULE_OK;
    }
    if (md5_pool == NULL) {
        return RedisModule_ReplyWithError(ctx, "ERR md5pool is shut down");
    }
    if (RedisModule_GetContextFlags(ctx) & cannot_block) {
        return RedisModule_ReplyWithError(
            ctx, "ERR MD5POOL.CHAIN cannot wait inside MULTI, a script or a module call: use MD5POOL.LOCAL");
    }
    req = calloc(1, sizeof *req);
    if (req == NULL) {
        return reply_with_status(ctx, POOL_ENOMEM);
    }
    /* Submit and book under one lock, so that the wait thread cannot look for
     * the job's client before it is booked. */
    inflight_lock(&book);
    status = pool_submit(md5_pool, args.message, args.length, args.iterations, &req->job);
    if (status == POOL_OK) {
        req->client = RedisModule_BlockClient(ctx, chain_reply, chain_timed_out, free_request, 0);
        if (req->client != NULL) {
            RedisModule_SetDisconnectCallback(req->client, chain_client_disconnected);
            inflight_add(&book, req);
        } else {
            (void)pool_cancel(md5_pool, req->job); /* its outcome finds no booking and is dropped */
            status = POOL_EINTERNAL;
        }
    }
    inflight_unlock(&book);
    if (status != POOL_OK) {
        free(req);
        return reply_with_status(ctx, status);
    }
    return REDISMODULE_OK;
}

/* ------------------------------------------------- MD5POOL.LOCAL and .STATS */
static int local_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    char hex[POOL_HEX_LEN];
    struct chain_args args;
    pool_status status;

    if (!parse_chain_args(ctx, argv, argc, &args)) {
        return REDISMODULE_OK;
    }
    status = pool_md5_chain(args.message, args.length, args.iterations, hex);
    return status == POOL_OK ? reply_with_digest(ctx, hex) : reply_with_status(ctx, status);
}

static int stats_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    pool_stats s;
    pool_status status;
    uint64_t waiting, abandoned;
    size_t i;

    (void)argv;
    if (argc != 1) {
        return RedisModule_WrongArity(ctx);
    }
    if (md5_pool == NULL) {
        return RedisModule_ReplyWithError(ctx, "ERR md5pool is shut down");
    }
    status = pool_stats_get(md5_pool, &s);
    if (status != POOL_OK) {
        return reply_with_status(ctx, status);
    }
    inflight_lock(&book);
    waiting = book.waiting;
    abandoned = book.abandoned;
    inflight_unlock(&book);
    {
        const struct {
            const char *name;
            uint64_t value;
        } fields[] = {
            {"workers_configured", s.workers_configured},
            {"workers_alive", s.workers_alive},
            {"jobs_queued", s.jobs_queued},
            {"jobs_running", s.jobs_running},
            {"jobs_ready", s.jobs_ready},
            {"jobs_completed", s.jobs_completed},
            {"jobs_failed", s.jobs_failed},
            {"jobs_retried", s.jobs_retried},
            {"worker_restarts", s.worker_restarts},
            {"clients_waiting", waiting},      /* blocked in MD5POOL.CHAIN */
            {"jobs_abandoned", abandoned},     /* canceled for a client that left, not yet collected */
        };
        const size_t count = sizeof fields / sizeof fields[0];
        RedisModule_ReplyWithArray(ctx, (long)(2 * count + 2));
        for (i = 0; i < count; i++) {
            RedisModule_ReplyWithSimpleString(ctx, fields[i].name);
            RedisModule_ReplyWithLongLong(ctx, (long long)fields[i].value);
        }
        RedisModule_ReplyWithSimpleString(ctx, "completion");
        RedisModule_ReplyWithSimpleString(ctx, completion_mode_name());
    }
    return REDISMODULE_OK;
}

/* ------------------------------------------------------------ load / unload */
struct module_settings {
    pool_config config;
    int wait_thread; /* deliver results from a module thread rather than Redis's event loop */
};

/* How many nice levels the workers run below Redis (module argument worker_nice). */
static int worker_nice;

/* Runs in each worker before its first job: a worker busy with a long chain then
 * yields the CPU to Redis's thread, whose clients wait in microseconds. Relative
 * to Redis's own priority, so that a worker never runs above Redis. */
static void lower_worker_priority(void *arg) {
    int current;
    (void)arg;
    errno = 0;
    current = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) {
        return; /* a worker cannot report a failure: it then keeps Redis's priority */
    }
    /* The kernel caps the value at 19; a failure leaves Redis's priority, as above. */
    (void)setpriority(PRIO_PROCESS, 0, current + worker_nice);
}

static int parse_count(const RedisModuleString *arg, uint32_t *out) {
    long long value;
    if (RedisModule_StringToLongLong(arg, &value) != REDISMODULE_OK || value < 0 || value > (long long)UINT32_MAX) {
        return 0;
    }
    *out = (uint32_t)value;
    return 1;
}

static int parse_nice(const RedisModuleString *arg, int *out) {
    long long value;
    if (RedisModule_StringToLongLong(arg, &value) != REDISMODULE_OK || value < 0 || value > 19) {
        return 0;
    }
    *out = (int)value;
    return 1;
}

static int parse_yes_no(const RedisModuleString *arg, int *out) {
    const char *text = RedisModule_StringPtrLen(arg, NULL);
    if (strcmp(text, "yes") == 0 || strcmp(text, "no") == 0) {
        *out = text[0] == 'y';
        return 1;
    }
    return 0;
}

/* One `name value` module argument into *out: 1, 0 for a bad value, -1 for an unknown name. */
static int apply_module_arg(const char *name, const RedisModuleString *value, struct module_settings *out) {
    if (strcmp(name, "workers") == 0) {
        return parse_count(value, &out->config.workers);
    }
    if (strcmp(name, "queue_capacity") == 0) {
        return parse_count(value, &out->config.queue_capacity);
    }
    if (strcmp(name, "job_timeout_ms") == 0) {
        return parse_count(value, &out->config.job_timeout_ms);
    }
    if (strcmp(name, "max_attempts") == 0) {
        return parse_count(value, &out->config.max_attempts);
    }
    if (strcmp(name, "worker_nice") == 0) {
        return parse_nice(value, &worker_nice);
    }
    if (strcmp(name, "wait_thread") == 0) {
        return parse_yes_no(value, &out->wait_thread);
    }
    return -1;
}

/* Module arguments are `name value` pairs; REDISMODULE_ERR after logging why. */
static int parse_module_args(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, struct module_settings *out) {
    int i;

    pool_config_init(&out->config);
    out->wait_thread = 0;
    worker_nice = DEFAULT_WORKER_NICE;
    for (i = 0; i < argc; i += 2) {
        const char *name = RedisModule_StringPtrLen(argv[i], NULL);
        int applied;
        if (i + 1 == argc) {
            RedisModule_Log(ctx, "warning", "module argument '%s' has no value", name);
            return REDISMODULE_ERR;
        }
        applied = apply_module_arg(name, argv[i + 1], out);
        if (applied < 0) {
            RedisModule_Log(ctx, "warning", "unknown module argument '%s' (expected workers, queue_capacity, "
                            "job_timeout_ms, max_attempts, worker_nice or wait_thread)", name);
            return REDISMODULE_ERR;
        }
        if (applied == 0) {
            RedisModule_Log(ctx, "warning", "bad value '%s' for %s", RedisModule_StringPtrLen(argv[i + 1], NULL),
                            name);
            return REDISMODULE_ERR;
        }
    }
    if (!out->wait_thread && RedisModule_EventLoopAdd == NULL) {
        RedisModule_Log(ctx, "notice", "this Redis has no RedisModule_EventLoopAdd (before 7.0): results are "
                        "delivered by a module thread, as with wait_thread yes");
        out->wait_thread = 1;
    }
    if (worker_nice > 0) {
        out->config.worker_init = lower_worker_priority;
    }
    return REDISMODULE_OK;
}

/* Stops delivery, destroys the pool (reaping every process it started) and
 * frees what is booked. Safe to call twice. */
static void stop_pool(void) {
    struct request *req;

    if (md5_pool == NULL) {
        return;
    }
    completion_stop();
    (void)pool_destroy(md5_pool); /* POOL_OK, or POOL_EFORKED in a fork child: nothing to do then */
    md5_pool = NULL;
    inflight_lock(&book);
    req = inflight_take_all(&book);
    inflight_unlock(&book);
    while (req != NULL) {
        struct request *next = req->next;
        free(req); /* only at SHUTDOWN can a client still wait here: Redis exits next */
        req = next;
    }
    inflight_destroy(&book);
}

static void on_shutdown(RedisModuleCtx *ctx, RedisModuleEvent event, uint64_t subevent, void *data) {
    (void)ctx;
    (void)event;
    (void)subevent;
    (void)data;
    stop_pool();
}

static int start_pool(RedisModuleCtx *ctx, const struct module_settings *settings) {
    pool_status status;
    int err = inflight_init(&book);

    if (err != 0) {
        RedisModule_Log(ctx, "warning", "mutex: %s", strerror(err));
        return REDISMODULE_ERR;
    }
    status = pool_create(&settings->config, &md5_pool);
    if (status != POOL_OK) {
        RedisModule_Log(ctx, "warning", "pool_create: %s %s", status_name(status), pool_strerror(status));
        inflight_destroy(&book);
        return REDISMODULE_ERR;
    }
    err = completion_start(settings->wait_thread ? COMPLETION_WAIT_THREAD : COMPLETION_EVENT_LOOP, md5_pool, &book);
    if (err != 0) {
        RedisModule_Log(ctx, "warning", "cannot watch the pool: %s", strerror(err));
        stop_pool();
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

static int create_commands(RedisModuleCtx *ctx) {
    /* No keys (first key 0). CHAIN is not "fast": it may block its client. */
    if (RedisModule_CreateCommand(ctx, "md5pool.chain", chain_command, "readonly", 0, 0, 0) != REDISMODULE_OK ||
        RedisModule_CreateCommand(ctx, "md5pool.local", local_command, "readonly", 0, 0, 0) != REDISMODULE_OK ||
        RedisModule_CreateCommand(ctx, "md5pool.stats", stats_command, "readonly fast", 0, 0, 0) !=
            REDISMODULE_OK) {
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

MODULE_EXPORT int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    const RedisModuleEvent shutdown_event = {REDISMODULE_EVENT_SHUTDOWN, 1};
    struct module_settings settings;

    if (redis_api_init(ctx, MODULE_NAME, MODULE_VERSION) != REDISMODULE_OK) {
        return REDISMODULE_ERR;
    }
    if (parse_module_args(ctx, argv, argc, &settings) != REDISMODULE_OK || create_commands(ctx) != REDISMODULE_OK ||
        start_pool(ctx, &settings) != REDISMODULE_OK) {
        return REDISMODULE_ERR;
    }
    /* Last: a failed load must leave no callback behind into the unloaded code.
     * Redis before 6.0 has no server events; its workers then notice Redis's
     * exit themselves. */
    if (RedisModule_SubscribeToServerEvent != NULL &&
        RedisModule_SubscribeToServerEvent(ctx, shutdown_event, on_shutdown) != REDISMODULE_OK) {
        stop_pool();
        return REDISMODULE_ERR;
    }
    RedisModule_Log(ctx, "notice", "libmd5pool %s: pool ready, results via %s", pool_version(), completion_mode_name());
    return REDISMODULE_OK;
}

/* MODULE UNLOAD: refused while clients wait for jobs, whose replies would
 * otherwise call into unloaded code (Redis 7 refuses that itself; older
 * versions rely on this check). */
MODULE_EXPORT int RedisModule_OnUnload(RedisModuleCtx *ctx) {
    uint64_t waiting = 0;
    if (md5_pool != NULL) {
        inflight_lock(&book);
        waiting = book.waiting;
        inflight_unlock(&book);
    }
    if (waiting > 0) {
        RedisModule_Log(ctx, "warning", "not unloading: %llu clients wait for jobs",
                        (unsigned long long)waiting);
        return REDISMODULE_ERR;
    }
    stop_pool();
    return REDISMODULE_OK;
}
