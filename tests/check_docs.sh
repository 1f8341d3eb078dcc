#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the API reference (doxygen) and fail when doxygen warned about
# anything: an undocumented entity, parameter or return value, or a broken
# doc command. The warnings are printed and stay in
# <builddir>/docs/doxygen-warnings.log. Usage: tests/check_docs.sh [builddir]
# (default: build-docs, configured with -Ddocs=enabled if missing; an
# existing dir without the docs target, e.g. one configured before doxygen
# was installed, is reconfigured with -Ddocs=enabled).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build-docs}"
source tests/setup.sh
be_install_packages doxygen
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Ddocs=enabled -Dtests=false -Dbenchmarks=false >/dev/null
elif ! grep -q '^build docs/html:' "$dir/build.ninja"; then
  meson setup --reconfigure "$dir" -Ddocs=enabled >/dev/null
fi
meson compile -C "$dir" docs >/dev/null
log="$dir/docs/doxygen-warnings.log"
[ -f "$log" ] || { echo "check_docs: $log missing; is the docs option disabled in $dir?" >&2; exit 1; }
if [ -s "$log" ]; then
  cat "$log"
  echo "check_docs: $(grep -c ': warning: ' "$log") doxygen warnings (full list: $log)" >&2
  exit 1
fi
echo "check_docs: no doxygen warnings"
