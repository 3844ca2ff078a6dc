# RPM packages for CentOS/RHEL 7 from the glibc 2.17 kit (make centos7):
#   make rpm        build/rpm/RPMS/x86_64/md5pool{,-devel,-hashd}-$(VERSION)-1.el7.x86_64.rpm
#                   (and the source tarball in build/rpm/SOURCES)
#   make test-rpm   what they require, what they hold, and a pkg-config and a
#                   CMake build against them unpacked into a scratch root
# rpmbuild is Debian's `rpm` package; the spec is packaging/md5pool.spec.in.

RPM_TOP   := $(BUILD)/rpm
RPM_DIST  ?= .el7
RPM_SPEC  := $(RPM_TOP)/SPECS/md5pool.spec
RPM_TAR   := $(RPM_TOP)/SOURCES/md5pool-$(VERSION).tar.gz
RPM_DATE   = $(shell git log -1 --format=%cd --date=format:'%a %b %d %Y' 2>/dev/null || date +'%a %b %d %Y')

.PHONY: rpm test-rpm
test: test-rpm

# The tarball holds the tree as it is now (tracked and new files), for a
# packager who builds from source on CentOS 7 itself.
rpm: centos7
	@mkdir -p $(RPM_TOP)/SOURCES $(RPM_TOP)/SPECS
	git ls-files --cached --others --exclude-standard | while read -r f; do [ ! -e "$$f" ] || echo "$$f"; done | \
	  tar -czf $(RPM_TAR) --transform 's|^|md5pool-$(VERSION)/|S' -T -
	sed -e 's|@VERSION@|$(VERSION)|g' -e "s|@DATE@|$(RPM_DATE)|g" packaging/md5pool.spec.in > $(RPM_SPEC)
	@# --nodeps: this host's rpm database is empty (BuildRequires are Debian packages here);
	@# Debian's rpm runs brp-compress, a bash script, with sh: man pages would stay uncompressed
	rpmbuild -bb --quiet --nodeps --define "_topdir $(abspath $(RPM_TOP))" --define "dist $(RPM_DIST)" \
	  --define "kit $(abspath $(CENTOS7))" --define "__brp_compress bash %{_rpmconfigdir}/brp-compress %{_prefix}" \
	  $(RPM_SPEC)

test-rpm: rpm
	RPM_DIR=$(RPM_TOP)/RPMS/x86_64 RELEASE=1$(RPM_DIST) tests/rpm_test.sh
