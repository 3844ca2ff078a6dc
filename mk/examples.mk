# The short C examples: built with the project's warnings (-Werror) and run.
#   make examples        build build/bin/minimal and build/bin/event_loop
#   make test-examples   run both and check what they print

EXAMPLES := $(BINDIR)/minimal $(BINDIR)/event_loop

.PHONY: examples test-examples
test: test-examples

examples: $(EXAMPLES)

$(BINDIR)/minimal $(BINDIR)/event_loop: $(BINDIR)/%: c_examples/%.c $(HEADER) | lib
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(WARN) -D_GNU_SOURCE -Iinclude $< -o $@ $(LINK_POOL)

test-examples: lib $(EXAMPLES)
	python3 tests/examples_output.py $(EXAMPLES)
