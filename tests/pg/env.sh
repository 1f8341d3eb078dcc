# SPDX-License-Identifier: MIT
# Sourced by tests/run.sh and .ci/run: start a throwaway PostgreSQL cluster
# (tests/pg/cluster.sh) unless BE_TEST_PG_DSN is already set, export its DSN
# as BE_TEST_PG_DSN for the PostgreSQL suites, and stop it when the shell
# exits. When no server can be started, say so loudly: the PostgreSQL
# suites then report SKIP (exit 77), never a pass.
be_pg_start() {
  if [ -n "${BE_TEST_PG_DSN:-}" ]; then
    echo "postgres: using BE_TEST_PG_DSN from the environment" >&2
    return 0
  fi
  local here dir dsn
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/be-pg.XXXXXX")
  if dsn=$(bash "$here/cluster.sh" start "$dir"); then
    export BE_TEST_PG_DSN="$dsn"
    export BE_TEST_PG_DIR="$dir"
    trap 'bash "'"$here"'/cluster.sh" stop "'"$dir"'"' EXIT
    echo "postgres: throwaway cluster in $dir ($BE_TEST_PG_DSN)" >&2
  else
    rm -rf "$dir"
    echo "################################################################" >&2
    echo "postgres: NO SERVER could be started; the PostgreSQL suites will" >&2
    echo "postgres: be SKIPPED (not run, not passed)" >&2
    echo "################################################################" >&2
  fi
}
