"""docker-compose.yml and the Dockerfile describe the services the runner starts locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(services) == {
        "postgres", "redis", "migrate", "web", "worker", "trainer", "beat", "prometheus"
    }  # fmt: skip
    assert services["prometheus"]["profiles"] == ["monitoring"]  # optional, stock image
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    for name in ("postgres", "redis", "web", "worker", "trainer", "beat"):
        assert "test" in services[name]["healthcheck"], name
    assert set(compose["volumes"]) >= {"genreflow-data", "pgdata"}


def test_services_start_through_the_role_commands(compose: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from shared.cli.main import main

    services = compose["services"]
    genreflow = ["python", "-m", "shared"]
    for name, role in [("web", "web"), ("worker", "worker"), ("trainer", "trainer"),
                       ("beat", "beat"), ("migrate", "prepare")]:  # fmt: skip
        command = services[name]["command"]
        assert command[:4] == [*genreflow, role], name
        # Every option compose passes is one the command takes.
        assert CliRunner().invoke(main, [*command[3:], "--help"]).exit_code == 0, name
    worker = services["worker"]["command"]
    assert worker[worker.index("--queues") + 1] == "predict,webhooks"
    assert "container_name" not in services["worker"]  # --scale worker=N needs unique names


def test_app_services_share_data_and_wait_for_the_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]

    for name in ("web", "worker", "trainer", "beat"):
        service = services[name]
        assert "genreflow-data:/data" in service["volumes"], name
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["migrate"]["command"][-1] == "prepare"


def test_dockerfile_uses_python_311_slim_and_installs_in_place() -> None:
    text = (ROOT / "Dockerfile").read_text()

    assert "\nFROM python:3.11-slim\n" in text
    assert "pip install --no-deps -e ." in text
    assert "USER genreflow" in text
