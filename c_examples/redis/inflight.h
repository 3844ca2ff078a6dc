/*
 * The module's book of submitted jobs: which blocked Redis client waits for
 * which md5pool job. Completions arrive by job id (pool_wait_any), disconnects
 * and timeouts by client handle; the book is locked because, in wait-thread
 * mode, completions arrive on the module's own thread.
 */
#ifndef MD5POOL_REDIS_INFLIGHT_H
#define MD5POOL_REDIS_INFLIGHT_H

#include <md5pool.h>
#include <pthread.h>

#include "redis_api.h"

/* One MD5POOL.CHAIN call. Handed to Redis as the blocked client's private data
 * once its job finished, freed by the module when the reply has been sent. */
struct request {
    uint64_t job;
    RedisModuleBlockedClient *client; /* NULL once the client left: the result is dropped */
    pool_status status;
    char hex[POOL_HEX_LEN];
    struct request *next;
};

#define INFLIGHT_BUCKETS 4096 /* a power of two */

struct inflight {
    pthread_mutex_t lock;
    struct request *buckets[INFLIGHT_BUCKETS];
    uint64_t waiting;   /* requests whose client still waits */
    uint64_t abandoned; /* requests whose client left, job not collected yet */
};

/* 0 on success, else an errno value from pthread_mutex_init. */
int inflight_init(struct inflight *book);
/* Releases the mutex; the book must be empty (see inflight_take_all). */
void inflight_destroy(struct inflight *book);
void inflight_lock(struct inflight *book);
void inflight_unlock(struct inflight *book);

/* The following expect the book locked. */
void inflight_add(struct inflight *book, struct request *req);
/* Removes and returns the request for `job`, NULL when there is none. */
struct request *inflight_take(struct inflight *book, uint64_t job);
/* Marks the request of `client` abandoned; returns its job id, 0 when the
 * client has no request (its job finished first). */
uint64_t inflight_abandon(struct inflight *book, const RedisModuleBlockedClient *client);
/* Removes and returns every request as one list linked by `next`. */
struct request *inflight_take_all(struct inflight *book);

#endif
