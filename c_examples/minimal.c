/* minimal.c: the whole life of a pool, every call checked.
 * Build: cc minimal.c $(pkg-config --cflags --libs md5pool)
 * Prints: 1e4110cf294414bc2ac346ad274a7af3 */
#include <stdio.h>
#include <md5pool.h>

int main(void)
{
    pool_config cfg;
    pool *p;
    uint64_t job;
    char hex[POOL_HEX_LEN];
    pool_status st, destroyed;

    pool_config_init(&cfg);
    cfg.workers = 2; /* 0 = one per CPU */
    st = pool_create(&cfg, &p);
    if (st != POOL_OK) {
        fprintf(stderr, "pool_create: %s\n", pool_strerror(st));
        return 1;
    }
    st = pool_submit(p, "Hello World", 11, POOL_DEFAULT_ITERATIONS, &job);
    if (st == POOL_OK)
        st = pool_wait(p, job, -1, hex); /* -1: as long as it takes */
    if (st == POOL_OK)
        printf("%s\n", hex);
    else
        fprintf(stderr, "job: %s\n", pool_strerror(st));

    destroyed = pool_destroy(p); /* stops and reaps the workers */
    if (destroyed != POOL_OK) {
        fprintf(stderr, "pool_destroy: %s\n", pool_strerror(destroyed));
        return 1;
    }
    return st == POOL_OK ? 0 : 1;
}
