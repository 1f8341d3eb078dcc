#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check the C sources against .clang-format: list every file clang-format
# would change and exit 1 if there is one. With --fix, reformat them in
# place instead (what `meson compile -C build format` runs).
# .clang-format is tuned for clang-format 14 (Debian 12); set CLANG_FORMAT
# to use another binary. Exits 77 (skipped) when clang-format is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cf="${CLANG_FORMAT:-clang-format}"
if ! command -v "$cf" >/dev/null; then
  echo "check_format: $cf not installed; skipped" >&2
  exit 77
fi
files=(include/backend/*.h lib/*.c lib/*.h tests/*.c tests/*.h tests/reliability/*.c tests/reliability/*.h
       tests/fuzz/*.c tests/fuzz/*.h tests/bench/*.c cli/*.c cli/*.h)
if [ "${1:-}" = "--fix" ]; then
  "$cf" -i --style=file "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$cf" --dry-run -Werror --style=file "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '%s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files not formatted; run meson compile -C build format (or tests/check_format.sh --fix)" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
