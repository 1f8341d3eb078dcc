# SPDX-License-Identifier: MIT
"""Compile and run small C and C++ programs against the built libbackend.

Shared by the script-run tests that must turn a compile error into a test
failure instead of a broken build: tests/abi/check_headers.py,
tests/abi/check_init_macros.py and tests/readme/check_snippets.py. meson
passes the same options to each (see tests/meson.build):

  --cc CMD / --cxx CMD   the C and C++ compiler commands (shell words)
  -I DIR                 include directories (source include/, build include/)
  --lib PATH             the built shared library, linked by path with an rpath
  --sanitize VALUE       meson's b_sanitize ('none' or e.g. 'address,undefined'),
                         so programs link with an instrumented library
"""
import argparse
import os
import shlex
import subprocess

# Warnings a host may well build with; every program here must pass them.
STRICT = ["-pedantic", "-Wall", "-Wextra", "-Werror"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cc", required=True, help="C compiler command")
    parser.add_argument("--cxx", required=True, help="C++ compiler command")
    parser.add_argument("-I", dest="include", action="append", default=[],
                        help="include directory (repeatable)")
    parser.add_argument("--lib", help="path of the built libbackend shared library")
    parser.add_argument("--sanitize", default="none", help="meson's b_sanitize value")


class Toolchain:
    """The compilers and flags from the command line."""

    def __init__(self, args: argparse.Namespace):
        self.cc = shlex.split(args.cc)
        self.cxx = shlex.split(args.cxx)
        self.include = [f"-I{d}" for d in args.include]
        self.lib = args.lib
        self.sanitize = [] if args.sanitize in ("", "none") else [f"-fsanitize={args.sanitize}"]

    def compile(self, src: str, out, std: str, extra=()):
        """Compile src (.c or .cpp: the extension picks the compiler) to the
        program out, linked against the library; out None only checks the
        source (-fsyntax-only). Returns (ok, the command and its output)."""
        cmd = list(self.cxx if src.endswith(".cpp") else self.cc)
        cmd += [f"-std={std}", *STRICT, *extra, *self.sanitize, *self.include]
        if out is None:
            cmd += ["-fsyntax-only", src]
        else:
            cmd += [src, "-o", out]
            if self.lib:
                libdir = os.path.dirname(os.path.abspath(self.lib))
                cmd += [os.path.abspath(self.lib), f"-Wl,-rpath,{libdir}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        return r.returncode == 0, (" ".join(shlex.quote(c) for c in cmd) + "\n" + r.stdout + r.stderr)


def run(exe: str, cwd: str, timeout: float = 120):
    """Run exe in cwd. Returns (ok, a description with its output)."""
    try:
        r = subprocess.run([os.path.abspath(exe)], cwd=cwd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    status = f"exit {r.returncode}" if r.returncode >= 0 else f"killed by signal {-r.returncode}"
    return r.returncode == 0, f"{status}\n{r.stdout}{r.stderr}"
