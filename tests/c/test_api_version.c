/* The header's version macros against the library loaded at run time: a
 * program compiled with this header and run against this library sees the same
 * version both ways, and POOL_VERSION_NUM is 0xMMmmpp of the three numbers.
 * (tests/version.rs ties both to Cargo.toml.) */
#include "check.h"

#if !defined(POOL_VERSION_NUM) || POOL_VERSION_NUM < 0x010100
#error "md5pool.h older than 1.1.0, or without POOL_VERSION_NUM"
#endif

int main(void)
{
    char from_numbers[32];
    const char *loaded = pool_version();

    CHECK(loaded != NULL);
    CHECK(strcmp(loaded, POOL_VERSION) == 0);
    CHECK(POOL_VERSION_NUM ==
          ((POOL_VERSION_MAJOR << 16) | (POOL_VERSION_MINOR << 8) | POOL_VERSION_PATCH));
    snprintf(from_numbers, sizeof from_numbers, "%d.%d.%d", POOL_VERSION_MAJOR,
             POOL_VERSION_MINOR, POOL_VERSION_PATCH);
    CHECK(strncmp(loaded, from_numbers, strlen(from_numbers)) == 0);
    /* Nothing after the patch number but a pre-release or build suffix. */
    CHECK(loaded[strlen(from_numbers)] == '\0' || loaded[strlen(from_numbers)] == '-' ||
          loaded[strlen(from_numbers)] == '+');
    return 0;
}
