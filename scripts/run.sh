#!/usr/bin/env bash
# One command, fresh machine: install genreflow into ./.venv, then start Redis, the web server,
# the predict and training workers and the scheduler. Open the printed URL; Ctrl-C stops all.
# Everything lives under $GENREFLOW_HOME (default ./var). Options: see `genreflow run --help`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh" test
cd "$ROOT"
exec "$ROOT/.venv/bin/genreflow" run "$@"
