/* A program a user builds against an installed md5pool: a 2-worker pool
 * computes the contract's known vector. */
#include <stdio.h>
#include <string.h>
#include <md5pool.h>

int main(void)
{
    const char *want = "1e4110cf294414bc2ac346ad274a7af3"; /* "Hello World", 1000000 */
    char hex[POOL_HEX_LEN];
    pool_config cfg;
    pool *p = NULL;
    uint64_t job = 0;
    pool_status st;

    pool_config_init(&cfg);
    cfg.workers = 2;
    if ((st = pool_create(&cfg, &p)) != POOL_OK) {
        fprintf(stderr, "pool_create: %s\n", pool_strerror(st));
        return 1;
    }
    st = pool_submit(p, "Hello World", 11, POOL_DEFAULT_ITERATIONS, &job);
    if (st == POOL_OK)
        st = pool_wait(p, job, 30000, hex);
    if (st != POOL_OK || strcmp(hex, want) != 0) {
        fprintf(stderr, "job: %s %s\n", pool_strerror(st), st == POOL_OK ? hex : "");
        pool_destroy(p);
        return 1;
    }
    if (pool_destroy(p) != POOL_OK)
        return 1;
    printf("md5pool %s: %s\n", pool_version(), hex);
    return 0;
}
