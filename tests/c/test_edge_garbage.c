/* A worker_init that writes into its descriptors (as buggy user code might)
 * puts bytes on the pool's channel ahead of the worker's own frames: 0xff
 * bytes, a pattern, or a header announcing a huge frame. The pool must call
 * that a protocol error, kill the worker and count a failed start, so a job
 * ends with POOL_ESPAWN (or POOL_EWORKER) within seconds, never hangs; the log
 * says why, and pool_destroy leaves no process and no descriptor behind. */
#include <pthread.h>

#include "check.h"

#define JUNK_BYTES 4096

enum junk { JUNK_FF, JUNK_PATTERN, JUNK_HUGE_RESULT, JUNK_HUGE_STARTED };

/* A frame header as the pool lays it out: payload length, kind, two words. */
static size_t fake_header(unsigned char *out, uint32_t len, uint32_t kind)
{
    memset(out, 0, 24);
    memcpy(out, &len, 4);
    memcpy(out + 4, &kind, 4);
    return 24;
}

static void write_junk(void *arg)
{
    unsigned char junk[JUNK_BYTES];
    size_t len = sizeof junk, i;
    int fd;

    switch (*(const enum junk *)arg) {
    case JUNK_FF:
        memset(junk, 0xff, sizeof junk);
        break;
    case JUNK_PATTERN:
        for (i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)(i % 251);
        break;
    case JUNK_HUGE_RESULT:
        len = fake_header(junk, 1u << 30, 3);
        break;
    case JUNK_HUGE_STARTED:
        len = fake_header(junk, 0xfffffff8u, 4);
        break;
    }
    for (fd = 3; fd < 256; fd++)
        if (write(fd, junk, len) < 0)
            continue; /* most are not open: that is the point */
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int protocol_lines;

static void count_protocol_lines(int level, const char *message, void *arg)
{
    (void)level;
    (void)arg;
    pthread_mutex_lock(&log_lock);
    if (strstr(message, "protocol") != NULL)
        protocol_lines++;
    pthread_mutex_unlock(&log_lock);
}

static void run_case(enum junk kind, const char *name)
{
    char got[POOL_HEX_LEN];
    int fds_before = open_fd_count(), lines;
    pool_config cfg;
    pool *p = NULL;
    pool_status status;
    double start;
    uint64_t id;

    pthread_mutex_lock(&log_lock);
    protocol_lines = 0;
    pthread_mutex_unlock(&log_lock);
    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.worker_init = write_junk;
    cfg.worker_init_arg = &kind;
    cfg.log = count_protocol_lines;
    CHECK_OK(pool_create(&cfg, &p));
    start = now_seconds();
    id = submit(p, "x", 1, 1);
    status = pool_wait(p, id, LONG_WAIT_MS, got);
    printf("%-28s %s after %.2f s\n", name, pool_strerror(status), now_seconds() - start);
    CHECK(status == POOL_ESPAWN || status == POOL_EWORKER);
    CHECK(now_seconds() - start < 10.0);
    pthread_mutex_lock(&log_lock);
    lines = protocol_lines;
    pthread_mutex_unlock(&log_lock);
    CHECK(lines > 0);
    CHECK_OK(pool_destroy(p));
    CHECK(children_of(getpid()) == 0);
    CHECK(count_children(getpid(), 1) == 0);
    CHECK(open_fd_count() == fds_before);
}

int main(void)
{
    run_case(JUNK_FF, "0xff bytes");
    run_case(JUNK_PATTERN, "a byte pattern");
    run_case(JUNK_HUGE_RESULT, "a 1 GiB result header");
    run_case(JUNK_HUGE_STARTED, "a 4 GiB start-report header");
    printf("test_edge_garbage: ok\n");
    return 0;
}
