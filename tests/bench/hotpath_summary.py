#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise several bench_hotpath runs: per row, thread count and size,
the ratio of every run, how many runs met the row's target, and the
median over the runs; then every size check that failed. One run cannot
tell a ratio from its target when they are closer than the noise floor
(get_by_id_raw_vs_raw), so the issue's verdict is over runs.

usage: hotpath_summary.py [--json] FILE...   (- reads standard input)

A run is the lines of one bench_hotpath invocation: lines tagged with
"run" (as the files under results/ are) are grouped by file, tag and
"commit"; untagged lines of a file are runs of their own, never part of
a tagged one, and start a new run wherever a row, size and thread count
comes round again. Lines marked "diagnostic", the line of a --profile
run, and lines of other benches or of hotpath_callgrind.sh are skipped.

The verdict "met" is bench_hotpath's, not recomputed here: true or false
on every size check and on every row with a "target_min", null on a row
without one (a noise floor).

Exit status: 0 every targeted row and size check met in every run, 1 some
did not, 2 bad usage, bad input (not UTF-8, not JSON, a field of the wrong
type) or no bench_hotpath line at all.
"""
import json
import math
import signal
import statistics
import sys


class BadInput(Exception):
    """A line that is not UTF-8, not JSON or not a result (exit status 2)."""


def is_number(v):
    """True for a finite JSON number; true and false are not numbers."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def wrong_field(rec):
    """Why a bench_hotpath record cannot be summarised, or None if it can:
    every field read here has the type bench_hotpath writes."""
    if ("row" in rec) == ("size_check" in rec) or not is_number(rec.get("ratio")):
        return "a bench_hotpath line needs \"row\" or \"size_check\", and a number \"ratio\""
    checks = [("row", lambda v: isinstance(v, str), "a string"),
              ("size_check", lambda v: isinstance(v, str), "a string"),
              ("threads", is_integer, "an integer"), ("users", is_integer, "an integer"),
              ("target_min", lambda v: v is None or is_number(v), "a number or null"),
              ("run", lambda v: v is None or isinstance(v, str) or is_integer(v),
               "a string, an integer or null"),
              ("commit", lambda v: v is None or isinstance(v, str), "a string or null")]
    for field, ok, what in checks:
        if field in rec and not ok(rec[field]):
            return "\"%s\" must be %s, not %s" % (field, what, json.dumps(rec[field])[:40])
    if "size_check" in rec or rec.get("target_min") is not None:
        if not isinstance(rec.get("met"), bool):
            return "\"met\" must be true or false where there is a target, not %s" \
                % json.dumps(rec.get("met"))[:40]
    elif rec.get("met") is not None:
        return "\"met\" must be null on a row without \"target_min\""
    return None


def bench_lines(name, stream):
    """Each bench_hotpath result in stream, a binary file (name: for
    messages)."""
    for no, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise BadInput("%s:%d: not UTF-8 (%s)" % (name, no, e.reason)) from e
        if not text:
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput("%s:%d: not JSON (%s)" % (name, no, e.msg)) from e
        if not isinstance(rec, dict) or rec.get("bench") != "hotpath" or \
                rec.get("diagnostic") or "profile" in rec:
            continue
        why = wrong_field(rec)
        if why is not None:
            raise BadInput("%s:%d: %s" % (name, no, why))
        yield rec


def key_of(rec):
    kind = "size_check" if "size_check" in rec else "row"
    return (kind, rec[kind], rec.get("threads", 1), rec.get("users", 0))


def read_runs(paths):
    """List of runs, each a dict key -> record, in the order read. The
    untagged lines of a file go to its current untagged run, never to a
    tagged one."""
    runs, where = [], {}
    for path in paths:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")
        with stream:
            untagged = None
            for rec in bench_lines(path, stream):
                tag = rec.get("run")
                if tag is not None:
                    run_id = (path, tag, rec.get("commit"))  # files reuse tags across commits
                    current = where.get(run_id)
                    if current is None:
                        current = where[run_id] = {}
                        runs.append(current)
                else:
                    if untagged is None or key_of(rec) in untagged:
                        untagged = {}
                        runs.append(untagged)
                    current = untagged
                current[key_of(rec)] = rec
    return runs


def summarise(runs):
    """One entry per row / size check, in first-seen order."""
    table = {}  # key -> its records, run by run (dicts keep insertion order)
    for run in runs:
        for key, rec in run.items():
            table.setdefault(key, []).append(rec)
    out = []
    for key, recs in table.items():
        ratios = [r["ratio"] for r in recs]
        judged = [r for r in recs if r.get("met") is not None]
        out.append({
            "kind": key[0], "row": key[1], "threads": key[2], "users": key[3],
            "target_min": recs[0].get("target_min"),
            "ratios": ratios, "met": [r.get("met") for r in recs],
            "runs": len(recs), "runs_met": sum(1 for r in judged if r["met"]),
            "runs_judged": len(judged), "median": round(statistics.median(ratios), 3),
        })
    return out


def mark(ratio, met):
    return "%.3f%s" % (ratio, {True: "*", False: "!", None: ""}[met])


def print_table(entries, nruns):
    print("%d runs; * met, ! not met, (k/n) runs that met the target" % nruns)
    for e in entries:
        if e["kind"] != "row":
            continue
        cells = " / ".join(mark(r, m) for r, m in zip(e["ratios"], e["met"]))
        verdict = "" if e["target_min"] is None else \
            "  (%d/%d, target %.2f)" % (e["runs_met"], e["runs_judged"], e["target_min"])
        print("%-30s %dt %8d  median %.3f  %s%s"
              % (e["row"], e["threads"], e["users"], e["median"], cells, verdict))
    for e in entries:
        if e["kind"] == "size_check" and e["runs_met"] < e["runs_judged"]:
            print("size check %s %dt at %d users failed in %d of %d runs: %s"
                  % (e["row"], e["threads"], e["users"], e["runs_judged"] - e["runs_met"],
                     e["runs_judged"], " / ".join("%.3f" % r for r in e["ratios"])))


def main(argv):
    args = argv[1:]
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    if not paths or any(a.startswith("--") for a in paths) or "-h" in paths:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    try:
        runs = read_runs(paths)
    except OSError as e:
        sys.stderr.write("hotpath_summary: %s: %s\n" % (e.filename, e.strerror))
        return 2
    except BadInput as e:
        sys.stderr.write("hotpath_summary: %s\n" % e)
        return 2
    if not runs:
        sys.stderr.write("hotpath_summary: no bench_hotpath line in %s\n" % " ".join(paths))
        return 2
    entries = summarise(runs)
    if as_json:
        for e in entries:
            print(json.dumps(e))
    else:
        print_table(entries, len(runs))
    return 0 if all(e["runs_met"] == e["runs_judged"] for e in entries) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: stop quietly
    sys.exit(main(sys.argv))
