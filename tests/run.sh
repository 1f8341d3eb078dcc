#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: install what is missing, build, run every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
be_setup_build build
meson test -C build --print-errorlogs "$@"
