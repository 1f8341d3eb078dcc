#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/bench/hotpath_summary.py against runs written here, whose
verdict is known: how runs are told apart, what is skipped, the counts
of met runs, the medians, the size checks and the exit status.

usage: test_hotpath_summary.py path/to/hotpath_summary.py
"""
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

SCRIPT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                               "hotpath_summary.py")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def row(name, ratio, target=0.90, users=10000, threads=1, **extra):
    rec = {"bench": "hotpath", "row": name, "users": users, "threads": threads,
           "ratio": ratio, "target_min": target,
           "met": None if target is None else ratio >= target}
    rec.update(extra)
    return rec


def size_check(name, ratio, base, users=100000, **extra):
    rec = {"bench": "hotpath", "size_check": name, "threads": 1, "users": users,
           "ratio": ratio, "base_users": 10000, "base_ratio": base,
           "delta": round(ratio - base, 3), "target_max_drop": 0.05,
           "met": ratio - base >= -0.05}
    rec.update(extra)
    return rec


def run(*files, args=()):
    paths = []
    for lines in files:
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "wb") as f:  # a line given as bytes is written as it is
            for line in lines:
                if not isinstance(line, bytes):
                    line = (line if isinstance(line, str) else json.dumps(line)).encode()
                f.write(line + b"\n")
        paths.append(path)
    try:
        p = subprocess.run([sys.executable, SCRIPT, *args, *paths],
                           capture_output=True, text=True, timeout=60)
    finally:
        for path in paths:
            os.unlink(path)
    return p, paths


def entries(p):
    return {(e["row"], e["threads"], e["users"]): e
            for e in map(json.loads, p.stdout.splitlines()) if e["kind"] == "row"}


def test_tagged_runs_counted_against_a_model():
    """Random tagged runs: every count and median equals the model's."""
    rng = random.Random(17)
    for _ in range(20):
        nruns = rng.randint(1, 7)
        ratios = {k: [round(rng.uniform(0.85, 0.99), 3) for _ in range(nruns)]
                  for k in (("get_by_id", 1), ("get_by_id", 2), ("cache_get", 1))}
        lines = [row("get_by_id_raw_vs_raw", 1.0, None, run=i + 1) for i in range(nruns)]
        for (name, threads), rs in ratios.items():
            lines += [row(name, r, 0.90, threads=threads, run=i + 1, commit="abc")
                      for i, r in enumerate(rs)]
        lines.append({"row": "get", "users": 10000, "lib": 9539, "raw": 9051})  # callgrind
        rng.shuffle(lines)
        p, _ = run(lines, args=["--json"])
        got = entries(p)
        all_met = all(r >= 0.90 for rs in ratios.values() for r in rs)
        check(p.returncode == (0 if all_met else 1),
              "exit %d for all_met=%s: %s" % (p.returncode, all_met, p.stderr))
        for (name, threads), rs in ratios.items():
            e = got.get((name, threads, 10000))
            check(e is not None and e["runs"] == nruns and
                  e["runs_met"] == sum(r >= 0.90 for r in rs) and
                  e["median"] == round(statistics.median(rs), 3) and
                  sorted(e["ratios"]) == sorted(rs),
                  "%s %dt: %s against %s" % (name, threads, e, rs))
        floor = got.get(("get_by_id_raw_vs_raw", 1, 10000))
        check(floor is not None and floor["runs_judged"] == 0, "noise floor judged: %s" % floor)


def test_untagged_runs_split_where_a_row_comes_round():
    one = [row("get_by_id", 0.96, 0.95), row("get_by_id", 0.97, 0.95, users=100000),
           row("get_by_id", 0.91, threads=2)]
    two = [row("get_by_id", 0.94, 0.95), row("get_by_id", 0.97, 0.95, users=100000),
           row("get_by_id", 0.92, threads=2)]
    p, _ = run(one + two, one)
    check(p.returncode == 1, "a miss must exit 1, got %d" % p.returncode)
    check(p.stdout.startswith("3 runs;"), "three runs expected:\n" + p.stdout)
    check("0.960* / 0.940! / 0.960*  (2/3, target 0.95)" in p.stdout,
          "the 1t row's cells:\n" + p.stdout)
    check("median 0.910" in p.stdout and "(3/3, target 0.90)" in p.stdout,
          "the 2t row:\n" + p.stdout)


def test_untagged_lines_never_join_a_tagged_run():
    lines = [row("get_by_id", 0.96), row("cache_get", 0.93, run=1),
             row("cache_get", 0.50), row("get_by_id", 0.94)]
    p, _ = run(lines)
    check(p.stdout.startswith("3 runs;"),
          "two untagged runs and a tagged one:\n" + p.stdout + p.stderr)
    check("0.500! / 0.930*  (1/2, target 0.90)" in p.stdout,
          "the untagged cache_get is a run of its own:\n" + p.stdout)
    check("0.960* / 0.940*" in p.stdout, "the untagged get_by_id:\n" + p.stdout)


