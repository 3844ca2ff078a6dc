#!/usr/bin/env bash
# `make install` into a temp prefix, then build C programs against it with
# pkg-config and CMake (tests/pkg/use_installed.sh); `make uninstall` removes
# every file again. Also: install never runs cargo, says "run make first"
# without a build, `make` without cargo says to install Rust, DESTDIR staging.
# Run by `make test-install`.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/md5pool-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}

# `make test-install` has just built the library and hashd; install must copy
# exactly that: with a cargo that does not exist, as root without Rust.
MAKE="$MAKE -s --no-print-directory CARGO=$tmp/no-cargo"
prefix=$tmp/prefix
$MAKE install PREFIX="$prefix" >/dev/null

# --- the files, the links, what the tree has besides the library
lib=$prefix/lib
[ -f "$lib/libmd5pool.so.$version" ] && [ ! -L "$lib/libmd5pool.so.$version" ] || fail "libmd5pool.so.$version missing"
[ "$(readlink "$lib/libmd5pool.so.$major")" = "libmd5pool.so.$version" ] || fail "libmd5pool.so.$major is not a link to libmd5pool.so.$version"
[ "$(readlink "$lib/libmd5pool.so")" = "libmd5pool.so.$major" ] || fail "libmd5pool.so is not a link to libmd5pool.so.$major"
for f in lib/libmd5pool.a include/md5pool.h lib/pkgconfig/md5pool.pc \
         lib/cmake/md5pool/md5poolConfig.cmake lib/cmake/md5pool/md5poolConfigVersion.cmake sbin/hashd; do
  [ -f "$prefix/$f" ] || fail "$f missing"
done
cmp -s include/md5pool.h "$prefix/include/md5pool.h" || fail "installed header differs"
nm -g "$lib/libmd5pool.a" 2>&1 | grep ' T pool_create$' >/dev/null || fail "binutils nm sees no pool_create in libmd5pool.a"
for page in man/*.[378]; do
  [ -f "$page" ] || continue
  [ -f "$prefix/share/man/man${page##*.}/$(basename "$page")" ] || fail "$page not installed"
done
if [ -f c_examples/hashd.service ]; then
  unit=$prefix/lib/systemd/system/hashd.service
  [ -f "$unit" ] || fail "hashd.service not installed"
  ! grep -q '/usr/sbin/hashd' "$unit" || fail "hashd.service still runs /usr/sbin/hashd, not $prefix/sbin/hashd"
fi
# the installed hashd finds the library installed beside it, not the build tree's
runpath=$(readelf -d "$prefix/sbin/hashd" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p')
[ "$runpath" = '$ORIGIN/../lib' ] || fail "hashd's run path is '$runpath'"
env -u LD_LIBRARY_PATH ldd "$prefix/sbin/hashd" | grep "=> $prefix/sbin/../lib/libmd5pool.so.$major" >/dev/null ||
  fail "installed hashd does not load $lib: $(ldd "$prefix/sbin/hashd" | grep md5pool)"
[ "$(pkg-config --with-path="$lib/pkgconfig" --variable=libdir md5pool)" = "$lib" ] || fail "md5pool.pc libdir"

tests/pkg/use_installed.sh "" "$prefix" "$prefix/lib" "$tmp/use"

# --- uninstall leaves none of our files
$MAKE uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "left after uninstall: $left"

# --- DESTDIR: files land under it, paths inside do not mention it
stage=$tmp/stage
$MAKE install DESTDIR="$stage" PREFIX=/opt/md5pool >/dev/null
[ -f "$stage/opt/md5pool/lib/libmd5pool.so.$version" ] || fail "DESTDIR install: .so missing"
grep -q '^prefix=/opt/md5pool$' "$stage/opt/md5pool/lib/pkgconfig/md5pool.pc" || fail "DESTDIR leaked into md5pool.pc"
! grep -rq "$stage" "$stage/opt/md5pool/lib/pkgconfig" "$stage/opt/md5pool/lib/cmake" || fail "DESTDIR leaked into md5pool.pc or the CMake files"
$MAKE uninstall DESTDIR="$stage" PREFIX=/opt/md5pool >/dev/null
left=$(find "$stage" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "left after DESTDIR uninstall: $left"

# --- the two one-line answers: nothing built yet, and no cargo
out=$($MAKE install PREFIX="$prefix" KIT="$tmp/empty" 2>&1) && fail "install without a build succeeded"
[ "$(wc -l <<<"$out")" = 1 ] && grep -q "no $tmp/empty/lib/libmd5pool.so.$version: run make first" <<<"$out" ||
  fail "install without a build said: $out"
out=$($MAKE lib 2>&1) && fail "make lib without cargo succeeded"
[ "$(wc -l <<<"$out")" = 1 ] && grep -q "no-cargo not found: install Rust with rustup" <<<"$out" ||
  fail "make lib without cargo said: $out"

echo "install_test: ok (install without cargo, man pages, unit, hashd run path, pkg-config + CMake builds ran, uninstall, DESTDIR, messages)"
