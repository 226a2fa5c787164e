"""/health and /ready, the OpenAPI document, and what the web process imports."""

import json
import re
import subprocess
import sys
import time
import warnings
from typing import Any

import pytest
import redis

from shared.lifecycle.warmth import mark_warm
from shared.store.config import Settings
from tests.redis_server import free_port, running_redis
from tests.web.conftest import make_app, wav_bytes
from tests.web.helpers import assert_problem

ENDPOINTS = {
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{job_id}"),
    ("get", "/api/v1/jobs/{job_id}/audio"),
    ("get", "/api/v1/jobs/{job_id}/deliveries"),
    ("delete", "/api/v1/jobs/{job_id}"),
    ("put", "/api/v1/jobs/{job_id}/label"),
    ("get", "/api/v1/jobs/{job_id}/label"),
    ("delete", "/api/v1/jobs/{job_id}/label"),
    ("get", "/api/v1/labels"),
    ("post", "/api/v1/labels/{job_id}/approve"),
    ("post", "/api/v1/labels/{job_id}/reject"),
    ("post", "/api/v1/models/train"),
    ("get", "/api/v1/training-runs"),
    ("get", "/api/v1/training-runs/{run_id}"),
    ("get", "/api/v1/models"),
    ("get", "/api/v1/models/{version}"),
    ("post", "/api/v1/models/{version}/activate"),
    ("get", "/api/v1/models/{version}/confusion-matrix.png"),
    ("get", "/health"),
    ("get", "/ready"),
}


def test_health(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_waits_for_a_warm_worker(
    client: Any, active_model: str, redis_client: redis.Redis
) -> None:
    body = assert_problem(client.get("/ready"), 503, "not_ready")
    assert body["failed"] == ["worker"]
    assert body["checks"]["worker"]["detail"].startswith("warming up")
    mark_warm(redis_client, "host:1", "an-older-version")  # a worker still on another model
    assert assert_problem(client.get("/ready"), 503, "not_ready")["failed"] == ["worker"]

    mark_warm(redis_client, "host:2", active_model)
    response = client.get("/ready")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "model": True,
        "worker": True,
        "disk": True,
    }
    assert active_model in body["checks"]["model"]["detail"]
    assert "1 predict process" in body["checks"]["worker"]["detail"]


def test_ready_forgets_a_worker_whose_key_expired(
    client: Any, active_model: str, redis_client: redis.Redis
) -> None:
    mark_warm(redis_client, "host:3", active_model, ttl_s=1)
    assert client.get("/ready").status_code == 200
    time.sleep(1.5)
    assert_problem(client.get("/ready"), 503, "not_ready")


def test_ready_without_a_model_is_503(client: Any) -> None:
    body = assert_problem(client.get("/ready"), 503, "not_ready")
    assert body["failed"] == ["model", "worker"]
    assert body["checks"]["database"]["ok"] is True


def test_ready_without_a_broker_is_503(
    settings: Settings, dead_redis_url: str, active_model: str
) -> None:
    client = make_app(settings.replace(redis_url=dead_redis_url)).test_client()
    body = assert_problem(client.get("/ready"), 503, "not_ready")
    assert body["failed"] == ["broker", "worker"]
    assert "broker" in body["detail"]


def test_ready_without_a_database_is_503(settings: Settings, tmp_path: Any) -> None:
    unmigrated = settings.replace(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    body = assert_problem(make_app(unmigrated).test_client().get("/ready"), 503, "not_ready")
    assert "model" in body["failed"]


def test_queue_recovers_when_the_broker_comes_back(settings: Settings, active_model: str) -> None:
    port = free_port()
    client = make_app(settings.replace(redis_url=f"redis://127.0.0.1:{port}/0")).test_client()
    data = {"file": (__import__("io").BytesIO(wav_bytes()), "a.wav")}
    assert_problem(client.post("/api/v1/jobs", data=data), 503, "queue_unavailable")
    with running_redis(port=port):
        data = {"file": (__import__("io").BytesIO(wav_bytes()), "a.wav")}
        assert client.post("/api/v1/jobs", data=data).status_code == 202
        mark_warm(redis.Redis(port=port), "host:1", active_model)
        assert client.get("/ready").status_code == 200


def test_openapi_describes_every_endpoint(client: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a schema registered twice
        spec = client.get("/openapi.json").get_json()
    refs = set(re.findall(r"#/components/schemas/(\w+)", json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"])
    assert not [name for name in spec["components"]["schemas"] if name[-1].isdigit()]
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented >= ENDPOINTS
    upload = spec["paths"]["/api/v1/jobs"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"202", "400", "413", "415", "503"} <= set(upload["responses"])
    assert "ProblemOut" in spec["components"]["schemas"]
    assert "JobOut" in spec["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert b"openapi.json" in docs.data


NO_HEAVY_IMPORTS = """
import io, json, sys, tempfile
from shared.store.config import Settings
from web import create_app
home = tempfile.mkdtemp()
settings = Settings.from_env({"GENREFLOW_HOME": home, "REDIS_URL": sys.argv[1]})
app = create_app(settings, upgrade_db=True, config={"TESTING": True})
client = app.test_client()
statuses = [
    client.get("/health").status_code,
    client.get("/ready").status_code,
    client.get("/api/v1/jobs").status_code,
    client.get("/api/v1/models").status_code,
    client.post("/api/v1/jobs", data={"file": (io.BytesIO(b"RIFF0000WAVE"), "a.wav")}).status_code,
    client.get("/openapi.json").status_code,
    client.get("/").status_code,
]
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {"tensorflow", "keras", "librosa", "worker", "numba", "sklearn"}
)
print(json.dumps({"heavy": heavy, "statuses": statuses}))
"""


def test_web_process_never_imports_tensorflow_librosa_or_worker(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_HEAVY_IMPORTS, redis_url],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["statuses"][:4] == [200, 503, 200, 200]
    assert result["statuses"][4] == 503  # no model yet


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/models", "/health"])
def test_json_answers_are_json(client: Any, path: str) -> None:
    assert client.get(path).mimetype == "application/json"
