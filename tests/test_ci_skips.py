"""On CI an unexpected skip fails the run; an expected one, or any skip off CI, does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = """
import pytest

def test_needs_a_browser():
    pytest.skip("no Chromium executable (looked for /usr/bin/chromium)")

def test_runs():
    pass
"""


def run_suite(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_sample.py").write_text(TESTS)
    environ = {k: v for k, v in os.environ.items() if k not in {"CI", "GENREFLOW_EXPECTED_SKIPS"}}
    # No third-party plugins (schemathesis, playwright): the sample needs none, and they are slow.
    environ.update(env, PYTHONPATH=str(ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_skips", "-p", "no:cacheprovider",
         "--rootdir", str(folder), "-q", *args, str(folder)],
        cwd=folder, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_off_ci_a_skip_is_reported_and_passes(tmp_path: Path) -> None:
    run = run_suite(tmp_path)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1 skipped" in run.stdout


@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["serial", "xdist"])
def test_on_ci_an_unexpected_skip_fails_the_run_and_names_it(
    tmp_path: Path, workers: list[str]
) -> None:
    run = run_suite(tmp_path, *workers, CI="true")
    assert run.returncode == 1, run.stdout
    assert "skips not expected on this CI machine" in run.stdout
    assert "test_sample.py::test_needs_a_browser: no Chromium executable" in run.stdout


def test_on_ci_a_skip_listed_for_the_machine_passes(tmp_path: Path) -> None:
    run = run_suite(tmp_path, CI="true", GENREFLOW_EXPECTED_SKIPS="no bf16; no Chromium")
    assert run.returncode == 0, run.stdout
    assert "skips not expected" not in run.stdout
