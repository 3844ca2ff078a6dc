/* A library in the host registered a fork handler that, in every child, closes
 * the descriptors it had and opens new ones (libuv's signal pipe does this). The
 * handler runs in the fork server and in each worker as it is forked; it must
 * not close a worker's channel, so the pool still starts its workers and runs
 * jobs. Without the fork server keeping the host's descriptor numbers taken, the
 * channel lands on them and every start fails (POOL_ESPAWN). */
#include "check.h"

#include <fcntl.h>
#include <pthread.h>

#define PIPES 8

static int lib_pipes[PIPES][2];

static void lib_child_handler(void)
{
    int i;
    for (i = 0; i < PIPES; i++) {
        close(lib_pipes[i][0]);
        close(lib_pipes[i][1]);
        if (pipe2(lib_pipes[i], O_CLOEXEC) != 0)
            _exit(1);
    }
}

int main(void)
{
    char want[POOL_HEX_LEN];
    uint64_t id;
    pool *p;
    int round, i;

    /* Low descriptor numbers, as libraries opened at start-up would get: whatever
     * numbers the pool's processes use for their channels, some are among them. */
    for (i = 0; i < PIPES; i++)
        CHECK(pipe2(lib_pipes[i], O_CLOEXEC) == 0);
    CHECK(pthread_atfork(NULL, NULL, lib_child_handler) == 0);
    ref_hex("atfork", 6, 1000, want);
    for (round = 0; round < 3; round++) {
        p = make_pool(2);
        id = submit(p, "atfork", 6, 1000);
        wait_ok(p, id, want);
        CHECK(stats_of(p).worker_restarts == 0);
        CHECK_OK(pool_destroy(p));
    }
    return 0;
}