def test_runs_of_two_files_with_the_same_tags_stay_apart():
    a = [row("user_get_miss", 0.91, run=1), row("user_get_miss", 0.92, run=2),
         row("cache_get", 0.93, run=1), row("cache_get", 0.94, run=2)]
    b = [row("user_get_miss", 0.89, run=1), row("cache_get", 0.95, run=1)]
    p, _ = run(a, b, args=["--json"])
    e = entries(p).get(("user_get_miss", 1, 10000))
    check(e is not None and e["runs"] == 3 and e["runs_met"] == 2, "two files: %s" % e)
    check(p.returncode == 1, "exit %d" % p.returncode)
    p, _ = run(a, b)
    check(p.stdout.startswith("3 runs;"), "a run's rows are one run:\n" + p.stdout)
    check("0.930* / 0.940* / 0.950*" in p.stdout, "runs in the order read:\n" + p.stdout)
    c = [row("cache_get", 0.95, run=1, commit="aaa"), row("cache_get", 0.50, run=1, commit="bbb")]
    p, _ = run(c)
    check(p.returncode == 1 and p.stdout.startswith("2 runs;"),
          "a tag reused by another commit is another run:\n" + p.stdout)


def test_diagnostic_lines_and_other_benches_skipped():
    lines = [row("get_by_id", 0.95, run=1),
             row("get_by_id", 0.50, run=1, diagnostic=True),
             {"bench": "cache", "row": "get_by_id", "ratio": 0.1},
             {"bench": "hotpath", "profile": "get", "side": "lib", "users": 10000,
              "ops": 1000, "ns_per_op": 1614}]
    p, _ = run(lines, args=["--json"])
    e = entries(p).get(("get_by_id", 1, 10000))
    check(p.returncode == 0 and e is not None and e["ratios"] == [0.95],
          "only the plain line counts: %s %s" % (e, p.stderr))
    p, paths = run(lines[1:])
    check(p.returncode == 2 and "no bench_hotpath line" in p.stderr and paths[0] in p.stderr,
          "nothing to read: exit %d, %r" % (p.returncode, p.stderr))


def test_failed_size_check_reported():
    lines = [row("cache_get", 0.95), row("cache_get", 0.91, users=100000),
             size_check("cache_get", 0.87, 0.95)]
    p, _ = run(lines)
    check(p.returncode == 1, "a failed size check must exit 1, got %d" % p.returncode)
    check("size check cache_get 1t at 100000 users failed in 1 of 1 runs: 0.870" in p.stdout,
          "size check line:\n" + p.stdout)
    p, _ = run(lines[:2] + [size_check("cache_get", 0.93, 0.95)])
    check(p.returncode == 0 and "size check" not in p.stdout,
          "a met size check: exit %d\n%s" % (p.returncode, p.stdout))


def test_bad_input_names_file_and_line():
    p, paths = run([row("get_by_id", 0.96), "{not json"])
    check(p.returncode == 2 and ("%s:2: not JSON" % paths[0]) in p.stderr,
          "bad JSON: exit %d, %r" % (p.returncode, p.stderr))
    p, paths = run([{"bench": "hotpath", "row": "get_by_id", "ratio": "0.9"}])
    check(p.returncode == 2 and ("%s:1: " % paths[0]) in p.stderr and "ratio" in p.stderr,
          "ratio not a number: exit %d, %r" % (p.returncode, p.stderr))
    p = subprocess.run([sys.executable, SCRIPT, "/nonexistent/run.jsonl"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "/nonexistent/run.jsonl" in p.stderr,
          "missing file: exit %d, %r" % (p.returncode, p.stderr))
    p = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "usage" in p.stderr, "no file: exit %d" % p.returncode)


def test_wrong_types_are_bad_input():
    """Not UTF-8, or a field of the wrong type: exit 2 naming file and line,
    not a traceback."""
    p, paths = run([row("get_by_id", 0.96), b'{"bench": "hotpath", "row": "caf\xe9"}'])
    check(p.returncode == 2 and ("%s:2: not UTF-8" % paths[0]) in p.stderr,
          "not UTF-8: exit %d, %r" % (p.returncode, p.stderr))
    cases = [("users", None), ("users", "10000"), ("threads", "2"), ("threads", 1.5),
             ("ratio", True), ("target_min", "0.90"), ("row", ["get_by_id"]),
             ("run", [1]), ("commit", {"id": "abc"})]
    for field, value in cases:
        rec = row("get_by_id", 0.96, run=1)
        rec[field] = value
        p, paths = run([row("cache_get", 0.95, run=1), rec])
        check(p.returncode == 2 and ("%s:2: " % paths[0]) in p.stderr and field in p.stderr
              and "Traceback" not in p.stderr,
              "%s %s: exit %d, %r" % (field, json.dumps(value), p.returncode, p.stderr))


def test_met_must_be_true_or_false_where_there_is_a_target():
    """bench_hotpath judges "met" itself (on the median ratio, or on the
    unrounded ratios of a size check), so anything but true or false on a
    targeted row or size check is bad input, not a pass."""
    cases = [row("get_by_id", 0.50, met=None), row("get_by_id", 0.50, met="false"),
             row("get_by_id", 0.50, met=0), size_check("cache_get", 0.80, 0.95, met=None),
             row("get_by_id_raw_vs_raw", 1.0, None, met=False)]
    for rec in cases:
        p, paths = run([row("cache_get", 0.95), rec])
        check(p.returncode == 2 and ("%s:2: " % paths[0]) in p.stderr and "met" in p.stderr
              and "Traceback" not in p.stderr,
              "met %s: exit %d, %r" % (json.dumps(rec), p.returncode, p.stderr))


def test_standard_input():
    text = json.dumps(row("bulk_insert_110k", 0.94)) + "\n"
    p = subprocess.run([sys.executable, SCRIPT, "-"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0 and "bulk_insert_110k" in p.stdout and "1 runs" in p.stdout,
          "stdin: exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        t()
    print("%d tests, %d failures" % (len(tests), len(failures)))
    sys.exit(1 if failures else 0)
