#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The exported symbols, the version script and the BE_API declarations in the
public headers must be one and the same set, and every export must be be_*."""
import pathlib
import re
import subprocess
import sys

so, mapfile, incdir = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])

out = subprocess.run(["nm", "-D", "--defined-only", so], check=True,
                     capture_output=True, text=True).stdout
exported = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) >= 3 and parts[1] in "TtDdBbRrVvWwi":
        name = parts[2].split("@")[0]
        if name.startswith("LIBBACKEND_"):  # version node definitions
            continue
        exported.add(name)

text = re.sub(r"/\*.*?\*/", "", pathlib.Path(mapfile).read_text(), flags=re.S)
mapped = set(re.findall(r"^\s*(be_[A-Za-z0-9_]+)\s*;", text, flags=re.M))

declared = set()
for h in sorted(incdir.glob("*.h*")):
    src = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
    for decl in re.findall(r"BE_API\b[^;{]*?;", src, flags=re.S):
        m = re.search(r"\b(be_[A-Za-z0-9_]+)\s*\(", decl)
        if m:
            declared.add(m.group(1))

ok = True
bad_prefix = sorted(s for s in exported if not s.startswith("be_"))
if bad_prefix:
    print("exported without the be_ prefix:", bad_prefix); ok = False
for a_name, a, b_name, b in [("exported", exported, "map", mapped),
                             ("map", mapped, "headers", declared),
                             ("headers", declared, "exported", exported)]:
    missing = sorted(a - b)
    if missing:
        print(f"in {a_name} but not in {b_name}: {missing}"); ok = False
print(f"{len(exported)} exported, {len(mapped)} in map, {len(declared)} declared")
sys.exit(0 if ok else 1)
