#!/usr/bin/env bash
# Checks that the AVX2 engine of the md5 chain kernel contains no AVX-512 instruction.
#
#   tests/check_avx2_no_avx512.sh PATH   (a built binary, test executable, .so or .a that
#                                         contains md5pool's kernel, with its symbols)
#
# Disassembles every function under `kernel::avx2::` and fails if any instruction is
# EVEX-encoded (first byte 0x62, which is invalid in 64-bit mode otherwise) or names a zmm
# register, an opmask register (%k0-%k7), xmm16-31/ymm16-31, or an embedded broadcast.
# Exit status: 0 clean, 1 AVX-512 found, 2 usage error or no AVX2 function found.
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1" ]]; then
    echo "usage: $0 PATH-TO-BINARY-OR-LIBRARY" >&2
    exit 2
fi
bin=$1
command -v objdump >/dev/null || { echo "objdump not found (apt-get install binutils)" >&2; exit 2; }

dis=$(mktemp)
trap 'rm -f "$dis"' EXIT
# Function bodies whose demangled name contains kernel::avx2:: (a blank line ends a body).
objdump -d -C -w "$bin" | awk '
    /^[0-9a-f]+ <.*>:$/ { inside = ($0 ~ /kernel::avx2::/); if (inside) print; next }
    /^$/ { inside = 0; next }
    inside { print }
' >"$dis"

functions=$(grep -c '^[0-9a-f]* <' "$dis" || true)
if [[ "$functions" -eq 0 ]]; then
    echo "no kernel::avx2:: function found in $bin (stripped, or built without the AVX2 engine?)" >&2
    exit 2
fi
instructions=$(grep -c '^ *[0-9a-f]*:' "$dis" || true)

bad=$(grep -E '^ *[0-9a-f]+:\s+62 |%zmm|%k[0-7]\b|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|\{1to[0-9]+\}' "$dis" || true)
if [[ -n "$bad" ]]; then
    echo "AVX-512 instructions in the AVX2 engine of $bin:" >&2
    echo "$bad" | head -20 >&2
    exit 1
fi
echo "ok: $functions AVX2 kernel functions, $instructions instructions, no AVX-512 instruction"
