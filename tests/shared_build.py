"""Build an expensive, read-only test fixture once per test run, whatever the xdist workers.

Under pytest-xdist every worker is its own session, so a session fixture would be built once per
worker: the tiny model trained four times over on two cores. :func:`build_once` builds it in the
run's shared temporary folder under a file lock: the first worker builds, the others wait for it
and read the result. Without xdist it is an ordinary session-wide build.

Only for what tests never change (a trained model, generated audio): every worker reads the same
files.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

#: How long a worker waits for another to finish a build (training under load is slow).
BUILD_WAIT_S = 900
DONE = ".built"


def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the temporary folder every worker of this run shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]
) -> Any:
    """Return what ``build(folder)`` returned when it filled ``folder``, building it only once.

    Parameters
    ----------
    tmp_path_factory : pytest.TempPathFactory
    name : str
        The folder's name in the run's shared temporary folder.
    build : callable(folder) -> picklable
        Fills the (existing, empty) folder; its return value is kept beside it, pickled.
    """
    folder = run_root(tmp_path_factory) / name
    with FileLock(str(folder) + ".lock", timeout=BUILD_WAIT_S):
        result_file = folder / DONE
        if not result_file.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir(parents=True)
            result = build(folder)
            result_file.write_bytes(pickle.dumps(result))
            return result
    return pickle.loads(result_file.read_bytes())
