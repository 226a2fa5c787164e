"""How the suite's tests are shared out among pytest-xdist workers (``--dist loadgroup``).

Most tests go one by one to whichever worker is free. The tests of a :data:`SERVICE_GROUPS`
folder or file share a session-wide service (a Celery worker, Chromium, ``genreflow run``) that
every worker running any of them would start for itself, so each group is one unit of work on one
worker. Grouping is by path, not by xdist's ``xdist_group`` mark, which pytest 9.2 no longer
lets xdist 3.8 apply (it rewrites ``Item._nodeid``; pytest 9.2 reads ``Item._id``).

Units are handed out biggest first (xdist's own reordering), then in collection order, which
:func:`slow_first` makes "slow-marked tests first, the longest first", so that a long test
does not start last.
"""

from __future__ import annotations

from typing import Final

import pytest
from xdist.scheduler import LoadScopeScheduling

#: Path prefix (from the repository root) -> group; the first prefix that matches wins.
SERVICE_GROUPS: Final = {
    "tests/browser/": "browser",
    "tests/integration/test_runner.py": "runner",
    "tests/integration/": "integration",
}


def service_group(nodeid: str) -> str | None:
    """Return the group of the test ``nodeid``, or None for a test of its own."""
    path = nodeid.split("::", 1)[0]
    return next((g for prefix, g in SERVICE_GROUPS.items() if path.startswith(prefix)), None)


def work_unit(nodeid: str) -> str:
    """Return the unit of work of test ``nodeid``: its service group, else the test itself."""
    group = service_group(nodeid)
    return f"group:{group}" if group is not None else nodeid


class ServiceGroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with :func:`work_unit` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


def slow_first(items: list[pytest.Item]) -> None:
    """Move the tests marked ``slow`` to the front, the longest first; keep the order otherwise.

    ``pytest.mark.slow(seconds=N)`` says about how long a test takes on a quiet 2-core machine;
    a plain ``slow`` counts as 0.
    """

    def key(item: pytest.Item) -> tuple[bool, float]:
        mark = item.get_closest_marker("slow")
        return (mark is None, -float(mark.kwargs.get("seconds", 0)) if mark else 0.0)

    items.sort(key=key)
