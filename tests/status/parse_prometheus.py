#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Parse be_app_metrics_prometheus() output back with the reference parser
(prometheus_client.parser.text_string_to_metric_families) and check the
text exposition format line by line: HELP and TYPE before every family's
samples, counters named _total, histograms with cumulative le buckets
ending at +Inf equal to _count, and escaped label values that read back
as the original statement.

usage: parse_prometheus.py WRITER   (WRITER prints the exposition)
Exits 77 (meson: skipped) when prometheus_client is not installed."""
import math
import re
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # apt's python3-prometheus-client lives in the system Python, which may
    # not be the python3 first on PATH (pyenv, a venv): try it once.
    import os
    if os.path.exists("/usr/bin/python3") and not os.environ.get("BE_PROM_REEXEC"):
        os.environ["BE_PROM_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: python3-prometheus-client is not installed (apt-get install "
          "python3-prometheus-client); the exposition was NOT checked", file=sys.stderr)
    sys.exit(77)

WEIRD = 'CREATE TABLE "we""ird\\\n" (x)'  # the statement write_metrics.c runs

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')


def check_lines(text):
    """Every line: a HELP, a TYPE, or a sample of the family just declared."""
    declared, typed, family = set(), {}, None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            family = line.split()[2]
            assert family not in declared, f"line {n}: family {family} declared twice"
            declared.add(family)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == family, f"line {n}: TYPE of {name} after HELP of {family}"
            typed[name] = kind
            if kind == "counter":
                assert name.endswith("_total"), f"line {n}: counter {name} not named _total"
            continue
        m = SAMPLE.match(line)
        assert m, f"line {n}: not a sample line: {line!r}"
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name) if typed.get(family) == "histogram" else name
        assert base == family, f"line {n}: sample {name} outside its family {family}"
    return typed


def check_histograms(families):
    hists = 0
    for fam in families:
        if fam.type != "histogram":
            continue
        series = {}
        for s in fam.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if s.name.endswith("_bucket"):
                series[key]["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                series[key]["count"] = s.value
            elif s.name.endswith("_sum"):
                series[key]["sum"] = s.value
        for key, h in series.items():
            b = h["buckets"]
            assert b and b[-1][0] == math.inf, f"{fam.name}{key}: no +Inf bucket"
            assert [le for le, _ in b] == sorted(le for le, _ in b), f"{fam.name}{key}: le not sorted"
            counts = [c for _, c in b]
            assert counts == sorted(counts), f"{fam.name}{key}: buckets not cumulative {counts}"
            assert b[-1][1] == h["count"], f"{fam.name}{key}: +Inf {b[-1][1]} != _count {h['count']}"
            assert h["sum"] is not None and h["sum"] >= 0, f"{fam.name}{key}: no _sum"
            hists += 1
    return hists


def main():
    text = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
    typed = check_lines(text)
    families = list(text_string_to_metric_families(text))
    by_name = {f.name: f for f in families}
    # the reference parser names counter families without _total
    assert "backend_op_errors" in by_name or "backend_op_errors_total" in by_name, sorted(by_name)
    assert len(families) == len(typed), (len(families), len(typed))
    hists = check_histograms(families)
    calls = by_name.get("backend_op_calls") or by_name["backend_op_calls_total"]
    gets = [s for s in calls.samples if s.labels.get("op") == "user.get"]
    assert gets and gets[0].value == 51, gets
    timed = [s for s in by_name["backend_op_duration_seconds"].samples
             if s.name.endswith("_count") and s.labels.get("op") == "user.get"]
    assert timed and 1 <= timed[0].value <= 51, timed
    stmts = by_name.get("backend_statement_calls") or by_name["backend_statement_calls_total"]
    sqls = {s.labels["statement"] for s in stmts.samples}
    assert WEIRD in sqls, f"escaped label did not read back: {sorted(sqls)[:5]}"
    assert not any("prom@example.com" in s for s in sqls), "a literal reached a label"
    print(f"ok: {len(families)} families, {hists} histogram series, "
          f"{len(text.splitlines())} lines parsed back")


if __name__ == "__main__":
    main()
