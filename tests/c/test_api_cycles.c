/* 100 pool_create/pool_destroy cycles, each running one tiny job: no
 * descriptor, child process or zombie is left behind. */
#include "check.h"

#define CYCLES 100

int main(void)
{
    int fds = open_fd_count();
    char want[POOL_HEX_LEN], msg[32];
    double t = now_seconds();
    int i;

    CHECK(fds > 0);
    CHECK(children_of(getpid()) == 0);
    for (i = 0; i < CYCLES; i++) {
        int len = snprintf(msg, sizeof msg, "cycle %d", i);
        pool *p = make_pool(2);
        uint64_t id = submit(p, msg, (size_t)len, 100);
        ref_hex(msg, (size_t)len, 100, want);
        wait_ok(p, id, want);
        CHECK(children_of(getpid()) == 1); /* the fork server */
        CHECK_OK(pool_destroy(p));
        CHECK(children_of(getpid()) == 0);
        CHECK(zombies_of(getpid()) == 0);
        CHECK(open_fd_count() == fds);
    }
    fprintf(stderr, "%d cycles in %.2f s\n", CYCLES, now_seconds() - t);
    return 0;
}
