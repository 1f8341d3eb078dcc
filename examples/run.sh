#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's first command: install what is missing, build (progress on
# stderr), and run backend-cli (cli/, installed by `meson install`) through
# its demo on build/demo.db. Safe to run again: the demo reuses what it
# seeded. With arguments, runs that backend-cli command instead, e.g.
# `bash examples/run.sh user list` (on build/demo.db unless --db is given).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
be_setup_build build
cli=./build/cli/backend-cli
export BACKEND_DB="${BACKEND_DB:-build/demo.db}"
if [ $# -gt 0 ]; then exec "$cli" "$@"; fi
"$cli" version
echo "--- every error code: its HTTP status, backend-cli exit code and meaning"
"$cli" codes
echo "--- a validation error as RFC 9457 problem details"
"$cli" error-demo
echo "--- the services at work on $BACKEND_DB: seed, users, auth, permissions, cache, N+1, audit, pool"
"$cli" demo
echo "--- next: $cli --db $BACKEND_DB --help (or bash examples/run.sh --help)"
