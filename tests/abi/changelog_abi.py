#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The ChangeLog's "ABI" list of the unreleased version, made from
lib/libbackend.map and the public headers (one line per module, in the
order backend/backend.h includes them).

usage: changelog_abi.py SRCROOT          check: exit 1 when the list differs
       changelog_abi.py --write SRCROOT  rewrite the list in place"""
import pathlib
import re
import sys
import textwrap


def exported(root):
    text = (root / "lib/libbackend.map").read_text()
    return set(re.findall(r"^\s+(be_\w+);", text, re.M))


def modules(root, symbols):
    inc = root / "include/backend"
    order = re.findall(r"#include <backend/(\w+)\.h>", (inc / "backend.h").read_text())
    by_module, seen = [], set()
    for mod in order:
        path = inc / f"{mod}.h"
        text = (path if path.exists() else inc / f"{mod}.h.in").read_text()
        mine = sorted(s for s in symbols
                      if re.search(rf"BE_API[^;]*\b{s}\s*\(", text) and s not in seen)
        seen.update(mine)
        if mine:
            by_module.append((mod, mine))
    return by_module, symbols - seen


def render(root):
    symbols = exported(root)
    by_module, orphans = modules(root, symbols)
    if orphans:
        sys.exit(f"symbols in the map but in no header: {sorted(orphans)}")
    out = ["Shared library soname libbackend.so.0; every symbol below is in version",
           f"node LIBBACKEND_0 of lib/libbackend.map ({len(symbols)} functions), by module:"]
    for mod, syms in by_module:
        out += textwrap.wrap(f"{mod}: " + ", ".join(syms), width=76,
                             initial_indent=" - ", subsequent_indent="   ",
                             break_on_hyphens=False, break_long_words=False)
    return "\n".join(out) + "\n"


def main(argv):
    write = "--write" in argv
    root = pathlib.Path([a for a in argv if a != "--write"][0])
    log = root / "ChangeLog"
    text = log.read_text()
    m = re.search(r"^(Shared library soname .*?\n)(?=\n\S|\Z)",
                  text if text.endswith("\n") else text + "\n", re.M | re.S)
    if not m:
        sys.exit("ChangeLog: no ABI list ('Shared library soname ...') in the unreleased version")
    want = render(root)
    if m.group(1) == want:
        return 0
    if write:
        log.write_text(text[:m.start(1)] + want + text[m.end(1):])
        print("ChangeLog: ABI list rewritten")
        return 0
    print("ChangeLog's ABI list differs from lib/libbackend.map; run "
          "tests/abi/changelog_abi.py --write .", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
