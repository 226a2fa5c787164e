"""The suite's sharing-out among xdist workers: each service group is one unit of work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scheduling import SERVICE_GROUPS, service_group, slow_first, work_unit

ROOT = Path(__file__).resolve().parents[1]


def test_every_service_group_names_a_path_that_exists() -> None:
    assert all((ROOT / prefix).exists() for prefix in SERVICE_GROUPS)


def test_a_file_of_its_own_beats_its_folders_group() -> None:
    assert service_group("tests/integration/test_runner.py::test_x") == "runner"
    assert service_group("tests/integration/test_jobs.py::test_y[a]") == "integration"
    assert service_group("tests/browser/test_classify_page.py::test_z") == "browser"
    assert service_group("tests/web/test_jobs.py::test_upload") is None


def test_the_groups_are_units_and_other_tests_their_own() -> None:
    ids = [
        "tests/browser/test_a.py::t1",
        "tests/browser/test_b.py::t2",
        "tests/web/test_c.py::t3",
        "tests/web/test_c.py::t4",
    ]
    scopes = [work_unit(nodeid) for nodeid in ids]
    assert scopes[0] == scopes[1] != scopes[2] != scopes[3]


def test_slow_tests_go_first_the_longest_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        def test_a(): pass
        @pytest.mark.slow
        def test_b(): pass
        def test_c(): pass
        @pytest.mark.slow
        def test_d(): pass
        @pytest.mark.slow(seconds=30)
        def test_e(): pass
        @pytest.mark.slow(seconds=60)
        def test_f(): pass
        """
    )
    items, _ = pytester.inline_genitems()
    slow_first(items)
    names = [item.name for item in items]
    assert names == ["test_f", "test_e", "test_b", "test_d", "test_a", "test_c"]
