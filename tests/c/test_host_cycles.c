/* Create/destroy cycles leak no descriptor and no child process.
 * Usage: test_host_cycles [CYCLES]   (default 1000, or $HOST_CYCLES)
 * Every 10th cycle runs a job; every 50th also kills a worker first. make test also
 * runs it under valgrind with fewer cycles for memory leaks (mk/stress.mk). */
#include "check.h"

int main(int argc, char **argv)
{
    long cycles = 1000, i;
    int baseline;
    double t0 = now_seconds();
    const char *env = getenv("HOST_CYCLES");
    if (argc > 1)
        cycles = atol(argv[1]);
    else if (env)
        cycles = atol(env);
    CHECK(cycles > 0);
    baseline = open_fd_count();
    for (i = 0; i < cycles; i++) {
        pool *p = make_pool(1);
        if (i % 50 == 0) {
            int32_t pid;
            CHECK_OK(host_run_job(p, "warm", 1, 30000));
            CHECK(worker_pids(p, &pid, 1) == 1);
            CHECK(kill(pid, SIGKILL) == 0);
        }
        if (i % 10 == 0)
            CHECK_OK(host_run_job(p, "cycle", 1 + (uint64_t)(i % 7), 30000));
        CHECK_OK(pool_destroy(p));
        if (open_fd_count() != baseline) {
            fprintf(stderr, "cycle %ld: %d descriptors open, %d before the first pool\n", i,
                    open_fd_count(), baseline);
            return 1;
        }
        if (host_all_children(getpid()) != 0) {
            fprintf(stderr, "cycle %ld: %d child processes left after pool_destroy\n", i,
                    host_all_children(getpid()));
            return 1;
        }
    }
    printf("%ld create/destroy cycles: no descriptor or child left  %.2fs\n", cycles,
           now_seconds() - t0);
    return 0;
}
