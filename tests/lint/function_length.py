#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fail when a C function in the given directories is longer than the
limit (80 lines, from the line of its name to its closing brace).

usage: function_length.py [--max N] DIR...
Needs Universal Ctags (Debian package universal-ctags) for function
boundaries. Prints one line per long function, longest first, and the
longest function overall."""
import argparse
import pathlib
import subprocess
import sys


def functions(paths):
    files = sorted(str(p) for d in paths for p in pathlib.Path(d).rglob("*.c"))
    out = subprocess.run(["ctags", "--c-kinds=f", "--fields=+ne", "-o", "-"] + files,
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split("\t")
        fields = dict(p.split(":", 1) for p in parts[3:] if ":" in p)
        if "line" in fields and "end" in fields:
            start, end = int(fields["line"]), int(fields["end"])
            yield end - start + 1, parts[1], start, parts[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=80)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    found = sorted(functions(a.dirs), reverse=True)
    if not found:
        print("no functions found", file=sys.stderr)
        return 1
    long = [f for f in found if f[0] > a.max]
    for n, path, start, name in long:
        print(f"{path}:{start}: {name} is {n} lines (limit {a.max})")
    n, path, start, name = found[0]
    print(f"{len(found)} functions; longest: {name} ({path}:{start}), {n} lines")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
