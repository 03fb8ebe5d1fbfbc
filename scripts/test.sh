#!/usr/bin/env bash
# The whole suite: fast unit tests, then slow end-to-end tests. Fails on any failure and
# treats "no tests collected" (pytest exit 5) as a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
run() {
  local rc=0
  "$PY" -m pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then echo "no tests collected for: $*" >&2; exit 1; fi
  return "$rc"
}
run -m "not slow" -q -p no:cacheprovider
run -m slow -q -p no:cacheprovider
