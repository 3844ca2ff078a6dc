#!/usr/bin/env bash
# The RPMs of `make rpm`: what they require (nothing newer than GLIBC_2.17,
# no rpmlib feature CentOS 7's rpm 4.11 lacks, -devel and -hashd the exact
# md5pool version-release), what they hold, their ldconfig scriptlets; then
# all three unpacked into a scratch root (rpm2cpio | cpio), where
# tests/pkg/use_installed.sh builds and runs programs with pkg-config and CMake.
# Run by `make test-rpm` with RPM_DIR (the .rpm files) and RELEASE (1.el7).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RPM_DIR:?}" "${RELEASE:?}"
RPM_DIR=$(cd "$RPM_DIR" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/md5pool-rpm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "rpm_test: FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }
# rpmlib() features rpm 4.11 (CentOS 7) knows
EL7_RPMLIB=" CompressedFileNames PayloadFilesHavePrefix FileDigests PayloadIsXz PayloadIsLzma PayloadIsBzip2 PartialHardlinkSets VersionedDependencies ScriptletInterpreterArgs ExplicitPackageProvide HeaderLoadSortsTags FileCaps ScriptletExpansion RichDependencies "

for name in md5pool md5pool-devel md5pool-hashd; do
  rpm=$RPM_DIR/$name-$version-$RELEASE.x86_64.rpm
  [ -f "$rpm" ] || fail "$rpm missing"
  rpm -qp --requires "$rpm" 2>/dev/null >"$tmp/$name.requires"
  rpm -qpl "$rpm" 2>/dev/null >"$tmp/$name.files"
  for v in $(grep -o 'GLIBC_[0-9.]*' "$tmp/$name.requires" | sed 's/GLIBC_//' | sort -u); do
    newer "$v" 2.17 && fail "$name requires GLIBC_$v"
  done
  for feature in $(sed -n 's/^rpmlib(\([A-Za-z0-9]*\)).*/\1/p' "$tmp/$name.requires"); do
    [[ $EL7_RPMLIB == *" $feature "* ]] || fail "$name requires rpmlib($feature), unknown to CentOS 7's rpm"
  done
done
grep -q 'libc.so.6(GLIBC_' "$tmp/md5pool.requires" || fail "md5pool requires no versioned glibc symbol: was it scanned?"
for name in md5pool-devel md5pool-hashd; do
  grep -qx "md5pool(x86-64) = $version-$RELEASE" "$tmp/$name.requires" || fail "$name does not require md5pool(x86-64) = $version-$RELEASE"
done
rpm -qp --scripts "$RPM_DIR/md5pool-$version-$RELEASE.x86_64.rpm" 2>/dev/null | grep '/sbin/ldconfig' >/dev/null || fail "md5pool has no ldconfig scriptlets"

has() { grep -qx "$2" "$tmp/$1.files" || fail "$1 does not hold $2"; }
has md5pool "/usr/lib64/libmd5pool.so.$version"
has md5pool "/usr/lib64/libmd5pool.so.$major"
grep -q '/README.md$' "$tmp/md5pool.files" || fail "md5pool has no README.md (%doc)"
[ ! -f LICENSE ] || grep -q '/licenses/.*/LICENSE$' "$tmp/md5pool.files" || fail "md5pool has no LICENSE (%license)"
for f in /usr/include/md5pool.h /usr/lib64/libmd5pool.so /usr/lib64/libmd5pool.a /usr/lib64/pkgconfig/md5pool.pc \
         /usr/lib64/cmake/md5pool/md5poolConfig.cmake /usr/lib64/cmake/md5pool/md5poolConfigVersion.cmake; do
  has md5pool-devel "$f"
done
has md5pool-hashd /usr/sbin/hashd
[ ! -f c_examples/hashd.service ] || has md5pool-hashd /usr/lib/systemd/system/hashd.service
for page in man/*.[378]; do
  [ -f "$page" ] || continue
  section=${page##*.} package=md5pool-devel
  [ "$section" = 8 ] && package=md5pool-hashd
  grep -q "^/usr/share/man/man$section/$(basename "$page")" "$tmp/$package.files" || fail "$package does not hold $page"
done

root=$tmp/root
mkdir -p "$root"
for rpm in "$RPM_DIR"/md5pool*-"$version-$RELEASE".x86_64.rpm; do
  (cd "$root" && rpm2cpio "$rpm" | cpio -idm --quiet)
done
LD_LIBRARY_PATH=$root/usr/lib64 ldd "$root/usr/sbin/hashd" | grep "$root/usr/lib64/libmd5pool.so.$major" >/dev/null ||
  fail "the packaged hashd does not load the packaged library"
tests/pkg/use_installed.sh "$root" /usr /usr/lib64 "$tmp/use"
echo "rpm_test: ok (3 RPMs: requires <= GLIBC_2.17, EL7 rpmlib, exact -devel/-hashd requires, files, scratch-root builds ran)"
