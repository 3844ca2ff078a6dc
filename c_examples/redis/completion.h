/*
 * How finished jobs reach their Redis clients. Either way, every finished job is
 * collected with pool_wait_any and its client unblocked with
 * RedisModule_UnblockClient; what differs is who notices that jobs finished:
 *   - event loop (Redis >= 7.0): pool_fd is registered in Redis's own event
 *     loop, so Redis's thread collects results between client requests;
 *   - wait thread (any Redis since 4.0): a module thread sleeps in poll() on
 *     pool_fd and unblocks clients from there (UnblockClient is thread-safe).
 */
#ifndef MD5POOL_REDIS_COMPLETION_H
#define MD5POOL_REDIS_COMPLETION_H

#include <md5pool.h>

#include "inflight.h"

enum completion_mode { COMPLETION_EVENT_LOOP, COMPLETION_WAIT_THREAD };

/* Starts delivering the results of `p`'s jobs to the clients booked in `book`.
 * 0 on success, else an errno value. */
int completion_start(enum completion_mode mode, pool *p, struct inflight *book);
/* Stops delivering: afterwards nothing of this module runs outside Redis's calls. */
void completion_stop(void);
const char *completion_mode_name(void);

#endif
