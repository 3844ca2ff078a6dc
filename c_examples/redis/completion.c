/* Delivery of finished jobs to blocked clients: Redis's event loop or a module thread. */
#include "completion.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    enum completion_mode mode;
    pool *pool;
    struct inflight *book;
    int pool_fd;
    int running;
    pthread_t thread;
    int stop_pipe[2]; /* the wait thread sleeps on pool_fd and the read end */
} delivery = {COMPLETION_EVENT_LOOP, NULL, NULL, -1, 0, 0, {-1, -1}};

/* Statuses with which pool_wait_any hands over a finished job; any other means
 * nothing was collected. */
static int is_job_outcome(pool_status status) {
    switch (status) {
    case POOL_OK:
    case POOL_EWORKER:
    case POOL_EJOBTIMEOUT:
    case POOL_ECANCELED:
    case POOL_ESPAWN:
        return 1;
    default:
        return 0;
    }
}

static void deliver(uint64_t job, pool_status status, const char *hex) {
    struct request *req;

    inflight_lock(delivery.book);
    req = inflight_take(delivery.book, job);
    inflight_unlock(delivery.book);
    if (req == NULL) {
        return; /* a job whose client could not be blocked: canceled at submission */
    }
    if (req->client == NULL) {
        free(req); /* its client left: the job was canceled, its result is dropped */
        return;
    }
    req->status = status;
    if (status == POOL_OK) {
        memcpy(req->hex, hex, POOL_HEX_LEN);
    }
    /* From here the request belongs to Redis: the reply callback reads it and
     * the free-privdata callback frees it, both on Redis's thread. */
    RedisModule_UnblockClient(req->client, req);
}

/* Collects every job that has finished, without waiting for more. */
static void deliver_finished_jobs(void) {
    for (;;) {
        uint64_t job;
        char hex[POOL_HEX_LEN];
        pool_status status = pool_wait_any(delivery.pool, 0, &job, hex);
        if (!is_job_outcome(status)) {
            return; /* POOL_ETIMEDOUT / POOL_ENOJOB: nothing more has finished */
        }
        deliver(job, status, hex);
    }
}

static void on_pool_readable(int fd, void *user_data, int mask) {
    (void)fd;
    (void)user_data;
    (void)mask;
    deliver_finished_jobs();
}

static void *wait_thread_main(void *arg) {
    (void)arg;
    for (;;) {
        struct pollfd fds[2];
        fds[0].fd = delivery.pool_fd;
        fds[0].events = POLLIN;
        fds[1].fd = delivery.stop_pipe[0];
        fds[1].events = POLLIN;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* poll on two valid descriptors fails only without memory for its
             * table: wait a moment rather than spin, then try again. */
            (void)poll(NULL, 0, 10);
            continue;
        }
        if (fds[1].revents != 0) {
            return NULL;
        }
        if (fds[0].revents != 0) {
            deliver_finished_jobs();
        }
    }
}

/* The thread takes no signal: Redis's handlers expect to run on Redis's threads. */
static int start_wait_thread(void) {
    sigset_t all, previous;
    int err;

    if (pipe2(delivery.stop_pipe, O_CLOEXEC) != 0) {
        return errno;
    }
    sigfillset(&all);
    err = pthread_sigmask(SIG_SETMASK, &all, &previous);
    if (err == 0) {
        err = pthread_create(&delivery.thread, NULL, wait_thread_main, NULL);
        (void)pthread_sigmask(SIG_SETMASK, &previous, NULL); /* restores a mask it just read */
    }
    if (err != 0) {
        (void)close(delivery.stop_pipe[0]);
        (void)close(delivery.stop_pipe[1]);
    }
    return err;
}

static void stop_wait_thread(void) {
    ssize_t written;
    do {
        written = write(delivery.stop_pipe[1], "x", 1);
    } while (written < 0 && errno == EINTR);
    /* An empty pipe always takes one byte, so the thread wakes and returns. */
    (void)pthread_join(delivery.thread, NULL);
    (void)close(delivery.stop_pipe[0]);
    (void)close(delivery.stop_pipe[1]);
}

int completion_start(enum completion_mode mode, pool *p, struct inflight *book) {
    int err;

    delivery.mode = mode;
    delivery.pool = p;
    delivery.book = book;
    delivery.pool_fd = pool_fd(p);
    if (delivery.pool_fd < 0) {
        return EBADF;
    }
    if (mode == COMPLETION_WAIT_THREAD) {
        err = start_wait_thread();
    } else if (RedisModule_EventLoopAdd(delivery.pool_fd, REDISMODULE_EVENTLOOP_READABLE, on_pool_readable, NULL) !=
               REDISMODULE_OK) {
        err = errno != 0 ? errno : EINVAL;
    } else {
        err = 0;
    }
    delivery.running = err == 0;
    return err;
}

void completion_stop(void) {
    if (!delivery.running) {
        return;
    }
    if (delivery.mode == COMPLETION_WAIT_THREAD) {
        stop_wait_thread();
    } else {
        (void)RedisModule_EventLoopDel(delivery.pool_fd, REDISMODULE_EVENTLOOP_READABLE);
    }
    delivery.running = 0;
}

const char *completion_mode_name(void) {
    return delivery.mode == COMPLETION_WAIT_THREAD ? "wait_thread" : "event_loop";
}
