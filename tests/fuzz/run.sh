#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses (build dir build-fuzz: CC=clang,
# -Dfuzzing=true, ASan+UBSan) and run each for a bounded time from its
# committed corpus (tests/fuzz/corpus/<name>/: seeds and past crashes,
# which are replayed first). New inputs go to a scratch directory, never
# into the repository. Prints per harness the executions, exec/s and new
# inputs, then a total; exits 1 when any harness found a crash (the input
# is kept under the scratch directory, its path printed).
#
#   bash tests/fuzz/run.sh                      # every harness, 18 s each
#   bash tests/fuzz/run.sh --time 3600 --jobs 2 # an hour each, two at a time
#   bash tests/fuzz/run.sh --time 600 perm user # some of them
#
# Options: --time SECONDS per harness (default 18), --jobs N harnesses at
# once (default 1), --build DIR (default build-fuzz), --keep DIR (scratch
# directory to keep, e.g. to merge new inputs into the corpus by hand).
set -uo pipefail
cd "$(dirname "$0")/../.."

time_s=18 jobs=1 build=build-fuzz keep=""
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '3,19p' "$0"; exit 0 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
all=(error cursor token password perm user cache batch cli)
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all[@]}")

# Harnesses that keep a seeded app across inputs allocate on their first
# inputs (caches, prepared statements) and free at exit: libFuzzer's
# per-input leak check would stop at every input, so it is off for them;
# the others check for leaks after every input.
stateful=" cursor token password perm user "

if [ ! -f "$build/build.ninja" ]; then
  extra=()
  [ "${CI:-}" = "true" ] && extra+=(-Dwerror=true)
  CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Ddefault_library=static -Dtests=false -Dbenchmarks=false "${extra[@]}" >/dev/null || exit 1
fi
meson compile -C "$build" >/dev/null || { meson compile -C "$build" 2>&1 | tail -40; exit 1; }

scratch=${keep:-$(mktemp -d)}
mkdir -p "$scratch"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

run_one() {
  local h="$1" dir="$scratch/$1"
  mkdir -p "$dir/new" "$dir/crash"
  local leaks=1
  [[ "$stateful" == *" $h "* ]] && leaks=0
  "$build/tests/fuzz/fuzz_$h" -max_total_time="$time_s" -print_final_stats=1 -detect_leaks=$leaks \
    -timeout=30 -rss_limit_mb=2560 -max_len=4096 -artifact_prefix="$dir/crash/" \
    "$dir/new" "tests/fuzz/corpus/$h" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

running=0
for h in "${harnesses[@]}"; do
  [ -f "tests/fuzz/fuzz_$h.c" ] || { echo "no harness $h (have: ${all[*]})"; exit 2; }
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

failed=0 total=0
printf '%-10s %12s %10s %6s  %s\n' harness executions exec/s new result
for h in "${harnesses[@]}"; do
  dir="$scratch/$h"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$dir/log" | tail -1)
  rc=$(cat "$dir/rc")
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc): $(ls "$dir"/crash/* 2>/dev/null | head -1)"
    failed=$((failed + 1))
    echo "--- $h log (tail)"
    tail -40 "$dir/log"
  fi
  printf '%-10s %12s %10s %6s  %s\n' "$h" "${runs:-?}" "${rate:-?}" "${new:-?}" "$result"
  total=$((total + ${runs:-0}))
done
echo "total executions: $total in ${#harnesses[@]} harnesses, ${time_s} s each"
[ -z "$keep" ] && [ "$failed" -eq 0 ] && rm -rf "$scratch"
[ "$failed" -eq 0 ]
