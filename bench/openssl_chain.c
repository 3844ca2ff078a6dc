/*
 * openssl_chain.c: the md5 chain as a plain C loop over OpenSSL's MD5 (the practical
 * scalar limit a C programmer would reach): MD5_Update on the running MD5_CTX, MD5_Final
 * on a struct copy of it, table hex encoding. One measurement per run, one JSON line.
 *
 *   openssl_chain [iterations] [jobs]      defaults: 1000000 1
 *
 * MD5_* are deprecated in OpenSSL 3 but still exported and still what a C programmer
 * reaches for; the bench builds this with -Wno-deprecated-declarations.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/md5.h>
#include <openssl/opensslv.h>

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void md5_chain(const char *input, uint64_t iterations, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    MD5_CTX state, copy;
    unsigned char digest[MD5_DIGEST_LENGTH];
    char msg[33];
    const unsigned char *cur = (const unsigned char *)input;
    size_t len = strlen(input);
    uint64_t k;
    int i;

    MD5_Init(&state);
    for (k = 0; k < iterations; k++) {
        MD5_Update(&state, cur, len);
        copy = state;
        MD5_Final(digest, &copy);
        for (i = 0; i < MD5_DIGEST_LENGTH; i++) {
            msg[2 * i] = digits[digest[i] >> 4];
            msg[2 * i + 1] = digits[digest[i] & 15];
        }
        msg[32] = '\0';
        cur = (const unsigned char *)msg;
        len = 32;
    }
    memcpy(out, msg, 33);
}

int main(int argc, char **argv)
{
    uint64_t iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t jobs = argc > 2 ? strtoull(argv[2], NULL, 10) : 1, j;
    char hex[33];
    double w0, c0, wall, cpu;

    if (iterations == 0 || jobs == 0) {
        fprintf(stderr, "usage: %s [iterations>0] [jobs>0]\n", argv[0]);
        return 2;
    }
    w0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (j = 0; j < jobs; j++)
        md5_chain("Hello World", iterations, hex);
    cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    wall = now(CLOCK_MONOTONIC) - w0;
    printf("{\"mode\":\"openssl\",\"iterations\":%llu,\"jobs\":%llu,\"wall\":%.6f,\"cpu\":%.6f,"
           "\"hex\":\"%s\",\"openssl\":\"%s\"}\n",
           (unsigned long long)iterations, (unsigned long long)jobs, wall, cpu, hex,
           OPENSSL_VERSION_TEXT);
    return 0;
}
