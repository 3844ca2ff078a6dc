/* pool_wait_any: collects every outstanding job exactly once with its own
 * result, answers POOL_ENOJOB at once when nothing is outstanding, accepts a
 * NULL hex_out and refuses a NULL job_out. */
#include "check.h"

#define N 40

int main(void)
{
    pool *p = make_pool(2);
    uint64_t ids[N], got, sentinel = 0xdeadbeef;
    char want[N][POOL_HEX_LEN], hex[POOL_HEX_LEN], msg[32];
    int seen[N] = {0};
    double t;
    size_t i, k;

    /* Nothing submitted yet: POOL_ENOJOB at once, even when asked to wait forever. */
    got = sentinel;
    t = now_seconds();
    CHECK_STATUS(pool_wait_any(p, -1, &got, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait_any(p, 0, &got, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait_any(p, 5000, &got, hex), POOL_ENOJOB);
    CHECK(now_seconds() - t < 1.0);
    CHECK(got == sentinel);

    for (i = 0; i < N; i++) {
        int len = snprintf(msg, sizeof msg, "job %d", (int)i);
        uint64_t iterations = 1 + (i * 7919) % 30000;
        ref_hex(msg, (size_t)len, iterations, want[i]);
        ids[i] = submit(p, msg, (size_t)len, iterations);
    }

    /* A NULL job_out is refused and collects nothing. */
    CHECK_STATUS(pool_wait_any(p, -1, NULL, hex), POOL_EINVAL);
    CHECK_STATUS(pool_wait_any(p, 0, NULL, NULL), POOL_EINVAL);

    for (k = 0; k < N; k++) {
        pool_status st;
        got = 0;
        memset(hex, 'X', sizeof hex);
        st = pool_wait_any(p, LONG_WAIT_MS, &got, k == 3 ? NULL : hex);
        CHECK_STATUS(st, POOL_OK);
        for (i = 0; i < N && ids[i] != got; i++) {
        }
        CHECK(i < N);     /* one of ours */
        CHECK(!seen[i]);  /* exactly once */
        seen[i] = 1;
        if (k != 3)
            CHECK(strcmp(hex, want[i]) == 0);
        /* Collected: neither wait nor cancel knows it any more. */
        CHECK_STATUS(pool_wait(p, got, 0, hex), POOL_ENOJOB);
        CHECK_STATUS(pool_cancel(p, got), POOL_ENOJOB);
    }
    for (i = 0; i < N; i++)
        CHECK(seen[i]);

    /* Everything collected: POOL_ENOJOB at once again, the out-param untouched. */
    got = sentinel;
    t = now_seconds();
    CHECK_STATUS(pool_wait_any(p, -1, &got, hex), POOL_ENOJOB);
    CHECK_STATUS(pool_wait_any(p, 0, &got, NULL), POOL_ENOJOB);
    CHECK(now_seconds() - t < 1.0);
    CHECK(got == sentinel);

    /* A job collected with pool_wait is not offered again by pool_wait_any. */
    ids[0] = submit(p, "a", 1, 10);
    ids[1] = submit(p, "b", 1, 10);
    ref_hex("b", 1, 10, want[1]);
    ref_hex("a", 1, 10, want[0]);
    wait_ok(p, ids[0], want[0]);
    CHECK_OK(pool_wait_any(p, LONG_WAIT_MS, &got, hex));
    CHECK(got == ids[1]);
    CHECK(strcmp(hex, want[1]) == 0);
    CHECK_STATUS(pool_wait_any(p, -1, &got, hex), POOL_ENOJOB);

    CHECK_OK(pool_destroy(p));
    return 0;
}
