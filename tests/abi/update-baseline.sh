#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerate tests/abi/libbackend.abi, the ABI baseline CI diffs against
# (.ci/run fails on any reported change to public types or functions). Run it only when a
# release is cut, or before the first release while the API is still open;
# say so in ChangeLog. Builds with -g (debugoptimized) in build-abi/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/setup.sh
be_install_packages abigail-tools
be_setup_build build-abi -Dtests=false -Dbenchmarks=false
abidw --headers-dir include/backend build-abi/lib/libbackend.so.0 \
  --out-file tests/abi/libbackend.abi
echo "wrote tests/abi/libbackend.abi ($(grep -c '<elf-symbol ' tests/abi/libbackend.abi) symbols)"
