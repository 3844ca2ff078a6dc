# CMake package files: `find_package(md5pool 1.1 REQUIRED)` then
# `target_link_libraries(app md5pool::md5pool)` (or md5pool::md5pool_static).
# `make install` installs them in $(cmakedir); tests/install_test.sh builds a
# CMake project against an installed tree.

CMAKE_FILES := $(BUILD)/cmake/md5poolConfig.cmake $(BUILD)/cmake/md5poolConfigVersion.cmake

.PHONY: cmake-config
# Regenerated every time, like the .pc: libdir and includedir may differ.
cmake-config:
	@mkdir -p $(BUILD)/cmake
	@for f in md5poolConfig md5poolConfigVersion; do \
	  sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOMAJOR@|$(SOMAJOR)|g' \
	      -e "s|@INCLUDEDIR_FROM_LIBDIR@|$$(realpath -m --relative-to=$(libdir) $(includedir))|g" \
	      -e 's|@LIBS_PRIVATE_CMAKE@|$(subst $(eval) ,;,$(patsubst -l%,%,$(LIBS_PRIVATE)))|g' \
	      cmake/$$f.cmake.in > $(BUILD)/cmake/$$f.cmake; \
	done
