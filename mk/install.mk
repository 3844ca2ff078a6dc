# make install / uninstall, the pkg-config file, and their tests.
#   make install   PREFIX=/usr/local [DESTDIR=/staging]   (also libdir=, includedir=, pkgconfigdir=)
#   make uninstall PREFIX=/usr/local [DESTDIR=/staging]
#   make test-install   install into a temp prefix, build a program shared and static via pkg-config
#   make test-abi       the .so exports only pool_* and its soname is libmd5pool.so.<major>
#
# Lower-case directory names (GNU style): LIBDIR and BINDIR are the build tree's.

PREFIX       ?= /usr/local
libdir       ?= $(PREFIX)/lib
includedir   ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig
INSTALL      ?= install

# `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`
# on x86_64-linux-gnu; override if your toolchain prints something else.
LIBS_PRIVATE ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

SO_FILE := libmd5pool.so.$(VERSION)
SO_LINK := libmd5pool.so.$(SOMAJOR)
PC_FILE := $(BUILD)/md5pool.pc

.PHONY: install uninstall test-install test-abi $(PC_FILE)
test: test-install test-abi

# A directory under the prefix is written relative to ${prefix}, as is customary.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# Regenerated every time: PREFIX and friends may differ from the last run.
$(PC_FILE): md5pool.pc.in
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call pc_rel,$(libdir))|g' \
	    -e 's|@INCLUDEDIR@|$(call pc_rel,$(includedir))|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' $< > $@

install: lib $(PC_FILE)
	$(INSTALL) -d $(DESTDIR)$(libdir) $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir)
	$(INSTALL) -m 755 $(SO_REAL) $(DESTDIR)$(libdir)/$(SO_FILE)
	ln -sf $(SO_FILE) $(DESTDIR)$(libdir)/$(SO_LINK)
	ln -sf $(SO_LINK) $(DESTDIR)$(libdir)/libmd5pool.so
	$(INSTALL) -m 644 $(STATIC) $(DESTDIR)$(libdir)/libmd5pool.a
	$(INSTALL) -m 644 $(HEADER) $(DESTDIR)$(includedir)/md5pool.h
	$(INSTALL) -m 644 $(PC_FILE) $(DESTDIR)$(pkgconfigdir)/md5pool.pc

uninstall:
	rm -f $(DESTDIR)$(libdir)/$(SO_FILE) $(DESTDIR)$(libdir)/$(SO_LINK) \
	      $(DESTDIR)$(libdir)/libmd5pool.so $(DESTDIR)$(libdir)/libmd5pool.a \
	      $(DESTDIR)$(includedir)/md5pool.h $(DESTDIR)$(pkgconfigdir)/md5pool.pc

test-install: lib
	MAKE="$(MAKE)" tests/install_test.sh

# Only the pool_ API may be visible to the programs linking the .so, all of the
# functions the header declares must be, and the soname carries the major
# version so that a 2.x can be installed next to 1.x.
test-abi: lib
	@set -e; \
	 exported=$$(nm -D --defined-only $(SO_REAL) | awk '{print $$NF}' | sort); \
	 declared=$$(grep -v '^ *\*\|^ */\*' $(HEADER) | grep -o '\bpool_[a-z0-9_]*(' | tr -d '(' | sort -u); \
	 bad=$$(echo "$$exported" | grep -v '^pool_' || true); \
	 if [ -n "$$bad" ]; then echo "test-abi: exported besides pool_*:" $$bad; exit 1; fi; \
	 if [ "$$exported" != "$$declared" ]; then \
	     echo "test-abi: exported and declared functions differ"; \
	     echo "  declared:" $$declared; echo "  exported:" $$exported; exit 1; fi; \
	 soname=$$(readelf -d $(SO_REAL) | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'); \
	 if [ "$$soname" != "$(SO_LINK)" ]; then echo "test-abi: soname '$$soname', want $(SO_LINK)"; exit 1; fi; \
	 echo "test-abi: ok ($$(echo "$$exported" | wc -l) functions exported, all pool_* and all in $(HEADER); soname $$soname)"
