#!/usr/bin/env bash
# Builds tests/pkg/app.c against an installed md5pool the ways a user does,
# and runs each program:
#   pkg-config: shared, the .a in a dynamic program, and fully -static;
#   CMake: find_package(md5pool MAJOR.MINOR) with md5pool::md5pool and
#   md5pool::md5pool_static; find_package(md5pool NEXT-MAJOR) must fail.
#
#   tests/pkg/use_installed.sh ROOT PREFIX LIBDIR WORKDIR
# ROOT is "" for a real install, or the scratch root the files were unpacked
# into (then PREFIX and LIBDIR are the paths inside it, e.g. /usr /usr/lib64).
set -euo pipefail
root=$1 prefix=$2 libdir=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
fail() { echo "use_installed: FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -n 1)
major=${version%%.*} minor=${version#*.} minor=${minor%%.*}
mkdir -p "$work"

export PKG_CONFIG_LIBDIR=$root$libdir/pkgconfig
if [ -n "$root" ]; then export PKG_CONFIG_SYSROOT_DIR=$root; else unset PKG_CONFIG_SYSROOT_DIR; fi
unset PKG_CONFIG_PATH
[ "$(pkg-config --modversion md5pool)" = "$version" ] || fail "pkg-config --modversion: $(pkg-config --modversion md5pool)"
run() { LD_LIBRARY_PATH=$root$libdir "$@" >"$work/out" 2>&1 || { cat "$work/out"; fail "$* failed"; }; }

# shellcheck disable=SC2046 # pkg-config output is meant to be split
$CC -std=c99 -Wall -Wextra -Werror -o "$work/pc_shared" "$here/app.c" $(pkg-config --cflags --libs md5pool)
readelf -d "$work/pc_shared" | grep 'NEEDED.*libmd5pool.so.'"$major" >/dev/null || fail "pc_shared does not need libmd5pool.so.$major"
run "$work/pc_shared"
# -lmd5pool would pick the .so when both are installed: name the archive
# shellcheck disable=SC2046
$CC -std=c99 -Wall -Wextra -Werror -o "$work/pc_archive" "$here/app.c" $(pkg-config --cflags md5pool) \
    $(pkg-config --static --libs md5pool | sed 's/-lmd5pool\b/-l:libmd5pool.a/')
! readelf -d "$work/pc_archive" | grep 'NEEDED.*libmd5pool' >/dev/null || fail "pc_archive still needs libmd5pool.so"
run env -u LD_LIBRARY_PATH "$work/pc_archive"
# shellcheck disable=SC2046
$CC -static -o "$work/pc_static" "$here/app.c" $(pkg-config --cflags md5pool) $(pkg-config --static --libs md5pool) \
    2>"$work/static.log" || { cat "$work/static.log"; fail "cc -static with pkg-config --static did not link"; }
readelf -d "$work/pc_static" 2>/dev/null | grep NEEDED >/dev/null && fail "pc_static is not static"
run "$work/pc_static"

# Debian's CMake does not search lib64 (CentOS's does): name the directory then.
cmake_dir=()
[ "${libdir##*/}" != lib64 ] || cmake_dir=(-Dmd5pool_DIR="$root$libdir/cmake/md5pool")
cmake_build() { # build dir, requested version
  rm -rf "$1"
  cmake -S "$here" -B "$1" -DCMAKE_PREFIX_PATH="$root$prefix" "${cmake_dir[@]}" -DMD5POOL_VERSION="$2" \
        -DCMAKE_C_COMPILER="$CC" >"$1.log" 2>&1 &&
    cmake --build "$1" >>"$1.log" 2>&1
}
cmake_build "$work/cmake" "$major.$minor" || { cat "$work/cmake.log"; fail "CMake project with find_package(md5pool $major.$minor)"; }
run "$work/cmake/app_shared"
! readelf -d "$work/cmake/app_static" | grep 'NEEDED.*libmd5pool' >/dev/null || fail "CMake app_static needs libmd5pool.so"
run env -u LD_LIBRARY_PATH "$work/cmake/app_static"
if cmake_build "$work/cmake_next" "$((major + 1)).0"; then fail "find_package(md5pool $((major + 1)).0) accepted $version"; fi
echo "use_installed: ok (pkg-config shared, archive, -static; CMake md5pool::md5pool and md5pool_static; $((major + 1)).0 refused)"
