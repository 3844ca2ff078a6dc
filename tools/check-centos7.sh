#!/usr/bin/env bash
# check-centos7.sh: will this ELF file load, and this header compile, on
# CentOS/RHEL 7 (glibc 2.17, libgcc_s of gcc 4.8.5, gcc 4.8)?
#
#   tools/check-centos7.sh [-p PREFIX] [-n LIB] [-H HEADER] FILE...
#
# For every FILE (a shared library or a program):
#   - no needed symbol version newer than GLIBC_2.17 or GCC_4.8.0, and no
#     GLIBC_PRIVATE / GLIBC_ABI_* (e.g. GLIBC_ABI_DT_RELR of glibc 2.36);
#   - no strong undefined symbol without a version (the loader of an old
#     glibc refuses such a library: the symbol did not exist in 2.17);
#   - only base-system libraries in DT_NEEDED; no text relocations (SELinux
#     refuses them), no DT_RELR (glibc < 2.36 ignores it), no executable stack;
#   - with -p, a shared library exports nothing but PREFIX* symbols, and a
#     program may import PREFIX* symbols without a version (from -n LIB, the
#     library under test, which has no symbol versions).
# With -H, the header compiles with gcc -std=c89 -pedantic, -std=gnu89 (gcc
# 4.8's default), -std=c99 -pedantic and g++ -std=c++98 -pedantic (all
# -Wall -Wextra -Werror), uses nothing gcc 4.8 lacks (__has_include, ...),
# and declares exactly the functions the first FILE exports.
# Exit status 0 when everything passes, 1 otherwise, 2 on a usage error.
set -u
export LC_ALL=C

GLIBC_MAX=2.17
GCC_MAX=4.8.0
BASE_LIBS=" libc.so.6 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0 libutil.so.1 libgcc_s.so.1 ld-linux-x86-64.so.2 "
prefix="" header=""
while getopts "p:n:H:" opt; do
  case $opt in
    p) prefix=$OPTARG ;;
    n) BASE_LIBS+="$OPTARG " ;;
    H) header=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: check-centos7.sh [-p PREFIX] [-n LIB] [-H HEADER] FILE..." >&2; exit 2; }

failures=0
fail() { echo "check-centos7: FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "check-centos7: ok: $*"; }
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-centos7.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Defined, global function exports of a shared library (without @VERSION).
exported_functions() {
  readelf --dyn-syms -W "$1" | awk '$4 == "FUNC" && ($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" { sub(/@.*/, "", $8); print $8 }' | sort -u
}

check_elf() {
  local file=$1 before=$failures versions undefined needed
  readelf -h "$file" | grep -q 'Machine:.*X86-64' || fail "$file: not an x86-64 ELF file"
  # Needed versions: the "Name: GLIBC_2.14" lines of .gnu.version_r.
  versions=$(readelf -V -W "$file" | sed -n '/\.gnu\.version_r/,$p' | grep -o 'Name: [A-Z_]*[0-9.A-Z_]*' | awk '{ print $2 }' | sort -u)
  for v in $versions; do
    case $v in
      GLIBC_PRIVATE | GLIBC_ABI_*) fail "$file needs $v" ;;
      GLIBC_[0-9]*) newer "${v#GLIBC_}" "$GLIBC_MAX" && fail "$file needs $v (CentOS 7 has glibc $GLIBC_MAX)" ;;
      GCC_[0-9]*) newer "${v#GCC_}" "$GCC_MAX" && fail "$file needs $v (CentOS 7's libgcc_s is gcc 4.8.5's)" ;;
    esac
  done
  undefined=$(readelf --dyn-syms -W "$file" | awk -v p="$prefix" '$7 == "UND" && $5 == "GLOBAL" && $8 != "" && $8 !~ /@/ && (p == "" || index($8, p) != 1) { print $8 }')
  [ -z "$undefined" ] || fail "$file: undefined symbols without a version (not in glibc $GLIBC_MAX?):" $undefined
  needed=$(readelf -d -W "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  for lib in $needed; do
    [[ $BASE_LIBS == *" $lib "* ]] || fail "$file needs $lib, not part of a CentOS 7 base system"
  done
  readelf -d -W "$file" | grep -qE '\(TEXTREL\)|FLAGS.*TEXTREL' && fail "$file has text relocations"
  readelf -d -W "$file" | grep -q '(RELR)' && fail "$file has DT_RELR relocations (glibc >= 2.36)"
  readelf -l -W "$file" | grep 'GNU_STACK' | grep -q 'RWE' && fail "$file wants an executable stack"
  if [ -n "$prefix" ] && readelf -h "$file" | grep -q 'Type:.*DYN (Shared'; then
    local foreign
    foreign=$(readelf --dyn-syms -W "$file" | awk -v p="$prefix" '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $4 != "SECTION" && $4 != "FILE" && $8 != "" { sub(/@.*/, "", $8); if (index($8, p) != 1) print $8 }' | sort -u)
    [ -z "$foreign" ] || fail "$file exports symbols outside $prefix*:" $foreign
  fi
  [ $failures -eq "$before" ] && ok "$file: newest glibc version $(echo "$versions" | grep '^GLIBC_[0-9]' | sort -V | tail -n 1), needs only:" $needed
}

