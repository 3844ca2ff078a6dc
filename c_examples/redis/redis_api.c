/* Resolution of the Redis module API declared in redis_api.h. */
#include "redis_api.h"

#include <string.h>

void (*RedisModule_SetModuleAttribs)(RedisModuleCtx *, const char *, int, int);
int (*RedisModule_CreateCommand)(RedisModuleCtx *, const char *, RedisModuleCmdFunc, const char *, int, int, int);
int (*RedisModule_WrongArity)(RedisModuleCtx *);
int (*RedisModule_ReplyWithError)(RedisModuleCtx *, const char *);
int (*RedisModule_ReplyWithStringBuffer)(RedisModuleCtx *, const char *, size_t);
int (*RedisModule_ReplyWithSimpleString)(RedisModuleCtx *, const char *);
int (*RedisModule_ReplyWithLongLong)(RedisModuleCtx *, long long);
int (*RedisModule_ReplyWithArray)(RedisModuleCtx *, long);
int (*RedisModule_ReplyWithNull)(RedisModuleCtx *);
const char *(*RedisModule_StringPtrLen)(const RedisModuleString *, size_t *);
int (*RedisModule_StringToLongLong)(const RedisModuleString *, long long *);
int (*RedisModule_GetContextFlags)(RedisModuleCtx *);
void (*RedisModule_Log)(RedisModuleCtx *, const char *, const char *, ...);
RedisModuleBlockedClient *(*RedisModule_BlockClient)(RedisModuleCtx *, RedisModuleCmdFunc, RedisModuleCmdFunc,
                                                     RedisModuleFreePrivdataFunc, long long);
int (*RedisModule_UnblockClient)(RedisModuleBlockedClient *, void *);
void *(*RedisModule_GetBlockedClientPrivateData)(RedisModuleCtx *);
RedisModuleBlockedClient *(*RedisModule_GetBlockedClientHandle)(RedisModuleCtx *);
void (*RedisModule_SetDisconnectCallback)(RedisModuleBlockedClient *, RedisModuleDisconnectFunc);
int (*RedisModule_SubscribeToServerEvent)(RedisModuleCtx *, RedisModuleEvent, RedisModuleEventCallback);
int (*RedisModule_EventLoopAdd)(int, int, RedisModuleEventLoopFunc, void *);
int (*RedisModule_EventLoopDel)(int, int);

typedef int (*get_api_fn)(const char *name, void *function_pointer_out);

struct api_entry {
    const char *name;
    void *slot; /* address of one of the function pointers above */
    int required;
};

int redis_api_init(RedisModuleCtx *ctx, const char *name, int version) {
    int (*is_module_name_busy)(const char *) = NULL;
    const struct api_entry entries[] = {
        {"RedisModule_Log", &RedisModule_Log, 1}, /* first: it reports what is missing */
        {"RedisModule_SetModuleAttribs", &RedisModule_SetModuleAttribs, 1},
        {"RedisModule_CreateCommand", &RedisModule_CreateCommand, 1},
        {"RedisModule_WrongArity", &RedisModule_WrongArity, 1},
        {"RedisModule_ReplyWithError", &RedisModule_ReplyWithError, 1},
        {"RedisModule_ReplyWithStringBuffer", &RedisModule_ReplyWithStringBuffer, 1},
        {"RedisModule_ReplyWithSimpleString", &RedisModule_ReplyWithSimpleString, 1},
        {"RedisModule_ReplyWithLongLong", &RedisModule_ReplyWithLongLong, 1},
        {"RedisModule_ReplyWithArray", &RedisModule_ReplyWithArray, 1},
        {"RedisModule_ReplyWithNull", &RedisModule_ReplyWithNull, 1},
        {"RedisModule_StringPtrLen", &RedisModule_StringPtrLen, 1},
        {"RedisModule_StringToLongLong", &RedisModule_StringToLongLong, 1},
        {"RedisModule_GetContextFlags", &RedisModule_GetContextFlags, 1},
        {"RedisModule_BlockClient", &RedisModule_BlockClient, 1},
        {"RedisModule_UnblockClient", &RedisModule_UnblockClient, 1},
        {"RedisModule_GetBlockedClientPrivateData", &RedisModule_GetBlockedClientPrivateData, 1},
        {"RedisModule_GetBlockedClientHandle", &RedisModule_GetBlockedClientHandle, 1},
        {"RedisModule_SetDisconnectCallback", &RedisModule_SetDisconnectCallback, 1},
        {"RedisModule_SubscribeToServerEvent", &RedisModule_SubscribeToServerEvent, 0},
        {"RedisModule_EventLoopAdd", &RedisModule_EventLoopAdd, 0},
        {"RedisModule_EventLoopDel", &RedisModule_EventLoopDel, 0},
        {"RedisModule_IsModuleNameBusy", &is_module_name_busy, 0},
    };
    get_api_fn get_api;
    size_t i;

    /* The context's first word is the GetApi function. It is stored as data, and
     * ISO C has no cast from a data pointer to a function pointer: copy the bytes. */
    memcpy(&get_api, (const void *)ctx, sizeof get_api);
    for (i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        if (get_api(entries[i].name, entries[i].slot) != REDISMODULE_OK && entries[i].required) {
            if (RedisModule_Log != NULL) {
                RedisModule_Log(ctx, "warning", "%s: this Redis has no %s", name, entries[i].name);
            }
            return REDISMODULE_ERR;
        }
    }
    if (RedisModule_EventLoopAdd == NULL || RedisModule_EventLoopDel == NULL) {
        RedisModule_EventLoopAdd = NULL;
        RedisModule_EventLoopDel = NULL;
    }
    if (is_module_name_busy != NULL && is_module_name_busy(name)) {
        return REDISMODULE_ERR;
    }
    RedisModule_SetModuleAttribs(ctx, name, version, REDISMODULE_APIVER_1);
    return REDISMODULE_OK;
}
