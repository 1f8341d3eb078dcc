#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: install what is missing, build, start a
# throwaway PostgreSQL cluster (stopped on exit), run every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
be_setup_build build
source tests/pg/env.sh
be_pg_start
meson test -C build --print-errorlogs "$@"
