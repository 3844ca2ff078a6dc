/* Out of memory: with the address space capped a few MiB above what the host
 * uses, submitting in a loop ends in POOL_ENOMEM, never an abort, and the
 * library prints nothing; once the cap is lifted every accepted job can be
 * canceled and collected and a new job runs right. A worker that cannot
 * allocate dies as a worker (its start fails: POOL_ESPAWN), never the host.
 * Each case runs in a child whose stderr is a pipe the parent reads: it must
 * stay empty. */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"

#define HEADROOM (8L << 20)
#define MAX_JOBS 65536 /* the default queue_capacity */

/* Bytes of address space this process uses now. */
static rlim_t address_space_used(void)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    CHECK(fscanf(f, "%lu", &pages) == 1);
    fclose(f);
    return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

static void cap_address_space(rlim_t bytes)
{
    struct rlimit lim;
    CHECK(getrlimit(RLIMIT_AS, &lim) == 0);
    lim.rlim_cur = bytes;
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
}

/* Submits messages of `msg_bytes` under the cap until refused. */
static void host_out_of_memory(size_t msg_bytes)
{
    static uint64_t ids[MAX_JOBS];
    static char msg[1 << 20];
    char want[POOL_HEX_LEN], got[POOL_HEX_LEN];
    size_t accepted = 0, i, canceled = 0;
    pool_status status = POOL_OK;
    pool_stats stats;
    pool *p = make_pool(2);

    memset(msg, 'm', sizeof msg);
    cap_address_space(address_space_used() + HEADROOM);
    /* Long jobs: they stay outstanding while the loop runs. */
    for (;;) {
        uint64_t id;
        status = pool_submit(p, msg, msg_bytes, 1000000, &id);
        if (status != POOL_OK)
            break;
        CHECK(accepted < MAX_JOBS);
        ids[accepted++] = id;
    }
    CHECK(status == POOL_ENOMEM || status == POOL_EFULL);
    /* A daemon would keep going: the pool must stay valid meanwhile. */
    for (i = 0; i < 100; i++) {
        uint64_t id;
        pool_status again = pool_submit(p, msg, msg_bytes, 1, &id);
        CHECK(again == POOL_ENOMEM || again == POOL_EFULL || again == POOL_OK);
        if (again == POOL_OK) {
            CHECK(accepted < MAX_JOBS);
            ids[accepted++] = id;
        }
        CHECK_OK(pool_stats_get(p, &stats));
    }
    sleep_ms(300); /* results come back while memory is short */
    cap_address_space(RLIM_INFINITY);
    printf("%zu jobs of %zu bytes accepted under a cap of %ld MiB more, then %s\n", accepted,
           msg_bytes, HEADROOM >> 20, pool_strerror(status));
    CHECK(accepted > 0);

    for (i = 0; i < accepted; i++) {
        pool_status cancel = pool_cancel(p, ids[i]);
        CHECK(cancel == POOL_OK);
    }
    for (i = 0; i < accepted; i++) {
        status = pool_wait(p, ids[i], LONG_WAIT_MS, got);
        CHECK(status == POOL_ECANCELED);
        canceled++;
    }
    CHECK(canceled == accepted);
    stats = stats_of(p);
    CHECK(stats.jobs_queued == 0 && stats.jobs_running == 0 && stats.jobs_ready == 0);
    CHECK(stats.queued_bytes == 0);

    ref_hex("after", 5, 1000, want);
    wait_ok(p, submit(p, "after", 5, 1000), want);
    CHECK_OK(pool_destroy(p));
}

/* Small messages: the pool's own bookkeeping meets the cap (or the queue fills). */
static void host_out_of_memory_small(void)
{
    host_out_of_memory(16);
}

/* Larger ones: the copies of the messages meet the cap. */
static void host_out_of_memory_large(void)
{
    host_out_of_memory(16384);
}

/* Caps the worker's address space a little above what it uses and, like a
 * leaky initializer, keeps allocating until nothing is left. */
static void exhaust_memory_in_worker(void *arg)
{
    (void)arg;
    cap_address_space(address_space_used() + (1 << 20));
    while (malloc(4096) != NULL) {
    }
}

static void worker_out_of_memory(void)
{
    char got[POOL_HEX_LEN];
    pool_config cfg;
    pool *p = NULL;
    uint64_t id;
    double start;

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.worker_init = exhaust_memory_in_worker;
    CHECK_OK(pool_create(&cfg, &p));
    start = now_seconds();
    id = submit(p, "x", 1, 1);
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, got), POOL_ESPAWN);
    printf("a worker out of memory at start: POOL_ESPAWN after %.2f s\n", now_seconds() - start);
    CHECK(stats_of(p).jobs_failed == 1);
    CHECK_OK(pool_destroy(p));
}

/* Runs `body` in a child with stderr on a pipe; the child must exit 0 and the
 * pipe stay empty. */
static void run_quietly(const char *name, void (*body)(void))
{
    char buf[4096];
    ssize_t n, total = 0;
    int fds[2], status;
    pid_t child;

    CHECK(pipe(fds) == 0);
    fflush(stdout);
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        CHECK(dup2(fds[1], 2) == 2);
        close(fds[0]);
        close(fds[1]);
        body();
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        if (total == 0)
            fprintf(stderr, "%s printed on stderr:\n", name);
        fwrite(buf, 1, (size_t)n, stderr);
        total += n;
    }
    close(fds[0]);
    CHECK(waitpid(child, &status, 0) == child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "%s: child ended with status 0x%x\n", name, status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(total == 0);
}

int main(void)
{
    run_quietly("host out of memory, small messages", host_out_of_memory_small);
    run_quietly("host out of memory, large messages", host_out_of_memory_large);
    run_quietly("worker out of memory", worker_out_of_memory);
    printf("test_edge_memory: ok\n");
    return 0;
}
