#!/usr/bin/env bash
# Create ./.venv with Python 3.11 or 3.12 and install genreflow into it (editable, with the
# given extras). Re-installs only when pyproject.toml changed. Sourced by run.sh and test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GENREFLOW_VENV:-$ROOT/.venv}"
EXTRAS="${1:-test}"

find_python() {
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; raise SystemExit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "genreflow needs Python 3.11 or 3.12 (TensorFlow has no wheels for newer ones yet)." >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON="$(find_python)"
    echo "==> creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$VENV"
fi

STAMP="$VENV/.genreflow-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "==> installing genreflow[$EXTRAS] into $VENV (first time: a few minutes, TensorFlow is large)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]" >&2
    echo "$WANT" > "$STAMP"
fi
