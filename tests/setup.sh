#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make this machine ready to build libbackend: install the Debian 12 packages
# the build and tests need (apt-get, as root or through sudo), then configure
# the meson build directory given as $1 (default: build) unless it exists.
# Sourced by examples/run.sh and tests/run.sh, so both README commands work
# on a fresh machine that has only a C compiler, git and apt.
set -euo pipefail

BE_PACKAGES=(meson ninja-build pkg-config gcc g++ libc6-dev libsqlite3-dev libsodium-dev check
             python3 binutils universal-ctags)

# What the setup is doing goes to stderr: a first run installs packages and
# compiles everything (a minute or two), and should not look hung.
be_setup_say() { echo "setup: $*" >&2; }

be_install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  be_setup_say "installing ${#missing[@]} packages with apt-get: ${missing[*]}"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

be_setup_build() {
  local dir="${1:-build}"
  shift || true
  if [ ! -f "$dir/build.ninja" ]; then
    local extra=()
    # CI builds treat every warning as an error (the issue's -Werror in CI).
    [ "${CI:-}" = "true" ] && extra+=(-Dwerror=true)
    be_setup_say "configuring $dir (meson setup)"
    local log
    log=$(mktemp)
    meson setup "$dir" "${extra[@]}" "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
    rm -f "$log"
  fi
  # ninja's [done/total] progress on stderr (one updating line on a
  # terminal), and the compiler's words when something fails.
  be_setup_say "compiling in $dir (meson compile)"
  meson compile -C "$dir" >&2 || return 1
}

be_install_packages "${BE_PACKAGES[@]}"
