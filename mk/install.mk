# make install / uninstall, the pkg-config file, and their tests.
#   make install   PREFIX=/usr/local [DESTDIR=/staging] [KIT=build/centos7]
#                  (also libdir=, includedir=, sbindir=, mandir=, ...)
#   make uninstall PREFIX=/usr/local [DESTDIR=/staging]
#   make test-install   install into a temp prefix: pkg-config builds (shared,
#                       static, -static), CMake, uninstall, DESTDIR
#   make test-abi       the .so exports only pool_* and its soname is libmd5pool.so.<major>
#
# install only copies what `make` (or `make centos7`, with KIT=build/centos7)
# built: it never runs cargo, so `sudo make install` works where root has no Rust.
# Lower-case directory names (GNU style): LIBDIR and BINDIR are the build tree's.

PREFIX         ?= /usr/local
libdir         ?= $(PREFIX)/lib
includedir     ?= $(PREFIX)/include
pkgconfigdir   ?= $(libdir)/pkgconfig
cmakedir       ?= $(libdir)/cmake/md5pool
sbindir        ?= $(PREFIX)/sbin
mandir         ?= $(PREFIX)/share/man
systemdunitdir ?= $(PREFIX)/lib/systemd/system
INSTALL        ?= install

# Where the built files are: lib/ (the .so, the .a) and bin/hashd; the header
# is $(KIT)/include/md5pool.h when the kit has one, else the tree's.
KIT         ?= $(BUILD)
KIT_HEADER   = $(firstword $(wildcard $(KIT)/include/md5pool.h) $(HEADER))
KIT_HASHD    = $(wildcard $(KIT)/bin/hashd)

# What a static link of libmd5pool.a needs besides it: the Rust standard
# library's native dependencies (`cargo rustc --crate-type staticlib --
# --print native-static-libs` on x86_64-linux-gnu), less -lgcc_s: the compiler
# driver adds the unwinder itself (libgcc_s for a dynamic program, libgcc_eh
# with -static, where -lgcc_s cannot be found).
LIBS_PRIVATE ?= -lutil -lrt -lpthread -lm -ldl

