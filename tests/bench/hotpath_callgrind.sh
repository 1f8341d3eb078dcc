#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per operation of each bench_hotpath row, library and raw
# sqlite3 side, counted by valgrind --tool=callgrind: unlike wall-clock
# ratios they do not move with the machine's load. Prints one JSON line per
# row: {"row":..., "users":..., "lib":..., "raw":..., "raw_over_lib":...}.
# (raw_over_lib is the ratio the bench's targets are about, in
# instructions.)
#
# usage: tests/bench/hotpath_callgrind.sh [build dir (build)] [users (10000)]
#        [cache dir (/tmp/bench_hotpath.cache)]
# Statement timing is sampled by how long runs take, and every run takes
# over 20 us under valgrind, so a plain build is profiled with every run
# timed; to count the sampled path a native run takes, profile a build
# made with
#   meson setup build-prof \
#     -Dc_args='-DBE__RUN_TIME_ALL_NS=INT64_MAX -DBE__METRICS_ALWAYS_NS=INT64_MAX'
# (the second: service calls of 1-20 us are timed one in 16, as natively,
# not every one)
# The bulk row writes to the database file under valgrind for a minute:
# do not point a bench_hotpath run at the same cache dir meanwhile (its
# own bulk row would wait past the busy timeout and fail).
set -euo pipefail
build=${1:-build}
users=${2:-10000}
dir=${3:-/tmp/bench_hotpath.cache}
bench="$build/tests/bench/bench_hotpath"
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
[ -x "$bench" ] || { echo "no $bench: build first" >&2; exit 1; }

# instructions inside function fn over a --profile run of row/side
count() { # row side fn ops
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$3" \
    "$bench" --users "$users" --cache-dir "$dir" --profile "$1" --side "$2" --ops "$4" \
    2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  rm -f "$out"
}

# row, lib side, lib function, raw function, operations, calls counted
# (the cache row warms 20,000 gets first, inside the counted function)
while read -r row side fn rawfn ops calls; do
  lib=$(count "$row" "$side" "$fn" "$ops")
  raw=$(count "$row" raw "$rawfn" "$ops")
  python3 - "$row" "$users" "$lib" "$raw" "$calls" "$side" <<'EOF'
import sys
row, users, lib, raw, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if sys.argv[6] != "lib": row += "_" + sys.argv[6]  # bulk_static: the same row, another lib side
print('{"row":"%s","users":%d,"lib":%.0f,"raw":%.0f,"raw_over_lib":%.3f}'
      % (row, users, lib / calls, raw / calls, raw / lib))
EOF
done <<'ROWS'
get lib lib_get raw_get 2000 2000
get_text lib lib_get_text raw_get 2000 2000
batch lib lib_batch raw_batch 10 10
loader lib lib_loader raw_batch 10 10
cache lib lib_cache raw_cache 20000 40000
user_get lib lib_user_get raw_user_get 2000 2000
bulk lib lib_bulk raw_bulk 1 1
bulk static lib_bulk_static raw_bulk 1 1
ROWS
