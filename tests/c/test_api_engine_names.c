/* What an administrator sees: the fork server and the workers are named
 * md5pool-forksrv and md5pool-worker in ps/top (/proc/PID/comm), also a
 * replacement worker, while the host keeps its own name; and which kernel
 * engine runs, from pool_engine() and from one info line in the log. */
#include <pthread.h>
#include <sys/wait.h>

#include "check.h"

/* /proc/PID/comm without its newline, into name[16]; 0 when it is gone. */
static int comm_of(pid_t pid, char name[16])
{
    char path[64];
    size_t len;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(name, 16, f))
        name[0] = '\0';
    fclose(f);
    len = strlen(name);
    if (len > 0 && name[len - 1] == '\n')
        name[len - 1] = '\0';
    return 1;
}

/* A process just forked names itself a moment later: allow it 2 s. */
static void check_named(pid_t pid, const char *want)
{
    char name[16];
    double end = now_seconds() + 2.0;
    CHECK(comm_of(pid, name));
    while (strcmp(name, want) != 0 && now_seconds() < end) {
        sleep_ms(2);
        CHECK(comm_of(pid, name));
    }
    if (strcmp(name, want) != 0) {
        fprintf(stderr, "process %d is named '%s', expected '%s'\n", (int)pid, name, want);
        exit(1);
    }
}

static void process_names(void)
{
    char host_before[16], host_after[16];
    int32_t pids[2];
    pid_t server;
    pool *p;

    CHECK(comm_of(getpid(), host_before));
    p = make_pool(2);
    CHECK(worker_pids(p, pids, 2) == 2);
    server = parent_of(pids[0]);
    CHECK(server > 0 && server != getpid() && parent_of(pids[1]) == server);
    check_named(server, "md5pool-forksrv");
    check_named(pids[0], "md5pool-worker");
    check_named(pids[1], "md5pool-worker");

    /* A worker forked later, to replace a dead one, is named too. */
    CHECK(kill(pids[0], SIGKILL) == 0);
    CHECK(replaced_within(p, pids[0], 2, LONG_WAIT_MS));
    CHECK(worker_pids(p, pids, 2) == 2);
    check_named(pids[0], "md5pool-worker");
    check_named(pids[1], "md5pool-worker");

    CHECK(comm_of(getpid(), host_after));
    CHECK(strcmp(host_before, host_after) == 0);
    CHECK_OK(pool_destroy(p));
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char engine_line[256];

static void log_fn(int level, const char *message, void *arg)
{
    (void)arg;
    if (level == 2 && strncmp(message, "md5pool: engine ", 16) == 0) {
        CHECK(pthread_mutex_lock(&log_lock) == 0);
        CHECK(engine_line[0] == '\0'); /* said once per pool */
        snprintf(engine_line, sizeof engine_line, "%s", message);
        CHECK(pthread_mutex_unlock(&log_lock) == 0);
    }
}

/* The engine's info line, once the pool's thread has logged it (bounded wait). */
static void logged_engine_line(char *out, size_t size)
{
    double end = now_seconds() + LONG_WAIT_MS / 1000.0;
    for (;;) {
        CHECK(pthread_mutex_lock(&log_lock) == 0);
        snprintf(out, size, "%s", engine_line);
        engine_line[0] = '\0';
        CHECK(pthread_mutex_unlock(&log_lock) == 0);
        if (out[0] != '\0')
            return;
        CHECK(now_seconds() < end);
        sleep_ms(5);
    }
}

/* Creates a pool of `workers` with the log sink above; returns its engine name
 * and the engine line the log got, which must name the same engine. */
static const char *engine_of_new_pool(uint32_t workers, pool **out, char line[256])
{
    pool_config cfg;
    char want[64];
    const char *engine;

    pool_config_init(&cfg);
    cfg.workers = workers;
    cfg.log = log_fn;
    CHECK_OK(pool_create(&cfg, out));
    engine = pool_engine(*out);
    CHECK(engine != NULL);
    CHECK(strcmp(engine, "scalar") == 0 || strcmp(engine, "avx2") == 0 ||
          strcmp(engine, "avx512") == 0);
    logged_engine_line(line, 256);
    snprintf(want, sizeof want, "md5pool: engine %s, ", engine);
    if (strncmp(line, want, strlen(want)) != 0) {
        fprintf(stderr, "pool_engine() is %s, the log said: %s\n", engine, line);
        exit(1);
    }
    return engine;
}

static void engine_reported(void)
{
    char want[POOL_HEX_LEN], line[256];
    const char *engine;
    pid_t child;
    int status;
    pool *p;

    CHECK(pool_engine(NULL) == NULL);
    ref_hex("engine", 6, 1000, want);

    /* Forced to the scalar kernel: one job at a time per worker. */
    CHECK(setenv("MD5POOL_KERNEL", "scalar", 1) == 0);
    engine = engine_of_new_pool(2, &p, line);
    CHECK(strcmp(engine, "scalar") == 0);
    CHECK(strcmp(line, "md5pool: engine scalar, 1 lane per worker, 2 workers") == 0);
    wait_ok(p, submit(p, "engine", 6, 1000), want);
    CHECK_OK(pool_destroy(p));

    /* The CPU's own choice: the same name from the function and the log. */
    CHECK(unsetenv("MD5POOL_KERNEL") == 0);
    engine = engine_of_new_pool(1, &p, line);
    CHECK(strstr(line, " per worker, 1 worker") != NULL);
    wait_ok(p, submit(p, "engine", 6, 1000), want);

    /* A forked child gets NULL, like every call on a copied pool. */
    child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(pool_engine(p) == NULL ? 0 : 1);
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(pool_destroy(p));
    /* A static string: still readable after the pool is gone. */
    CHECK(strlen(engine) >= 4);
    printf("engine on this machine: %s (%s)\n", engine, line);
}

int main(void)
{
    process_names();
    engine_reported();
    return 0;
}
