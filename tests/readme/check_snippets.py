#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The C snippets of README.md compile as C99 and as C++17 (-pedantic -Wall
-Wextra -Werror, unused names allowed) against the built library, and each
program runs twice in its own fresh directory, exiting 0 both times (the
second run finds the files the first one left, as a host restarting does).

Which blocks, and how they become programs:

  * Every fenced block opened with ```c is a snippet; other languages are
    left alone.
  * A snippet that defines `int main(` is a whole program and is compiled
    as it is.
  * Otherwise it is a fragment. Preprocessor lines and file-scope
    definitions that start in column 0 (a function definition such as
    `static int add_user(be_conn *conn, ...) {` up to its closing brace, a
    struct/union/enum definition, or a `static` declaration) go to file
    scope, in their order; every other line is a statement of main(), in
    order. main() returns 0 after the last one.
  * The includes a reader assumes come first: <backend/backend.h>,
    <stdint.h>, <stdio.h>, <stdlib.h>, <string.h>.
  * Context a snippet takes for granted (an open connection, a helper it
    only names) goes into an HTML comment right before the fence, invisible
    on the rendered page and split the same way, its statements running
    before the snippet's:

        <!-- snippet setup
        static int load_user(...) { ... }
        be_error *err = NULL;
        -->
        ```c

    and, after the closing fence, `<!-- snippet cleanup ... -->` holds
    statements that run after the snippet's (freeing what it leaves open).
    Neither may contain `--` (HTML comments cannot).

Compiler messages and the report point at lines of the markdown file (#line
directives).

usage: check_snippets.py --cc CC --cxx CXX -I INCLUDE... --lib libbackend.so
                         [--sanitize VALUE] [--print-programs] README.md
"""
import argparse
import os
import pathlib
import re
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import cprog  # noqa: E402

NAME = "README.md"  # the markdown file's name, for messages
INCLUDES = ["backend/backend.h", "stdint.h", "stdio.h", "stdlib.h", "string.h"]
# Fragments declare things a reader then leaves unused; that is not a bug.
RELAXED = ["-Wno-unused-variable", "-Wno-unused-but-set-variable", "-Wno-unused-parameter",
           "-Wno-unused-function"]
STANDARDS = [("c99", ".c"), ("c++17", ".cpp")]

FENCE_RE = re.compile(r"^```c[ \t]*$")
COMMENT_RE = re.compile(r"<!--\s*snippet\s+(setup|cleanup)\b(.*?)-->", re.S)
MAIN_RE = re.compile(r"\bint\s+main\s*\(")
KEYWORDS = {"if", "for", "while", "switch", "do", "else", "return", "goto", "case", "sizeof"}
FUNC_RE = re.compile(r"^(?:[A-Za-z_]\w*[\s*]+)+?([A-Za-z_]\w*)\s*\(")
TYPE_DEF_RE = re.compile(r"^(?:typedef\s+)?(?:struct|union|enum)\s*\w*\s*\{")


class Snippet:
    def __init__(self, line, code, setup=None, cleanup=None):
        self.line = line          # README line of the first code line
        self.code = code          # list of (README line, text)
        self.setup = setup or []
        self.cleanup = cleanup or []


def numbered(text, first_line):
    return [(first_line + i, t) for i, t in enumerate(text.split("\n"))]


def find_snippets(readme: str):
    lines = readme.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    comments = [(m.start(), m.end(), m.group(1), m.start(2), m.group(2))
                for m in COMMENT_RE.finditer(readme)]

    def comment_touching(pos, kind, before):
        """The snippet comment of this kind ending right before pos (or
        starting right after it), with only blank space between."""
        for start, end, k, body_start, body in comments:
            gap = readme[end:pos] if before else readme[pos:start]
            if k == kind and (end <= pos if before else start >= pos) and not gap.strip():
                first_line = readme.count("\n", 0, body_start) + 1
                if "--" in body:
                    raise SystemExit(f"{NAME}:{first_line}: '--' inside a snippet comment")
                lines = numbered(body, first_line)
                while lines and not lines[0][1].strip():
                    lines.pop(0)
                while lines and not lines[-1][1].strip():
                    lines.pop()
                return lines
        return []

    snippets, i = [], 0
    while i < len(lines):
        if not FENCE_RE.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        code = [(n + 1, lines[n]) for n in range(i + 1, j)]
        snippets.append(Snippet(i + 2, code,
                                comment_touching(offsets[i], "setup", True),
                                comment_touching(offsets[min(j + 1, len(lines))], "cleanup", False)))
        i = j + 1
    return snippets


def code_only(lines):
    """The lines with comments, string and character literals blanked, so
    braces and semicolons can be counted."""
    out, in_comment = [], False
    for _, text in lines:
        res, k = [], 0
        while k < len(text):
            if in_comment:
                end = text.find("*/", k)
                if end < 0:
                    k = len(text)
                    break
                in_comment, k = False, end + 2
                continue
            c = text[k]
            if text.startswith("/*", k):
                in_comment, k = True, k + 2
            elif text.startswith("//", k):
                break
            elif c in "\"'":
                k += 1
                while k < len(text) and text[k] != c:
                    k += 2 if text[k] == "\\" else 1
                k += 1
                res.append(" ")
            else:
                res.append(c)
                k += 1
        out.append("".join(res))
    return out


def file_scope_item(code, i):
    """If a file-scope item starts at line i, the index after its last line."""
    text = code[i]
    if not text or text[0].isspace():
        return None
    stripped = text.strip()
    if stripped.startswith("#"):
        return i + 1
    m = FUNC_RE.match(stripped)
    is_func = m is not None and m.group(1) not in KEYWORDS and \
        not any(w in KEYWORDS for w in re.findall(r"\w+", stripped[:m.start(1)]))
    if not (is_func or TYPE_DEF_RE.match(stripped) or stripped.startswith("static ")):
        return None
    # It ends at the first ';' outside braces, or at the brace closing its body.
    depth, seen_brace = 0, False
    for j in range(i, len(code)):
        for c in code[j]:
            if c == "{":
                depth, seen_brace = depth + 1, True
            elif c == "}":
                depth -= 1
                if depth == 0 and is_func:
                    return j + 1
            elif c == ";" and depth == 0:
                return j + 1 if not is_func or seen_brace else None  # a prototype or call
    return None


def split(lines):
    """(file-scope lines, statement lines) of a fragment."""
    code = code_only(lines)
    top, body, i, depth = [], [], 0, 0
    while i < len(lines):
        end = file_scope_item(code, i) if depth == 0 else None
        if end is not None:
            top += lines[i:end]
            i = end
            continue
        depth += code[i].count("{") - code[i].count("}")
        body.append(lines[i])
        i += 1
    return top, body


def with_line_markers(lines, indent=""):
    """The lines, with a #line directive wherever README numbering jumps."""
    out, expected = [], None
    for n, text in lines:
        if n != expected:
            out.append(f'#line {n} "{NAME}"')
        out.append(indent + text if text else text)
        expected = n + 1
    return out


def program(s: Snippet) -> str:
    if MAIN_RE.search("\n".join(t for _, t in s.code)):
        if s.setup or s.cleanup:
            raise SystemExit(f"{NAME}:{s.line}: a whole program takes no setup or cleanup")
        return "\n".join(with_line_markers(s.code)) + "\n"
    setup_top, setup_body = split(s.setup)
    top, body = split(s.code)
    _, cleanup_body = split(s.cleanup)
    out = [f"/* {NAME}:{s.line}, made a program by tests/readme/check_snippets.py */"]
    out += [f"#include <{h}>" for h in INCLUDES]
    out += with_line_markers(setup_top + top)
    out.append("int main(void) {")
    out += with_line_markers(setup_body + body + cleanup_body, "  ")
    out += ["  return 0;", "}"]
    return "\n".join(out) + "\n"


def check(tools, s: Snippet, d: str):
    """The failures of one snippet (empty: it passed)."""
    failures = []
    source = program(s)
    for std, ext in STANDARDS:
        where = os.path.join(d, f"snippet{s.line}_{std.replace('+', 'x')}")
        os.mkdir(where)
        src, exe = os.path.join(where, "snippet" + ext), os.path.join(where, "snippet")
        pathlib.Path(src).write_text(source)
        ok, out = tools.compile(src, exe, std, RELAXED)
        if not ok:
            failures.append(f"{NAME}:{s.line} does not compile as {std}:\n{out}")
            continue
        for run in ("first", "second"):
            ok, out = cprog.run(exe, where)
            if not ok:
                failures.append(f"{NAME}:{s.line} as {std}, {run} run: {out}")
                break
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cprog.add_arguments(parser)
    parser.add_argument("--print-programs", action="store_true",
                        help="print the program made of each snippet and exit")
    parser.add_argument("readme")
    args = parser.parse_args()
    global NAME
    NAME = os.path.basename(args.readme)
    snippets = find_snippets(pathlib.Path(args.readme).read_text())
    if args.print_programs:
        for s in snippets:
            print(program(s))
        return 0
    if not snippets:
        print("no ```c blocks found")
        return 1
    tools = cprog.Toolchain(args)
    failed = []
    with tempfile.TemporaryDirectory() as d:
        for s in snippets:
            failures = check(tools, s, d)
            print(f"{'FAIL' if failures else 'ok  '} {NAME}:{s.line}")
            for f in failures:
                print("  " + f.replace("\n", "\n  "))
            if failures:
                failed.append(s.line)
    print(f"{len(snippets)} snippets, {len(failed)} failed"
          + (f": {NAME} lines " + ", ".join(map(str, failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