SO_FILE := libmd5pool.so.$(VERSION)
SO_LINK := libmd5pool.so.$(SOMAJOR)
PC_FILE := $(BUILD)/md5pool.pc
MAN_PAGES = $(wildcard man/*.3 man/*.7 man/*.8)
HASHD_UNIT = $(wildcard c_examples/hashd.service)

.PHONY: install uninstall installable test-install test-abi $(PC_FILE)
test: test-install test-abi

# The hashd that install copies finds the library next to it: build/lib in
# the tree, $(PREFIX)/lib once installed (no path into the build tree).
$(BINDIR)/hashd: LINK_POOL = -L$(LIBDIR) -lmd5pool -Wl,-rpath,'$$ORIGIN/../lib'

# A directory under the prefix is written relative to ${prefix}, as is customary.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# $(call write_pc,PREFIX,LIBDIR,INCLUDEDIR): md5pool.pc.in filled in, to $@
define write_pc
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(1)|g' -e 's|@LIBDIR@|$(2)|g' -e 's|@INCLUDEDIR@|$(3)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' $< > $@
endef

# Regenerated every time: PREFIX and friends may differ from the last run.
$(PC_FILE): md5pool.pc.in
	$(call write_pc,$(PREFIX),$(call pc_rel,$(libdir)),$(call pc_rel,$(includedir)))

# One line, from make itself, when there is nothing to install.
installable:
	$(if $(wildcard $(KIT)/lib/$(SO_FILE)),,$(error no $(KIT)/lib/$(SO_FILE): run make first))

install: installable $(PC_FILE) cmake-config
	$(INSTALL) -d $(DESTDIR)$(libdir) $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(cmakedir)
	$(INSTALL) -m 755 $(KIT)/lib/$(SO_FILE) $(DESTDIR)$(libdir)/$(SO_FILE)
	ln -sf $(SO_FILE) $(DESTDIR)$(libdir)/$(SO_LINK)
	ln -sf $(SO_LINK) $(DESTDIR)$(libdir)/libmd5pool.so
	$(INSTALL) -m 644 $(KIT)/lib/libmd5pool.a $(DESTDIR)$(libdir)/libmd5pool.a
	$(INSTALL) -m 644 $(KIT_HEADER) $(DESTDIR)$(includedir)/md5pool.h
	$(INSTALL) -m 644 $(PC_FILE) $(DESTDIR)$(pkgconfigdir)/md5pool.pc
	$(INSTALL) -m 644 $(CMAKE_FILES) $(DESTDIR)$(cmakedir)/
	$(if $(KIT_HASHD),$(INSTALL) -D -m 755 $(KIT_HASHD) $(DESTDIR)$(sbindir)/hashd)
	$(if $(HASHD_UNIT),sed 's|/usr/sbin/hashd|$(sbindir)/hashd|g' $(HASHD_UNIT) > $(BUILD)/hashd.service)
	$(if $(HASHD_UNIT),$(INSTALL) -D -m 644 $(BUILD)/hashd.service $(DESTDIR)$(systemdunitdir)/hashd.service)
	$(foreach section,3 7 8,$(if $(filter %.$(section),$(MAN_PAGES)), \
	  $(INSTALL) -d $(DESTDIR)$(mandir)/man$(section) && \
	  $(INSTALL) -m 644 $(filter %.$(section),$(MAN_PAGES)) $(DESTDIR)$(mandir)/man$(section)/;))

uninstall:
	rm -f $(DESTDIR)$(libdir)/$(SO_FILE) $(DESTDIR)$(libdir)/$(SO_LINK) \
	      $(DESTDIR)$(libdir)/libmd5pool.so $(DESTDIR)$(libdir)/libmd5pool.a \
	      $(DESTDIR)$(includedir)/md5pool.h $(DESTDIR)$(pkgconfigdir)/md5pool.pc \
	      $(addprefix $(DESTDIR)$(cmakedir)/,$(notdir $(CMAKE_FILES))) \
	      $(DESTDIR)$(sbindir)/hashd $(DESTDIR)$(systemdunitdir)/hashd.service \
	      $(foreach page,$(MAN_PAGES),$(DESTDIR)$(mandir)/man$(subst .,,$(suffix $(page)))/$(notdir $(page)))
	-rmdir $(DESTDIR)$(cmakedir) 2>/dev/null

test-install: lib hashd
	MAKE="$(MAKE)" tests/install_test.sh

# Only the pool_ API may be visible to the programs linking the .so, all of the
# functions the header declares must be, and the soname carries the major
# version so that a 2.x can be installed next to 1.x.
test-abi: lib
	@set -e; \
	 exported=$$(nm -D --defined-only $(SO_REAL) | awk '{print $$NF}' | sed 's/@.*//' | sort -u); \
	 declared=$$(grep -v '^ *\*\|^ */\*' $(HEADER) | grep -o '\bpool_[a-z0-9_]*(' | tr -d '(' | sort -u); \
	 bad=$$(echo "$$exported" | grep -v '^pool_' || true); \
	 if [ -n "$$bad" ]; then echo "test-abi: exported besides pool_*:" $$bad; exit 1; fi; \
	 if [ "$$exported" != "$$declared" ]; then \
	     echo "test-abi: exported and declared functions differ"; \
	     echo "  declared:" $$declared; echo "  exported:" $$exported; exit 1; fi; \
	 soname=$$(readelf -d $(SO_REAL) | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'); \
	 if [ "$$soname" != "$(SO_LINK)" ]; then echo "test-abi: soname '$$soname', want $(SO_LINK)"; exit 1; fi; \
	 echo "test-abi: ok ($$(echo "$$exported" | wc -l) functions exported, all pool_* and all in $(HEADER); soname $$soname)"
