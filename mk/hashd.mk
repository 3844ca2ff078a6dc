# hashd: the example daemon (c_examples/hashd.c), its service behaviour and load test.
#   make hashd           build build/bin/hashd
#   make test-hashd      options, STATS, SIGHUP, socket mode/group, systemd notify,
#                        SIGTERM; then 64 clients, 5,000 requests, workers killed under load

.PHONY: hashd test-hashd
test: test-hashd

hashd: $(BINDIR)/hashd

$(BINDIR)/hashd: c_examples/hashd.c $(HEADER) | lib
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(WARN) -D_GNU_SOURCE -Iinclude $< -o $@ $(LINK_POOL)

test-hashd: lib $(BINDIR)/hashd
	python3 tests/hashd_service.py --hashd $(BINDIR)/hashd --unit c_examples/hashd.service
	python3 tests/hashd_load.py --hashd $(BINDIR)/hashd --lib $(SO_REAL)
