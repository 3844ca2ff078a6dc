#!/usr/bin/env python3
"""Runs the code blocks of README.md, so that they cannot rot (make test-readme).

Every fenced block tagged c, sh or cmake must follow a marker line saying what
to do with it (a block without one fails, so a new block gets a test too):

  <!-- test: file NAME -->     save the block as NAME in the work directory
  <!-- test: run -->           run the sh block there (bash -e), as in a clone
                               after `make`: include/ and build/ are the tree's
  <!-- test: run-installed --> the same after `sudo make install`: make, sudo
                               and ldconfig install into a temporary prefix,
                               which pkg-config, CMake and the loader search
  <!-- test: program [PKG...] --> compile a whole C program against the tree's
                               library (and pkg-config's PKG...), and run it
  <!-- test: fragment NAME --> compile the C fragment as a function body after
                               tests/readme/NAME.h (its declarations)
  <!-- test: skip REASON -->   not run (REASON says why, e.g. `make test` itself)

Blocks run in order in one work directory, so a `file` block feeds the `run`
blocks after it. Prints one line per block and "N passed, N failed".
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!-- test: (\S+)\s*(.*?)\s*-->$")
CHECKED_LANGUAGES = {"c", "sh", "cmake"}
CC = os.environ.get("CC", "cc")

# Stand-ins for a system-wide install: the same commands, into $PREFIX.
INSTALLED_PRELUDE = """
sudo() { "$@"; }
make() { command make -s --no-print-directory -C "$REPO" CARGO=false PREFIX="$PREFIX" "$@"; }
ldconfig() { :; }
export LD_LIBRARY_PATH="$PREFIX/lib" PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" CMAKE_PREFIX_PATH="$PREFIX"
"""


def blocks(readme):
    """(line number, language, marker action, marker argument, text) of each fenced block."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, language = i, fence.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous.strip())
        action, argument = (marker.group(1), marker.group(2)) if marker else (None, "")
        yield start + 1, language, action, argument, "\n".join(lines[start + 1:end]) + "\n"
        i = end + 1


def run(command, work, env=None):
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def shell(text, work, prelude=""):
    env = dict(os.environ, REPO=REPO, PREFIX=os.path.join(work, "prefix"))
    return run(["bash", "-e", "-o", "pipefail", "-c", prelude + text], work, env)


def fragment(text, work, name):
    source = os.path.join(work, "fragment_%s.c" % name)
    with open(source, "w") as out:
        out.write('#include "%s/tests/readme/%s.h"\nvoid readme_fragment(void)\n{\n%s}\n'
                  % (REPO, name, text))
    return run([CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                "-Wno-unused-variable", "-Wno-declaration-after-statement",
                "-I" + os.path.join(REPO, "include"), "-fsyntax-only", source], work)


def program(text, work, packages):
    source, binary = os.path.join(work, "program.c"), os.path.join(work, "program")
    with open(source, "w") as out:
        out.write(text)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + packages, capture_output=True,
                           text=True, check=True).stdout.split() if packages else []
    library = os.path.join(REPO, "build", "lib")
    ok, output = run([CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                      "-I" + os.path.join(REPO, "include"), source, "-o", binary,
                      "-L" + library, "-lmd5pool", "-Wl,-rpath," + library] + flags, work)
    return run([binary], work) if ok else (ok, output)


def check(language, action, argument, text, work):
    if action is None:
        return language not in CHECKED_LANGUAGES, "no <!-- test: ... --> marker"
    if action == "skip":
        return True, "skipped: " + argument
    if action == "file":
        with open(os.path.join(work, argument), "w") as out:
            out.write(text)
        return True, "saved as " + argument
    if action == "run":
        return shell(text, work)
    if action == "run-installed":
        return shell(text, work, INSTALLED_PRELUDE)
    if action == "program":
        return program(text, work, argument.split())
    if action == "fragment":
        return fragment(text, work, argument)
    return False, "unknown marker action " + action


def main():
    readme = os.path.join(REPO, "README.md")
    work = tempfile.mkdtemp(prefix="md5pool-readme.")
    try:
        for tree in ("include", "build"):
            os.symlink(os.path.join(REPO, tree), os.path.join(work, tree))
        passed = failed = 0
        for line, language, action, argument, text in blocks(readme):
            if language not in CHECKED_LANGUAGES and action is None:
                continue
            ok, output = check(language, action, argument, text, work)
            print("README.md:%d %s block: %s" % (line, language or "plain", "ok" if ok else "FAILED"))
            if output and not ok:
                print("    " + output.replace("\n", "\n    "))
            passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print("README blocks: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