check_header() {
  local hdr=$1 lib=$2 dir base before=$failures
  dir=$(cd "$(dirname "$hdr")" && pwd) base=$(basename "$hdr")
  printf '#include "%s"\n#include "%s"\nint check_centos7_unit;\n' "$base" "$base" >"$tmp/twice.c"
  cp "$tmp/twice.c" "$tmp/twice.cc"
  local flags=(-Wall -Wextra -Werror -I"$dir" -c -o "$tmp/out.o")
  gcc -std=c89 -pedantic "${flags[@]}" "$tmp/twice.c" || fail "$hdr: gcc -std=c89 -pedantic"
  gcc -std=gnu89 "${flags[@]}" "$tmp/twice.c" || fail "$hdr: gcc -std=gnu89"
  gcc -std=c99 -pedantic "${flags[@]}" "$tmp/twice.c" || fail "$hdr: gcc -std=c99 -pedantic"
  g++ -std=c++98 -pedantic "${flags[@]}" "$tmp/twice.cc" || fail "$hdr: g++ -std=c++98 -pedantic"
  for word in __has_include __has_attribute __has_builtin __has_c_attribute _Float16 _Float128 _BitInt; do
    grep -qw "$word" "$hdr" && fail "$hdr uses $word, which gcc 4.8 does not know"
  done
  # What the header declares (gcc -aux-info lists every prototype it saw)
  # must be what the library exports, no more and no less.
  (cd "$tmp" && gcc -std=c99 -I"$dir" -aux-info decls -c twice.c -o aux.o) || fail "$hdr: gcc -aux-info"
  grep -F "/* $dir/$base:" "$tmp/decls" | sed 's@/\*[^*]*\*/@@; s/(.*//' | awk '{ print $NF }' | tr -d '*' | sort -u >"$tmp/declared"
  exported_functions "$lib" >"$tmp/exported"
  if ! cmp -s "$tmp/declared" "$tmp/exported"; then
    fail "$hdr declares other functions than $lib exports:"
    diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' | sed 's/^</    only declared:/; s/^>/    only exported:/'
  fi
  [ $failures -eq "$before" ] && ok "$hdr: C89, GNU89, C99 and C++98 compile; declares the $(wc -l <"$tmp/exported") functions $(basename "$lib") exports"
}

for file in "$@"; do
  [ -f "$file" ] || { fail "$file: no such file"; continue; }
  check_elf "$file"
done
[ -z "$header" ] || check_header "$header" "$1"
[ $failures -eq 0 ] || { echo "check-centos7: $failures failure(s)"; exit 1; }
