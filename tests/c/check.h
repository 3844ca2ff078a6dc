/* Tiny test harness shared by the C tests: checks that exit on failure, and
 * helpers that look at processes and descriptors through /proc. */
#ifndef MD5POOL_TEST_CHECK_H
#define MD5POOL_TEST_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <md5pool.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* Checks that `call` returns status `want`, naming both on failure. */
#define CHECK_STATUS(call, want)                                                       \
    do {                                                                               \
        pool_status got_ = (call);                                                     \
        if (got_ != (want)) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, \
                    __LINE__, #call, (int)got_, pool_strerror(got_), (int)(want),      \
                    pool_strerror(want));                                              \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, POOL_OK)

static inline double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline void sleep_ms(long ms)
{
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

/* Descriptors open in this process. */
static inline int open_fd_count(void)
{
    int n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Parent pid of `pid` from /proc/PID/stat, or -1 when it is gone. */
static inline pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *close_paren;
    int ppid = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL)
        sscanf(close_paren + 2, "%*c %d", &ppid);
    fclose(f);
    return (pid_t)ppid;
}

/* Process state letter of `pid` ('Z' zombie, ...), or 0 when it is gone. */
static inline char state_of(pid_t pid)
{
    char path[64], buf[512], *close_paren, st = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL)
        st = close_paren[2];
    fclose(f);
    return st;
}

/* Live (non-zombie) processes whose parent is `parent`. */
static inline int children_of(pid_t parent)
{
    int n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && parent_of(pid) == parent && state_of(pid) != 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/* True once `pid` no longer exists (or is a zombie), polling up to `ms`. */
static inline int gone_within(pid_t pid, long ms)
{
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        char st = state_of(pid);
        if (st == 0 || st == 'Z')
            return 1;
        sleep_ms(5);
    } while (now_seconds() < end);
    return 0;
}

/* A pool with `workers` workers and otherwise default settings. */
static inline pool *make_pool(uint32_t workers)
{
    pool_config cfg;
    pool *p = NULL;
    pool_config_init(&cfg);
    cfg.workers = workers;
    CHECK_OK(pool_create(&cfg, &p));
    CHECK(p != NULL);
    return p;
}

#endif
