# Man pages (man/): md5pool(7), one page per function or group (pool_*(3); the
# other names of a group are symlinks to its page) and hashd(8).
#   make man-lint   mandoc -T lint (groff -ww without mandoc) on every page,
#                   failing on any warning; every page renders with man -l;
#                   every function in the header has a page

MAN_PAGES := $(wildcard man/*.3 man/*.7 man/*.8)

.PHONY: man-lint
test: man-lint

man-lint:
	@set -e; \
	 if command -v mandoc >/dev/null; then lint="mandoc -T lint -W warning"; \
	 else lint="groff -ww -z -man"; echo "man-lint: no mandoc, using groff"; fi; \
	 for page in $(MAN_PAGES); do \
	   out=$$($$lint $$page 2>&1) || true; \
	   [ -z "$$out" ] || { echo "$$out"; echo "man-lint: $$page has warnings"; exit 1; }; \
	   MANWIDTH=80 man -l $$page 2>/dev/null | grep -q '^NAME' || { echo "man-lint: man -l $$page does not render"; exit 1; }; \
	 done; \
	 for fn in $$(grep -o '\bpool_[a-z0-9_]*(' $(HEADER) | tr -d '(' | sort -u); do \
	   [ -e man/$$fn.3 ] || { echo "man-lint: $(HEADER) declares $$fn, which has no man/$$fn.3"; exit 1; }; \
	 done; \
	 echo "man-lint: $(words $(MAN_PAGES)) pages ok"
