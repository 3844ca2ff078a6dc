/* Stdio buffers and atexit handlers belong to the host alone.
 * A child host process, its stdout a pipe (fully buffered), printf()s "partial"
 * without a newline, registers an atexit handler appending a marker to a file,
 * creates a pool, runs jobs, kills workers (respawns, also by SIGSEGV), destroys it
 * and returns from main. The test reads everything written to the pipe: "partial"
 * exactly once, and the marker file holds exactly one line, from the host's pid. */
#include "check.h"

static char marker_path[64];

static void write_marker(void)
{
    char line[64];
    int fd = open(marker_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    int n = snprintf(line, sizeof line, "atexit %d\n", (int)getpid());
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            _exit(2);
        close(fd);
    }
}

static int host_main(int twice)
{
    int i, round;
    pool *p;
    CHECK(atexit(write_marker) == 0);
    printf("partial"); /* stays in the buffer: no newline, stdout is a pipe */
    for (round = 0; round < (twice ? 2 : 1); round++) {
        int32_t pid;
        p = make_pool(2);
        for (i = 0; i < 5; i++)
            CHECK_OK(host_run_job(p, "stdio", 100 + (uint64_t)i, 10000));
        CHECK(worker_pids(p, &pid, 1) >= 1);
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(gone_within(pid, 2000));
        CHECK_OK(host_run_job(p, "after respawn", 7, 10000));
        CHECK(worker_pids(p, &pid, 1) >= 1);
        CHECK(kill(pid, SIGSEGV) == 0);
        CHECK(gone_within(pid, 2000));
        for (i = 0; i < 5; i++)
            CHECK_OK(host_run_job(p, "after segv", 200 + (uint64_t)i, 10000));
        CHECK_OK(pool_destroy(p));
    }
    return 0; /* exit(): flushes "partial" once, runs write_marker once */
}

static void run(int twice)
{
    int out[2], status, count = 0, lines = 0;
    char buf[4096], *at;
    size_t used = 0;
    ssize_t n;
    pid_t host;
    FILE *f;
    snprintf(marker_path, sizeof marker_path, "/tmp/md5pool-atexit-%d", (int)getpid());
    unlink(marker_path);
    CHECK(pipe(out) == 0);
    fflush(stdout);
    host = fork();
    CHECK(host >= 0);
    if (host == 0) {
        CHECK(dup2(out[1], 1) == 1);
        close(out[0]);
        close(out[1]);
        exit(host_main(twice));
    }
    close(out[1]);
    /* Reads to EOF: every copy of the write end (host, fork server, workers) closed. */
    alarm(60);
    while ((n = read(out[0], buf + used, sizeof buf - 1 - used)) != 0) {
        if (n < 0) {
            CHECK(errno == EINTR);
            continue;
        }
        used += (size_t)n;
        CHECK(used < sizeof buf - 1);
    }
    alarm(0);
    buf[used] = '\0';
    close(out[0]);
    CHECK(waitpid(host, &status, 0) == host);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (at = buf; (at = strstr(at, "partial")) != NULL; at++)
        count++;
    if (count != 1 || strcmp(buf, "partial") != 0) {
        fprintf(stderr, "the host's stdout got \"%s\" (\"partial\" %d times), expected "
                        "\"partial\" once\n", buf, count);
        exit(1);
    }
    f = fopen(marker_path, "r");
    CHECK(f != NULL);
    while (fgets(buf, sizeof buf, f)) {
        int who = -1;
        lines++;
        CHECK(sscanf(buf, "atexit %d", &who) == 1);
        if (who != (int)host) {
            fprintf(stderr, "the atexit handler ran in process %d, not the host %d\n", who,
                    (int)host);
            exit(1);
        }
    }
    fclose(f);
    unlink(marker_path);
    if (lines != 1) {
        fprintf(stderr, "the atexit handler ran %d times, expected once\n", lines);
        exit(1);
    }
}

static void one_pool(void) { run(0); }
static void two_pools_one_after_the_other(void) { run(1); }

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(one_pool);
    failed += HOST_SUBTEST(two_pools_one_after_the_other);
    return failed != 0;
}
