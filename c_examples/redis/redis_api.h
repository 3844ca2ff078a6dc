/*
 * The part of the Redis module API this module uses, declared here rather than
 * copied from redismodule.h. Redis hands a module one function, GetApi, in the
 * first word of the context passed to RedisModule_OnLoad; every other API call
 * is looked up by name through it ("RedisModule_BlockClient", ...). The types and
 * constants below are the documented ones of the Redis module API, version 1.
 */
#ifndef MD5POOL_REDIS_API_H
#define MD5POOL_REDIS_API_H

#include <stddef.h>
#include <stdint.h>

#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1

#define REDISMODULE_EVENTLOOP_READABLE 1

/* RedisModule_GetContextFlags: where a command runs; a client inside MULTI, a
 * script or a module's RedisModule_Call cannot be blocked. */
#define REDISMODULE_CTX_FLAGS_LUA (1 << 0)
#define REDISMODULE_CTX_FLAGS_MULTI (1 << 1)
#define REDISMODULE_CTX_FLAGS_DENY_BLOCKING (1 << 21)

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleBlockedClient RedisModuleBlockedClient;

typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
typedef void (*RedisModuleDisconnectFunc)(RedisModuleCtx *ctx, RedisModuleBlockedClient *bc);
typedef void (*RedisModuleFreePrivdataFunc)(RedisModuleCtx *ctx, void *privdata);
typedef void (*RedisModuleEventLoopFunc)(int fd, void *user_data, int mask);

/* Server events: an id and the version of the data passed with it. */
typedef struct RedisModuleEvent {
    uint64_t id;
    uint64_t dataver;
} RedisModuleEvent;
#define REDISMODULE_EVENT_SHUTDOWN 5
typedef void (*RedisModuleEventCallback)(RedisModuleCtx *ctx, RedisModuleEvent eid, uint64_t subevent,
                                         void *data);

/* Required: loading fails, with a log line naming the first one missing, on a
 * Redis that lacks one. */
extern void (*RedisModule_SetModuleAttribs)(RedisModuleCtx *ctx, const char *name, int ver, int apiver);
extern int (*RedisModule_CreateCommand)(RedisModuleCtx *ctx, const char *name, RedisModuleCmdFunc cmdfunc,
                                        const char *strflags, int firstkey, int lastkey, int keystep);
extern int (*RedisModule_WrongArity)(RedisModuleCtx *ctx);
extern int (*RedisModule_ReplyWithError)(RedisModuleCtx *ctx, const char *err);
extern int (*RedisModule_ReplyWithStringBuffer)(RedisModuleCtx *ctx, const char *buf, size_t len);
extern int (*RedisModule_ReplyWithSimpleString)(RedisModuleCtx *ctx, const char *msg);
extern int (*RedisModule_ReplyWithLongLong)(RedisModuleCtx *ctx, long long ll);
extern int (*RedisModule_ReplyWithArray)(RedisModuleCtx *ctx, long len);
extern int (*RedisModule_ReplyWithNull)(RedisModuleCtx *ctx);
extern const char *(*RedisModule_StringPtrLen)(const RedisModuleString *str, size_t *len);
extern int (*RedisModule_StringToLongLong)(const RedisModuleString *str, long long *ll);
extern int (*RedisModule_GetContextFlags)(RedisModuleCtx *ctx);
extern void (*RedisModule_Log)(RedisModuleCtx *ctx, const char *level, const char *fmt, ...);
extern RedisModuleBlockedClient *(*RedisModule_BlockClient)(RedisModuleCtx *ctx, RedisModuleCmdFunc reply_callback,
                                                            RedisModuleCmdFunc timeout_callback,
                                                            RedisModuleFreePrivdataFunc free_privdata,
                                                            long long timeout_ms);
extern int (*RedisModule_UnblockClient)(RedisModuleBlockedClient *bc, void *privdata);
extern void *(*RedisModule_GetBlockedClientPrivateData)(RedisModuleCtx *ctx);
extern RedisModuleBlockedClient *(*RedisModule_GetBlockedClientHandle)(RedisModuleCtx *ctx);
extern void (*RedisModule_SetDisconnectCallback)(RedisModuleBlockedClient *bc, RedisModuleDisconnectFunc callback);

/* Newer: NULL when the running Redis lacks them. */
extern int (*RedisModule_SubscribeToServerEvent)(RedisModuleCtx *ctx, RedisModuleEvent event,
                                                 RedisModuleEventCallback callback); /* 6.0 */
extern int (*RedisModule_EventLoopAdd)(int fd, int mask, RedisModuleEventLoopFunc func, void *user_data); /* 7.0 */
extern int (*RedisModule_EventLoopDel)(int fd, int mask);                                                   /* 7.0 */

/* Resolve every pointer above through the GetApi function found in ctx and
 * register the module under `name`. REDISMODULE_ERR when a required call is
 * missing or the name is taken. */
int redis_api_init(RedisModuleCtx *ctx, const char *name, int version);

#endif
