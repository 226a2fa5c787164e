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


def test_workers_consume_the_right_queues(compose: dict[str, Any]) -> None:
    services = compose["services"]

    worker, trainer = services["worker"]["command"], services["trainer"]["command"]
    assert worker[worker.index("-Q") + 1] == "predict,webhooks"
    assert "container_name" not in services["worker"]  # --scale worker=N needs unique names
    assert trainer[trainer.index("-Q") + 1] == "train"
    assert trainer[trainer.index("--concurrency") + 1] == "1"
    assert "beat" in services["beat"]["command"]


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
