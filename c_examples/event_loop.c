/* event_loop.c: md5pool inside a single-threaded poll() loop, the way a daemon
 * uses it. Nothing here blocks on the pool: pool_fd() is one more descriptor,
 * POOL_EFULL means "keep the request and try again after a collection", and a
 * request nobody wants any more is canceled. c_examples/hashd.c is the same
 * pattern with sockets and epoll.
 * Build: cc -D_GNU_SOURCE event_loop.c $(pkg-config --cflags --libs md5pool) */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <md5pool.h>

#define REQUESTS 20
#define ITERATIONS 200000
#define QUEUE 4            /* small, so that POOL_EFULL happens */
#define ABANDONED 3        /* the request whose client "goes away" */

struct request {
    char msg[32];
    uint64_t job;          /* 0 until submitted */
};

static struct request requests[REQUESTS];
static unsigned times_full;

/* Submits requests, in order, from `next` until the pool is full.
 * Returns the first request not submitted yet, or -1 on an error. */
static int submit_more(pool *p, int next)
{
    for (; next < REQUESTS; next++) {
        struct request *r = &requests[next];
        pool_status st = pool_submit(p, r->msg, strlen(r->msg), ITERATIONS, &r->job);
        if (st == POOL_EFULL) {
            times_full++; /* keep r; pool_fd turns readable when a slot frees */
            return next;
        }
        if (st != POOL_OK) {
            fprintf(stderr, "pool_submit: %s\n", pool_strerror(st));
            return -1;
        }
        if (next == ABANDONED && (st = pool_cancel(p, r->job)) != POOL_OK) {
            fprintf(stderr, "pool_cancel: %s\n", pool_strerror(st));
            return -1;
        }
    }
    return next;
}

static int request_of(uint64_t job)
{
    int i;
    for (i = 0; i < REQUESTS; i++)
        if (requests[i].job == job)
            return i;
    return -1;
}

/* pool_fd is readable: collect every finished job without blocking.
 * Returns how many were collected, or -1 on an error. */
static int collect_finished(pool *p)
{
    int collected = 0;
    for (;;) {
        uint64_t job;
        char hex[POOL_HEX_LEN];
        pool_status st = pool_wait_any(p, 0, &job, hex);
        switch (st) {
        case POOL_ETIMEDOUT: /* nothing more has finished */
        case POOL_ENOJOB:    /* nothing is outstanding */
            return collected;
        case POOL_OK:
            printf("request %d: %s\n", request_of(job), hex);
            break;
        case POOL_ECANCELED:
            printf("request %d: canceled\n", request_of(job));
            break;
        case POOL_EWORKER:
        case POOL_EJOBTIMEOUT:
        case POOL_ESPAWN: /* the job is collected; it failed */
            printf("request %d: %s\n", request_of(job), pool_strerror(st));
            break;
        default: /* the call itself failed: nothing was collected */
            fprintf(stderr, "pool_wait_any: %s\n", pool_strerror(st));
            return -1;
        }
        collected++;
    }
}

int main(void)
{
    pool_config cfg;
    pool *p;
    pool_status st;
    int i, next, collected = 0, ok = 1;

    for (i = 0; i < REQUESTS; i++)
        snprintf(requests[i].msg, sizeof requests[i].msg, "request %d", i);
    pool_config_init(&cfg);
    cfg.workers = 2;
    cfg.queue_capacity = QUEUE;
    if ((st = pool_create(&cfg, &p)) != POOL_OK) {
        fprintf(stderr, "pool_create: %s\n", pool_strerror(st));
        return 1;
    }

    next = submit_more(p, 0);
    while (ok && next >= 0 && collected < REQUESTS) {
        struct pollfd pfd = {pool_fd(p), POLLIN, 0};
        int n = poll(&pfd, 1, 1000); /* a daemon polls its sockets here too */
        if (n < 0 && errno != EINTR) {
            perror("poll");
            ok = 0;
        } else if (n > 0) {
            n = collect_finished(p);
            ok = n >= 0;
            collected += ok ? n : 0;
            next = submit_more(p, next); /* capacity was freed */
        }
    }
    if (next < 0)
        ok = 0;
    printf("%d requests collected, the pool was full %u times\n", collected, times_full);

    if ((st = pool_destroy(p)) != POOL_OK) {
        fprintf(stderr, "pool_destroy: %s\n", pool_strerror(st));
        ok = 0;
    }
    return ok ? 0 : 1;
}
