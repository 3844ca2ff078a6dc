#!/usr/bin/env bash
# `make install` into a temp prefix, then build a C program against it with
# pkg-config, linked shared and static, and run both; `make uninstall` removes
# every file again. Also checks DESTDIR staging. Run by `make test-install`.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/md5pool-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

# `make test-install` has just built the library: install exactly that, without
# another cargo run (CARGO=true), which a concurrent source edit would turn into
# a rebuild.
[ -f target/release/libmd5pool.so ] && [ -f target/release/libmd5pool.a ] || $MAKE -s lib
MAKE="$MAKE CARGO=true"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
prefix=$tmp/prefix
$MAKE -s --no-print-directory install PREFIX="$prefix" >/dev/null

# --- the files, the links and the .pc
lib=$prefix/lib
[ -f "$lib/libmd5pool.so.$version" ] && [ ! -L "$lib/libmd5pool.so.$version" ] || fail "libmd5pool.so.$version missing"
[ "$(readlink "$lib/libmd5pool.so.1")" = libmd5pool.so.$version ] || fail "libmd5pool.so.1 is not a link to libmd5pool.so.$version"
[ "$(readlink "$lib/libmd5pool.so")" = libmd5pool.so.1 ] || fail "libmd5pool.so is not a link to libmd5pool.so.1"
[ -f "$lib/libmd5pool.a" ] || fail "libmd5pool.a missing"
[ -f "$prefix/include/md5pool.h" ] || fail "include/md5pool.h missing"
[ -f "$lib/pkgconfig/md5pool.pc" ] || fail "lib/pkgconfig/md5pool.pc missing"
cmp -s include/md5pool.h "$prefix/include/md5pool.h" || fail "installed header differs"

export PKG_CONFIG_PATH=$lib/pkgconfig
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ "$(pkg-config --modversion md5pool)" = "$version" ] || fail "pkg-config --modversion: $(pkg-config --modversion md5pool)"
[ "$(pkg-config --variable=libdir md5pool)" = "$lib" ] || fail "pkg-config libdir: $(pkg-config --variable=libdir md5pool)"

# --- a small program: a 2-worker pool computes the contract's known vector
cat > "$tmp/app.c" <<'C'
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
C

# Shared, found through LD_LIBRARY_PATH ...
# shellcheck disable=SC2046 # pkg-config output is meant to be split
$CC -std=c99 -Wall -Wextra -Werror -o "$tmp/app_shared" "$tmp/app.c" $(pkg-config --cflags --libs md5pool)
ldd_out=$(LD_LIBRARY_PATH=$lib ldd "$tmp/app_shared")
grep -q "libmd5pool.so.1 => $lib/libmd5pool.so.1" <<<"$ldd_out" || fail "app_shared does not resolve the installed .so: $ldd_out"
LD_LIBRARY_PATH=$lib "$tmp/app_shared" || fail "app_shared failed"
# ... and through an rpath.
# shellcheck disable=SC2046
$CC -std=c99 -Wall -Wextra -Werror -o "$tmp/app_rpath" "$tmp/app.c" $(pkg-config --cflags --libs md5pool) \
    -Wl,-rpath,"$(pkg-config --variable=libdir md5pool)"
"$tmp/app_rpath" || fail "app_rpath failed"

# Static: `pkg-config --static` adds Libs.private; -lmd5pool would pick the .so
# when both are installed, so ask the linker for the archive by name.
static_libs=$(pkg-config --static --libs md5pool | sed 's/-lmd5pool\b/-l:libmd5pool.a/')
# shellcheck disable=SC2086
$CC -std=c99 -Wall -Wextra -Werror -o "$tmp/app_static" "$tmp/app.c" $(pkg-config --cflags md5pool) $static_libs
if readelf -d "$tmp/app_static" | grep -q 'NEEDED.*libmd5pool' || ldd "$tmp/app_static" | grep -q libmd5pool; then
    fail "app_static still needs libmd5pool.so"
fi
env -u LD_LIBRARY_PATH "$tmp/app_static" || fail "app_static failed"

# --- uninstall leaves none of our files
$MAKE -s --no-print-directory uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "left after uninstall: $left"

# --- DESTDIR: files land under it, paths inside do not mention it
stage=$tmp/stage
$MAKE -s --no-print-directory install DESTDIR="$stage" PREFIX=/opt/md5pool >/dev/null
[ -f "$stage/opt/md5pool/lib/libmd5pool.so.$version" ] || fail "DESTDIR install: .so missing"
grep -q '^prefix=/opt/md5pool$' "$stage/opt/md5pool/lib/pkgconfig/md5pool.pc" || fail "DESTDIR leaked into md5pool.pc"
! grep -q "$stage" "$stage/opt/md5pool/lib/pkgconfig/md5pool.pc" || fail "DESTDIR leaked into md5pool.pc"
$MAKE -s --no-print-directory uninstall DESTDIR="$stage" PREFIX=/opt/md5pool >/dev/null
left=$(find "$stage" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "left after DESTDIR uninstall: $left"

echo "install_test: ok (install, pkg-config shared + rpath + static builds ran, uninstall, DESTDIR)"
