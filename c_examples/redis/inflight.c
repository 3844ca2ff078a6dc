/* The book of submitted jobs: a hash table by job id under one mutex. */
#include "inflight.h"

#include <string.h>

static struct request **bucket_of(struct inflight *book, uint64_t job) {
    return &book->buckets[job & (INFLIGHT_BUCKETS - 1)];
}

int inflight_init(struct inflight *book) {
    memset(book->buckets, 0, sizeof book->buckets);
    book->waiting = 0;
    book->abandoned = 0;
    return pthread_mutex_init(&book->lock, NULL);
}

void inflight_destroy(struct inflight *book) {
    (void)pthread_mutex_destroy(&book->lock); /* unlocked, so it cannot be EBUSY */
}

/* A default mutex, initialised, locked and unlocked by the same thread in
 * pairs, cannot fail (no EINVAL, EDEADLK or EPERM to report). */
void inflight_lock(struct inflight *book) {
    (void)pthread_mutex_lock(&book->lock);
}

void inflight_unlock(struct inflight *book) {
    (void)pthread_mutex_unlock(&book->lock);
}

void inflight_add(struct inflight *book, struct request *req) {
    struct request **head = bucket_of(book, req->job);
    req->next = *head;
    *head = req;
    book->waiting++;
}

static void count_out(struct inflight *book, const struct request *req) {
    if (req->client != NULL) {
        book->waiting--;
    } else {
        book->abandoned--;
    }
}

struct request *inflight_take(struct inflight *book, uint64_t job) {
    struct request **link;
    for (link = bucket_of(book, job); *link != NULL; link = &(*link)->next) {
        struct request *req = *link;
        if (req->job == job) {
            *link = req->next;
            req->next = NULL;
            count_out(book, req);
            return req;
        }
    }
    return NULL;
}

uint64_t inflight_abandon(struct inflight *book, const RedisModuleBlockedClient *client) {
    size_t i;
    struct request *req;
    /* A scan: clients leave rarely, and the table is keyed for completions. */
    for (i = 0; i < INFLIGHT_BUCKETS; i++) {
        for (req = book->buckets[i]; req != NULL; req = req->next) {
            if (req->client == client) {
                req->client = NULL;
                book->waiting--;
                book->abandoned++;
                return req->job;
            }
        }
    }
    return 0;
}

struct request *inflight_take_all(struct inflight *book) {
    struct request *all = NULL;
    size_t i;
    for (i = 0; i < INFLIGHT_BUCKETS; i++) {
        while (book->buckets[i] != NULL) {
            struct request *req = book->buckets[i];
            book->buckets[i] = req->next;
            req->next = all;
            all = req;
        }
    }
    book->waiting = 0;
    book->abandoned = 0;
    return all;
}
