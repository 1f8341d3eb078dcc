#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every public header must compile on its own, as C99 and C11, with
-pedantic -Werror, so a host can include any one of them first."""
import pathlib
import subprocess
import sys
import tempfile

cc, src_inc, build_inc = sys.argv[1], sys.argv[2], sys.argv[3]
headers = sorted(p.name for p in (pathlib.Path(src_inc) / "backend").glob("*.h"))
headers += ["version.h"]
failed = 0
with tempfile.TemporaryDirectory() as d:
    for h in headers:
        for std in ("c99", "c11"):
            c = pathlib.Path(d) / "t.c"
            c.write_text(f"#include <backend/{h}>\nint main(void) {{ return 0; }}\n")
            r = subprocess.run([cc, f"-std={std}", "-pedantic", "-Wall", "-Wextra", "-Werror",
                                "-I", src_inc, "-I", build_inc, "-c", str(c), "-o",
                                str(pathlib.Path(d) / "t.o")], capture_output=True, text=True)
            if r.returncode != 0:
                failed += 1
                print(f"FAIL {h} ({std}):\n{r.stderr}")
print(f"{len(headers)} headers checked, {failed} failures")
sys.exit(1 if failed else 0)
