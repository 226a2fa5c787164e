from pathlib import Path
from typing import Any

import redis
from sqlalchemy.orm import Session

from shared.store.config import Settings
from shared.store.orm import ModelVersion, TrainingRun
from shared.store.registry import register_model
from tests.service.conftest import write_model_files
from tests.service.helpers import assert_problem, queued_tasks

MODEL_KEYS = {
    "version", "created_at", "active", "genres", "metrics", "feature_config",
    "data_fingerprint", "training_run_id", "links",
}  # fmt: skip
RUN_KEYS = {
    "id", "status", "progress", "stage", "trigger", "created_at", "started_at", "finished_at",
    "model_version", "activated", "metrics", "error", "links",
}  # fmt: skip


def _app_with(settings: Settings) -> Any:
    from web import create_app

    return create_app(settings, config={"TESTING": True})


# --- models ----------------------------------------------------------------------------------


def test_models_empty(client: Any) -> None:
    assert client.get("/api/v1/models").get_json() == {"items": [], "active_version": None}


def test_models_list_get_and_activate(client: Any, settings: Settings, db: Session) -> None:
    register_model(
        db, write_model_files(settings.model_dir, "a", created_at="2026-01-01T00:00:00Z")
    )
    register_model(
        db, write_model_files(settings.model_dir, "b", created_at="2026-02-01T00:00:00Z"),
        activate=True,
    )  # fmt: skip
    db.commit()
    listing = client.get("/api/v1/models").get_json()
    assert listing["active_version"] == "b"
    assert [m["version"] for m in listing["items"]] == ["b", "a"]
    model = listing["items"][1]
    assert set(model) == MODEL_KEYS
    assert model["links"] == {
        "self": "/api/v1/models/a",
        "activate": "/api/v1/models/a/activate",
        "confusion_matrix": "/api/v1/models/a/confusion-matrix.png",
    }
    assert model["genres"] == ["blues", "classical", "rock"]
    assert model["metrics"]["track_accuracy_vote"] == 0.8
    assert client.get("/api/v1/models/a").get_json() == model

    response = client.post("/api/v1/models/a/activate")
    assert response.status_code == 200
    assert response.get_json()["active"] is True
    listing = client.get("/api/v1/models").get_json()
    assert listing["active_version"] == "a"
    assert [m["active"] for m in listing["items"]] == [False, True]


def test_unknown_model_is_404(client: Any) -> None:
    assert_problem(client.get("/api/v1/models/nope"), 404, "model_not_found")
    assert_problem(client.post("/api/v1/models/nope/activate"), 404, "model_not_found")
    assert_problem(client.get("/api/v1/models/nope/confusion-matrix.png"), 404, "model_not_found")


def test_activating_a_model_whose_file_is_gone_is_409(
    client: Any, settings: Settings, db: Session
) -> None:
    path = write_model_files(settings.model_dir, "gone")
    register_model(db, path)
    db.commit()
    path.unlink()
    assert_problem(client.post("/api/v1/models/gone/activate"), 409, "model_file_missing")


