#!/usr/bin/env bash
# One command, fresh machine: install genreflow with its test extras into ./.venv, install
# Chromium for the browser tests where this machine allows it (root + apt), then run the whole
# suite in parallel and print the ten slowest tests. pytest-xdist runs GENREFLOW_TEST_WORKERS
# processes (4 by default) test by test, except that the browser, integration and runner tests
# each stay on one worker (tests/conftest.py XDIST_GROUPS); every worker has its own Redis,
# databases, ports and homes. Extra arguments go to pytest (e.g. `scripts/test.sh -m "not
# browser"`, or `-n 0` for one process). The PostgreSQL tests use DATABASE_URL when it is
# PostgreSQL, else a private server the suite starts (tests/postgres_server.py: binaries from
# PATH or Debian's package, installed via apt when root).
# pytest's "no tests collected" (exit 5) is a failure here, never a silent pass.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh" test

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Chromium for the browser tests (apt-get)" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
            echo "==> could not install Chromium; browser tests will be skipped" >&2
    else
        echo "==> no Chromium and no root apt-get; browser tests will be skipped" >&2
    fi
fi

cd "$ROOT"
# Each worker shares the cores with the others and with the processes the tests start: one
# thread per numeric library (TensorFlow, oneDNN/OpenMP, OpenBLAS) keeps their thread pools from
# spinning against each other (four trainings at once on two cores: 26 % less CPU time).
export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-1}"
export TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
set +e
"$ROOT/.venv/bin/python" -m pytest -n "${GENREFLOW_TEST_WORKERS:-4}" --dist loadgroup \
    --durations=10 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    exit 1
fi
exit "$status"
