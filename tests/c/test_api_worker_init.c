/* worker_init runs once in every worker, before its first job, with its
 * argument; the log callback hears about a killed worker; a worker_init that
 * dies makes the pool "unable to start workers" (POOL_ESPAWN) until it works
 * again. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "check.h"

struct init_arg {
    char path[64];     /* where each worker appends its pid */
    int host_fd;       /* a descriptor of the host, inherited without CLOEXEC */
    char fail_if[64];  /* die in worker_init while this file exists */
    long sleep_ms;
};

/* Runs in the worker: opens its own descriptor (inherited ones are closed). */
static void init_worker(void *arg)
{
    const struct init_arg *a = arg;
    char line[32];
    int fd, len;

    /* The worker has closed what it inherited. */
    if (a->host_fd >= 0 && fcntl(a->host_fd, F_GETFD) != -1)
        _exit(6);
    if (a->fail_if[0] && access(a->fail_if, F_OK) == 0)
        _exit(3);
    if (a->sleep_ms)
        sleep_ms(a->sleep_ms);
    fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(4);
    len = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (write(fd, line, (size_t)len) != len)
        _exit(5);
    close(fd);
}

/* The pids in the file, up to cap; returns how many lines. */
static int read_pids(const char *path, int32_t *pids, int cap)
{
    FILE *f = fopen(path, "r");
    int n = 0, pid;
    if (!f)
        return 0;
    while (fscanf(f, "%d", &pid) == 1) {
        if (n < cap)
            pids[n] = pid;
        n++;
    }
    fclose(f);
    return n;
}

static int lines_within(const char *path, int n, long ms)
{
    int32_t pids[16];
    double end = now_seconds() + (double)ms / 1000.0;
    do {
        if (read_pids(path, pids, 16) >= n)
            return 1;
        sleep_ms(5);
    } while (now_seconds() < end);
    return 0;
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_count;
static pthread_t main_thread;

/* Called from the library's threads, never from ours. */
static void log_fn(int level, const char *message, void *arg)
{
    CHECK(arg == (void *)&log_count);
    CHECK(message != NULL && level >= 0 && level <= 2);
    CHECK(!pthread_equal(pthread_self(), main_thread));
    pthread_mutex_lock(&log_lock);
    log_count++;
    pthread_mutex_unlock(&log_lock);
}

static int logged(void)
{
    int n;
    pthread_mutex_lock(&log_lock);
    n = log_count;
    pthread_mutex_unlock(&log_lock);
    return n;
}

static void once_per_worker(void)
{
    struct init_arg a;
    pool_config cfg;
    pool *p;
    int32_t pids[2], lines[16];
    char want[POOL_HEX_LEN];
    uint64_t ids[8];
    double t0;
    int i, k, n, before, pipe_fds[2];

    memset(&a, 0, sizeof a);
    snprintf(a.path, sizeof a.path, "/tmp/md5pool_init_%d", (int)getpid());
    unlink(a.path);
    a.sleep_ms = 300;
    CHECK(pipe(pipe_fds) == 0); /* no O_CLOEXEC: a careless host's descriptor */
    a.host_fd = pipe_fds[1];

    pool_config_init(&cfg);
    cfg.workers = 2;
    cfg.worker_init = init_worker;
    cfg.worker_init_arg = &a;
    cfg.log = log_fn;
    cfg.log_arg = &log_count;
    t0 = now_seconds();
    CHECK_OK(pool_create(&cfg, &p));

    /* Jobs wait for worker_init (which sleeps 300 ms) before they run. */
    ref_hex("init", 4, 10, want);
    ids[0] = submit(p, "init", 4, 10);
    wait_ok(p, ids[0], want);
    CHECK(now_seconds() - t0 >= 0.29);
    CHECK(read_pids(a.path, lines, 16) >= 1);

    for (i = 1; i < 8; i++)
        ids[i] = submit(p, "init", 4, 10);
    for (i = 1; i < 8; i++)
        wait_ok(p, ids[i], want);
    CHECK(lines_within(a.path, 2, 5000));
    sleep_ms(50);

    /* Exactly once per worker, each line a current worker's pid. */
    n = read_pids(a.path, lines, 16);
    CHECK(n == 2);
    CHECK(worker_pids(p, pids, 2) == 2);
    CHECK(lines[0] != lines[1]);
    for (i = 0; i < n; i++)
        CHECK(lines[i] == pids[0] || lines[i] == pids[1]);

    /* A killed worker is logged and replaced; the new one runs worker_init once. */
    before = logged();
    CHECK(kill(pids[0], SIGKILL) == 0);
    CHECK(replaced_within(p, pids[0], 2, 5000));
    CHECK(lines_within(a.path, 3, 5000));
    ids[0] = submit(p, "init", 4, 10);
    wait_ok(p, ids[0], want);
    for (i = 0; i < 200 && logged() == before; i++)
        sleep_ms(10);
    CHECK(logged() > before);
    n = read_pids(a.path, lines, 16);
    CHECK(n == 3);
    CHECK(worker_pids(p, pids, 2) == 2);
    for (k = 0; k < 2; k++) {
        int found = 0;
        for (i = 0; i < n; i++)
            found += lines[i] == pids[k];
        CHECK(found == 1);
    }
    CHECK_OK(pool_destroy(p));
    CHECK(unlink(a.path) == 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* worker_init dies while a flag file exists: after 5 failed starts queued jobs
 * finish with POOL_ESPAWN and pool_submit returns POOL_ESPAWN; once the flag is
 * gone a worker starts (within ~5 s) and jobs run again. */
static void failing_init(void)
{
    struct init_arg a;
    pool_config cfg;
    pool *p;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    uint64_t id, dummy = 77;
    pool_status st = POOL_OK;
    double end;
    int fd;

    memset(&a, 0, sizeof a);
    a.host_fd = -1;
    snprintf(a.path, sizeof a.path, "/tmp/md5pool_init_ok_%d", (int)getpid());
    snprintf(a.fail_if, sizeof a.fail_if, "/tmp/md5pool_init_fail_%d", (int)getpid());
    fd = open(a.fail_if, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);

    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.worker_init = init_worker;
    cfg.worker_init_arg = &a;
    CHECK_OK(pool_create(&cfg, &p));
    id = submit(p, "x", 1, 10);
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_ESPAWN);
    CHECK_STATUS(pool_submit(p, "x", 1, 10, &dummy), POOL_ESPAWN);
    CHECK(dummy == 77);

    CHECK(unlink(a.fail_if) == 0);
    end = now_seconds() + 15.0;
    while (now_seconds() < end) {
        st = pool_submit(p, "x", 1, 10, &id);
        if (st != POOL_ESPAWN)
            break;
        sleep_ms(50);
    }
    CHECK_OK(st);
    ref_hex("x", 1, 10, want);
    wait_ok(p, id, want);
    CHECK(stats_of(p).workers_alive == 1);
    CHECK_OK(pool_destroy(p));
    unlink(a.path);
}

int main(void)
{
    main_thread = pthread_self();
    once_per_worker();
    failing_init();
    return 0;
}
