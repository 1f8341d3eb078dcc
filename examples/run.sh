#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's first command: install what is missing, build, and run the
# example CLI (examples/backend-cli) through its demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
be_setup_build build
cli=./build/examples/backend-cli
if [ $# -gt 0 ]; then exec "$cli" "$@"; fi
"$cli" version
echo "--- every error code, its HTTP status and meaning"
"$cli" codes
echo "--- a validation error as RFC 9457 problem details"
"$cli" error-demo
echo "--- the services at work: users, auth, permissions, cache, audit, pool and query numbers"
"$cli" demo
