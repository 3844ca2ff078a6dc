/* Results through the pool equal the in-process kernel: 200 mixed jobs (empty,
 * binary with NUL bytes, 1 MiB, iteration counts from 1 to 200000), the
 * published vectors, and the message copy made by pool_submit. */
#include "check.h"

#define NJOBS 200
#define MIB (1024 * 1024)

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

struct job {
    unsigned char *msg;
    size_t len;
    uint64_t iterations;
    uint64_t id;
    char want[POOL_HEX_LEN];
};

static void published_vectors(pool *p)
{
    char hex[POOL_HEX_LEN];
    uint64_t id;

    CHECK_OK(pool_md5_chain("Hello World", 11, 1, hex));
    CHECK(strcmp(hex, "b10a8db164e0754105b7a99be72e3fe5") == 0);
    id = submit(p, "Hello World", 11, 1);
    wait_ok(p, id, "b10a8db164e0754105b7a99be72e3fe5");

    id = submit(p, "Hello World", 11, POOL_DEFAULT_ITERATIONS);
    CHECK_OK(pool_md5_chain("Hello World", 11, POOL_DEFAULT_ITERATIONS, hex));
    CHECK(strcmp(hex, "1e4110cf294414bc2ac346ad274a7af3") == 0);
    wait_ok(p, id, "1e4110cf294414bc2ac346ad274a7af3");
}

/* The caller may free or overwrite the message as soon as pool_submit returns:
 * with every worker busy the jobs are still queued when that happens. */
static void message_is_copied(void)
{
    static uint64_t huge[4096];
    char want[POOL_HEX_LEN], want_z[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    unsigned char z[4096];
    uint64_t freed, reused;
    size_t len = sizeof z, i, nhuge;
    unsigned char *buf;
    pool *p = make_pool(1);

    nhuge = saturate(p, huge, 4096);

    buf = malloc(len);
    CHECK(buf != NULL);
    for (i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7);
    ref_hex(buf, len, 3, want);
    reused = submit(p, buf, len, 3);
    memset(buf, 0xAA, len); /* overwritten right after submit */
    free(buf);

    memset(z, 'z', len);
    ref_hex(z, len, 3, want_z);
    buf = malloc(len);
    CHECK(buf != NULL);
    memcpy(buf, z, len);
    freed = submit(p, buf, len, 3);
    free(buf); /* freed right after submit */
    CHECK(stats_of(p).jobs_queued >= 3);

    for (i = 0; i < nhuge; i++)
        CHECK_OK(pool_cancel(p, huge[i]));
    wait_ok(p, freed, want_z);
    wait_ok(p, reused, want);
    for (i = 0; i < nhuge; i++)
        CHECK_STATUS(pool_wait(p, huge[i], LONG_WAIT_MS, hex), POOL_ECANCELED);
    CHECK_OK(pool_destroy(p));
}

/* A raised max_message_bytes: an 8 MiB message goes through whole. */
static void big_message(void)
{
    const size_t len = 8 * MIB;
    char want[POOL_HEX_LEN];
    unsigned char *msg = malloc(len + 1);
    pool_config cfg;
    pool *p;
    uint64_t id;
    size_t i;

    CHECK(msg != NULL);
    for (i = 0; i <= len; i++)
        msg[i] = (unsigned char)(i * 31 + (i >> 13));
    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_message_bytes = (uint32_t)len;
    CHECK_OK(pool_create(&cfg, &p));
    ref_hex(msg, len, 2, want);
    id = submit(p, msg, len, 2);
    wait_ok(p, id, want);
    CHECK_STATUS(pool_submit(p, msg, len + 1, 2, &id), POOL_ETOOBIG);
    free(msg);
    CHECK_OK(pool_destroy(p));
}

int main(void)
{
    static struct job jobs[NJOBS];
    pool *p = make_pool(2);
    size_t i;

    published_vectors(p);

    for (i = 0; i < NJOBS; i++) {
        struct job *j = &jobs[i];
        size_t k;
        if (i == 0) {
            j->len = 0; /* empty, NULL pointer */
        } else if (i == 1) {
            j->len = MIB; /* exactly the default max_message_bytes */
        } else if (i % 10 == 2) {
            j->len = 64 + rnd() % 4096;
        } else {
            j->len = rnd() % 80;
        }
        j->msg = j->len ? malloc(j->len) : NULL;
        CHECK(j->len == 0 || j->msg != NULL);
        for (k = 0; k < j->len; k++)
            j->msg[k] = (unsigned char)rnd(); /* binary, NUL bytes included */
        if (j->len > 2)
            j->msg[j->len / 2] = 0;
        j->iterations = (i % 67 == 5) ? 200000 : 1 + rnd() % 20000;
        if (i == 1)
            j->iterations = 3;
        ref_hex(j->msg, j->len, j->iterations, j->want);
        j->id = submit(p, j->msg, j->len, j->iterations);
    }

    /* Collect in an order unrelated to the submission order. */
    for (i = 0; i < NJOBS; i++) {
        struct job *j = &jobs[(i * 37 + 11) % NJOBS];
        wait_ok(p, j->id, j->want);
    }
    for (i = 0; i < NJOBS; i++) {
        uint64_t k;
        for (k = i + 1; k < NJOBS; k++)
            CHECK(jobs[i].id != jobs[k].id);
        free(jobs[i].msg);
    }
    CHECK_OK(pool_destroy(p));

    message_is_copied();
    big_message();
    return 0;
}
