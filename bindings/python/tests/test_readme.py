# SPDX-License-Identifier: MIT
"""The ```python examples of the READMEs run as they are, each in a fresh
directory with the library under test: the top-level README's twice (the
second run finds the database the first left, as a restarted host does),
the package README's once."""
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

from support import REPO

PACKAGE_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCK_RE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(path):
    return BLOCK_RE.findall(path.read_text(encoding="utf-8"))


class Readme(unittest.TestCase):
    def run_block(self, code, runs):
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(runs):
                p = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True,
                                   text=True, timeout=120, env=dict(os.environ))
                self.assertEqual(p.returncode, 0, f"run {i + 1}:\n{code}\n{p.stdout}{p.stderr}")

    def test_top_level_readme(self):
        path = REPO / "README.md"
        if not path.exists():
            self.skipTest("not in the libbackend source tree")
        found = blocks(path)
        self.assertTrue(found, "README.md has no ```python block")
        for code in found:
            self.run_block(code, 2)

    def test_package_readme(self):
        found = blocks(PACKAGE_README)
        self.assertTrue(found)
        for code in found:
            self.run_block(code, 1)


if __name__ == "__main__":
    unittest.main()