def test_confusion_matrix(client: Any, settings: Settings, db: Session) -> None:
    register_model(db, write_model_files(settings.model_dir, "with"))
    register_model(db, write_model_files(settings.model_dir, "without", confusion_png=False))
    db.commit()
    response = client.get("/api/v1/models/with/confusion-matrix.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
    assert_problem(
        client.get("/api/v1/models/without/confusion-matrix.png"), 404, "confusion_matrix_not_found"
    )


def test_models_listing_registers_new_files(client: Any, settings: Settings) -> None:
    write_model_files(settings.model_dir, "trained-by-cli")
    listing = client.get("/api/v1/models").get_json()
    assert listing["active_version"] == "trained-by-cli"


# --- training --------------------------------------------------------------------------------


def test_training_without_a_data_dir_is_409(client: Any, redis_client: redis.Redis) -> None:
    body = assert_problem(client.post("/api/v1/models/train"), 409, "training_not_configured")
    assert "GENREFLOW_TRAIN_DATA_DIR" in body["detail"]
    assert queued_tasks(redis_client, "train") == []
    assert client.get("/api/v1/training-runs").get_json()["total"] == 0


def test_training_with_a_missing_data_dir_is_422(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    app = _app_with(settings.replace(train_data_dir=tmp_path / "nowhere"))
    body = assert_problem(
        app.test_client().post("/api/v1/models/train"), 422, "training_data_missing"
    )
    assert "nowhere" in body["detail"]
    assert queued_tasks(redis_client, "train") == []


def test_training_is_queued(settings: Settings, redis_client: redis.Redis, tmp_path: Path) -> None:
    data_dir = tmp_path / "gtzan"
    (data_dir / "rock").mkdir(parents=True)
    client = _app_with(settings.replace(train_data_dir=data_dir)).test_client()
    response = client.post("/api/v1/models/train")
    assert response.status_code == 202
    run = response.get_json()
    assert set(run) == RUN_KEYS
    assert run["status"] == "queued"
    assert run["trigger"] == "api"
    assert run["activated"] is False
    assert response.headers["Location"] == f"/api/v1/training-runs/{run['id']}"
    assert run["links"]["self"] == response.headers["Location"]
    tasks = queued_tasks(redis_client, "train")
    assert [(t["task"], t["args"]) for t in tasks] == [("genreflow.train_model", [run["id"]])]

    assert client.get(f"/api/v1/training-runs/{run['id']}").get_json() == run
    listing = client.get("/api/v1/training-runs").get_json()
    assert listing["total"] == 1
    assert [r["id"] for r in listing["items"]] == [run["id"]]

    busy = assert_problem(client.post("/api/v1/models/train"), 409, "training_in_progress")
    assert busy["training_run_id"] == run["id"]
    assert len(queued_tasks(redis_client, "train")) == 1


def test_training_with_the_broker_down_is_503(
    settings: Settings, dead_redis_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "gtzan"
    data_dir.mkdir()
    app = _app_with(settings.replace(train_data_dir=data_dir, redis_url=dead_redis_url))
    client = app.test_client()
    body = assert_problem(client.post("/api/v1/models/train"), 503, "queue_unavailable")
    run = client.get(f"/api/v1/training-runs/{body['training_run_id']}").get_json()
    assert run["status"] == "failed"
    assert run["error"]["code"] == "queue_unavailable"
    # the failed run does not block the next attempt
    assert_problem(client.post("/api/v1/models/train"), 503, "queue_unavailable")


def test_training_run_shapes(client: Any, db: Session) -> None:
    run = TrainingRun(
        trigger="schedule", status="done", progress=1.0, stage="done", model_version="v9",
        activated=True, metrics={"track_accuracy_vote": 0.9},
    )  # fmt: skip
    failed = TrainingRun(trigger="cli", status="failed", error_detail="no audio found")
    db.add_all([run, failed])
    db.commit()
    body = client.get(f"/api/v1/training-runs/{run.id}").get_json()
    assert body["links"] == {
        "self": f"/api/v1/training-runs/{run.id}",
        "model": "/api/v1/models/v9",
    }
    assert body["metrics"] == {"track_accuracy_vote": 0.9}
    assert body["error"] is None
    error = client.get(f"/api/v1/training-runs/{failed.id}").get_json()["error"]
    assert error == {"code": "training_failed", "detail": "no audio found"}


def test_training_runs_404_and_paging(client: Any, db: Session) -> None:
    assert_problem(client.get("/api/v1/training-runs/nope"), 404, "training_run_not_found")
    db.add_all([TrainingRun(trigger="cli", status="done") for _ in range(3)])
    db.commit()
    page = client.get("/api/v1/training-runs?per_page=2&page=2").get_json()
    assert (page["total"], page["page"], page["per_page"], len(page["items"])) == (3, 2, 2, 1)
    assert_problem(client.get("/api/v1/training-runs?per_page=0"), 400, "invalid_request")


def test_exactly_one_active_model_after_many_activations(
    client: Any, settings: Settings, db: Session
) -> None:
    for version in "abc":
        register_model(db, write_model_files(settings.model_dir, version))
    db.commit()
    for version in "abcacb":
        assert client.post(f"/api/v1/models/{version}/activate").status_code == 200
    db.expire_all()
    assert [m.version for m in db.query(ModelVersion).filter_by(active=True)] == ["b"]
