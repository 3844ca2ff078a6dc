#!/usr/bin/env bash
# CentOS/RHEL 7 (glibc 2.17, kernel 3.10, gcc 4.8) build, kit and checks; run
# by `make centos7` (mk/centos7.mk), which passes the settings below.
#
#   1. installs ziglang + cargo-zigbuild with pip when they are missing;
#   2. cross-builds the library against glibc 2.17 symbol versions:
#        RUSTFLAGS="-C link-arg=-Wl,-z,defs" \
#          cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.17 \
#                         --target-dir target/centos7
#      (its own target directory: the native build in target/release is never
#      touched; -z defs turns a call to a glibc function newer than 2.17 into a
#      link error instead of an unversioned import);
#   3. checks the .so and include/md5pool.h with tools/check-centos7.sh;
#   4. assembles the kit in build/centos7: lib/ (the .so with its soname links,
#      the .a), include/md5pool.h, bin/hashd (zig cc, glibc 2.17) and, from
#      make, lib/pkgconfig/md5pool.pc;
#   5. builds a C program against the kit with pkg-config, shared and -static,
#      and runs both under enosys-run (every system call newer than Linux 3.10
#      fails with ENOSYS); links it against the .a for glibc 2.17 (zig cc)
#      and checks that program too.
#
# `tests/centos7.sh --deps-only` does step 1 only (make centos7-deps).
# Environment: CARGO, PYTHON (python3), ENOSYS_RUN (the built enosys-run),
# ZIGBUILD_PIP (pip specs), STRIP_ARCHIVE (how make strips the .a).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}
ENOSYS_RUN=${ENOSYS_RUN:-}
STRIP_ARCHIVE=${STRIP_ARCHIVE:-objcopy --strip-debug}
ZIGBUILD_PIP=${ZIGBUILD_PIP:-ziglang cargo-zigbuild}
GLIBC=2.17
TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR=target/centos7
SO=$TARGET_DIR/$TRIPLE/release/libmd5pool.so
ARCHIVE=$TARGET_DIR/$TRIPLE/release/libmd5pool.a
OUT=build/centos7
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOMAJOR=${VERSION%%.*}
HEADER=include/md5pool.h

say() { echo "centos7: $*"; }

# ------------------------------------------------------------ 1. tools
# pip puts cargo-zigbuild in the interpreter's scripts dir (or ~/.local/bin for
# a --user install) and zig inside the ziglang package: put both on PATH so
# that `cargo zigbuild` and cargo-zigbuild's own `zig` lookup find them.
tool_path() {
  local d
  d=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) && PATH="$d:$PATH"
  d=$("$PYTHON" -m site --user-base 2>/dev/null) && PATH="$d/bin:$PATH"
  d=$("$PYTHON" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))' 2>/dev/null) && PATH="$d:$PATH"
  export PATH
  hash -r
}
# (run them: a stale pyenv shim or a broken install must count as missing)
have_tools() { cargo-zigbuild --version >/dev/null 2>&1 && zig version >/dev/null 2>&1; }
tool_path
if ! have_tools; then
  say "installing $ZIGBUILD_PIP (pip)"
  # PEP 668 distributions (Debian 12's own python3) refuse a plain pip install
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PYTHON" -m pip install --quiet $ZIGBUILD_PIP
  tool_path
  have_tools || { say "cargo-zigbuild or zig still not found after pip install"; exit 2; }
fi
say "$(cargo-zigbuild --version 2>/dev/null | head -n 1), zig $(zig version)"
[ "${1:-}" = --deps-only ] && exit 0
: "${ENOSYS_RUN:?the built tools/enosys-run.c}"

# ------------------------------------------------------------ 2. build
# build.rs regenerates the header in this build too: it must come out
# byte-identical to the native build's (make runs `lib` first; header-check
# compares that one with the committed header)
before=$(cksum <"$HEADER" 2>/dev/null || true)
say "cargo zigbuild --release --target $TRIPLE.$GLIBC --target-dir $TARGET_DIR"
RUSTFLAGS="-C link-arg=-Wl,-z,defs" \
  "$CARGO" zigbuild --release --quiet --target "$TRIPLE.$GLIBC" --target-dir "$TARGET_DIR"
