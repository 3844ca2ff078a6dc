# make test-readme: README.md's code blocks compile and run as written
# (tests/readme_blocks.py says how a block is marked).

.PHONY: test-readme
test: test-readme

test-readme: lib hashd
	python3 tests/readme_blocks.py
