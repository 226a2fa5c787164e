"""On CI, a skipped test fails the run unless its reason is expected on that machine.

A skip says a capability is missing (no root for a tmpfs, no ``ip netns``, no bf16 CPU, no
PostgreSQL binaries, no Chromium, no team kit). On a developer's machine that is fine and
reported; on CI (``CI=true``) it would hide a lost capability behind a green run. So there every
skip must match one of the reasons listed in ``GENREFLOW_EXPECTED_SKIPS`` (substrings of the
skip reason, separated by ``;``), or the run fails, listing the unexpected skips.

The root ``conftest.py`` imports these hooks; under pytest-xdist they run in the controller,
which receives every worker's reports.
"""

from __future__ import annotations

import os

import pytest

EXPECTED_ENV = "GENREFLOW_EXPECTED_SKIPS"
_unexpected: list[str] = []


def on_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def expected_skips() -> list[str]:
    """Return the skip reasons this machine expects (from ``GENREFLOW_EXPECTED_SKIPS``)."""
    return [part.strip() for part in os.environ.get(EXPECTED_ENV, "").split(";") if part.strip()]


def skip_reason(report: pytest.TestReport) -> str:
    """Return the reason of a skipped test's report."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every unexpected skip of a CI run."""
    if not report.skipped or hasattr(report, "wasxfail") or not on_ci():
        return
    reason = skip_reason(report)
    if not any(expected in reason for expected in expected_skips()):
        _unexpected.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a CI run that had unexpected skips (only the controller, under xdist)."""
    if _unexpected and not hasattr(session.config, "workerinput") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the unexpected skips that failed a CI run."""
    if not _unexpected:
        return
    terminalreporter.section("skips not expected on this CI machine", red=True)
    terminalreporter.write_line(
        f"CI=true: each skip below fails the run; list a reason this machine cannot meet in "
        f"{EXPECTED_ENV} (';'-separated parts of the reason) to accept it."
    )
    for line in _unexpected:
        terminalreporter.write_line(line)