if [ "$(cksum <"$HEADER")" != "$before" ]; then
  say "FAIL: the glibc $GLIBC build generated a different $HEADER than the native build"
  exit 1
fi

# ------------------------------------------------------------ 3. check
tools/check-centos7.sh -p pool_ -H "$HEADER" "$SO"

# ------------------------------------------------------------ 4. the kit
mkdir -p "$OUT/lib" "$OUT/include" "$OUT/bin"
rm -f "$OUT"/lib/libmd5pool.so.*   # an older version's
cp -f "$SO" "$OUT/lib/libmd5pool.so.$VERSION"
ln -sf "libmd5pool.so.$VERSION" "$OUT/lib/libmd5pool.so.$SOMAJOR"
ln -sf "libmd5pool.so.$SOMAJOR" "$OUT/lib/libmd5pool.so"
$STRIP_ARCHIVE "$ARCHIVE" "$OUT/lib/libmd5pool.a"
cp -f "$HEADER" "$OUT/include/md5pool.h"
# hashd for the RPM: linked against glibc 2.17 and the kit's .so, no rpath
zig_cc() { zig cc -target x86_64-linux-gnu.$GLIBC "$@"; }
if [ -f c_examples/hashd.c ]; then
  zig_cc -std=c99 -O2 -D_GNU_SOURCE -I"$OUT/include" c_examples/hashd.c -o "$OUT/bin/hashd" \
    -L"$OUT/lib" -lmd5pool
  tools/check-centos7.sh -p pool_ -n "libmd5pool.so.$SOMAJOR" "$OUT/bin/hashd"
fi

# ------------------------------------------------------------ 5. use it
# tests/pkg/app.c, a user's program, in gnu89: gcc 4.8's default dialect
APP=tests/pkg/app.c
SMOKE=build/centos7-smoke
mkdir -p "$SMOKE"
export PKG_CONFIG_PATH=$PWD/$OUT/lib/pkgconfig
# shellcheck disable=SC2046 # pkg-config output is meant to be split
gcc -std=gnu89 -O2 -Wall -Wextra -Werror "$APP" -o "$SMOKE/smoke" \
  $(pkg-config --cflags --libs md5pool) -Wl,-rpath,"$PWD/$OUT/lib"
# the program must load the glibc-2.17 build, not build/lib's native one
ldd "$SMOKE/smoke" | grep "$PWD/$OUT/lib/libmd5pool.so.$SOMAJOR" >/dev/null || { say "FAIL: smoke does not load $OUT/lib"; ldd "$SMOKE/smoke"; exit 1; }
# shellcheck disable=SC2046
gcc -std=gnu89 -O2 -Wall -Wextra -Werror -static "$APP" -o "$SMOKE/smoke-static" \
  $(pkg-config --cflags md5pool) $(pkg-config --static --libs md5pool) 2>"$SMOKE/smoke-static.log" ||
  { cat "$SMOKE/smoke-static.log"; exit 1; }
say "running the glibc $GLIBC build, and the kit's .a linked -static, under enosys-run (syscalls > Linux 3.10 -> ENOSYS)"
timeout -k 5 120 "$ENOSYS_RUN" "$SMOKE/smoke"
timeout -k 5 120 "$ENOSYS_RUN" "$SMOKE/smoke-static"
# a CentOS 7 program linking the .a: every glibc symbol it needs is in 2.17
# (zig's driver, unlike gcc's, adds no unwinder to a C program: -lunwind)
# shellcheck disable=SC2046
zig_cc -std=gnu89 -O2 "$APP" -o "$SMOKE/smoke-a" $(pkg-config --cflags md5pool) \
  "$OUT/lib/libmd5pool.a" $(pkg-config --static --libs-only-l md5pool | sed 's/-lmd5pool//') -lunwind
tools/check-centos7.sh "$SMOKE/smoke-a"
timeout -k 5 120 "$ENOSYS_RUN" "$SMOKE/smoke-a"
say "kit: $(cd "$OUT" && find lib include bin -type f -o -type l | sort | tr '\n' ' ')"
