#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every public header compiles ALONE, so a host can include any one of
them first, in any of the languages a host may use: C99 and C11 with the C
compiler, C++17 with the C++ compiler, each with -pedantic -Wall -Wextra
-Werror. Each header is included twice in its unit, so a missing include
guard fails too. Covers include/backend/*.h and the generated version.h.

usage: check_headers.py --cc CC --cxx CXX -I SRC_INCLUDE -I BUILD_INCLUDE
(the first -I holds backend/*.h; the build one holds backend/version.h)
"""
import argparse
import concurrent.futures
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import cprog  # noqa: E402

STANDARDS = [("c99", ".c"), ("c11", ".c"), ("c++17", ".cpp")]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
cprog.add_arguments(parser)
args = parser.parse_args()
tools = cprog.Toolchain(args)

headers = sorted(p.name for p in (pathlib.Path(args.include[0]) / "backend").glob("*.h"))
headers.append("version.h")


def check(job):
    """Compile one header alone in one standard; None or the failure."""
    h, std, ext, d = job
    src = pathlib.Path(d) / f"{h}.{std}{ext}"
    src.write_text(f"#include <backend/{h}>\n#include <backend/{h}>\n"
                   "int main(void) { return 0; }\n")
    ok, out = tools.compile(str(src), None, std)
    return None if ok else (f"{h} ({std})", out)


with tempfile.TemporaryDirectory() as d, \
        concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
    results = pool.map(check, [(h, std, ext, d) for h in headers for std, ext in STANDARDS])
    failures = [r for r in results if r is not None]
for name, out in failures:
    print(f"FAIL {name}:\n{out}")
failures = [name for name, _ in failures]
print(f"{len(headers)} headers x {len(STANDARDS)} standards checked, {len(failures)} failures"
      + (": " + ", ".join(failures) if failures else ""))
sys.exit(1 if failures else 0)
