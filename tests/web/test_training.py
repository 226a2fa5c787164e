"""POST /api/v1/models/train and the training-run listings."""

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPES, WEIGHTS_DIR
from shared.store.config import Settings
from shared.store.orm import TrainingRun
from tests.web.conftest import make_app, write_model_files
from tests.web.helpers import assert_problem, queued_tasks

RUN_KEYS = {
    "id", "status", "progress", "stage", "trigger", "created_at", "started_at", "finished_at",
    "model_version", "activated", "metrics", "error", "links",
}  # fmt: skip


# --- training --------------------------------------------------------------------------------


def test_training_without_a_data_dir_is_409(
    client: Any, redis_client: redis.Redis, admin_headers: dict[str, str]
) -> None:
    body = assert_problem(
        client.post("/api/v1/models/train", headers=admin_headers), 409, "training_not_configured"
    )
    assert "GENREFLOW_TRAIN_DATA_DIR" in body["detail"]
    assert queued_tasks(redis_client, "train") == []
    assert client.get("/api/v1/training-runs").get_json()["total"] == 0


def test_training_with_a_missing_data_dir_is_422(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    app = make_app(settings.replace(train_data_dir=tmp_path / "nowhere"))
    body = assert_problem(
        app.test_client().post("/api/v1/models/train", headers=admin_headers),
        422,
        "training_data_missing",
    )
    assert "nowhere" in body["detail"]
    assert queued_tasks(redis_client, "train") == []


def test_training_is_queued(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    data_dir = tmp_path / "gtzan"
    (data_dir / "rock").mkdir(parents=True)
    client = make_app(settings.replace(train_data_dir=data_dir)).test_client()
    response = client.post("/api/v1/models/train", headers=admin_headers)
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

    busy = assert_problem(
        client.post("/api/v1/models/train", headers=admin_headers), 409, "training_in_progress"
    )
    assert busy["training_run_id"] == run["id"]
    assert len(queued_tasks(redis_client, "train")) == 1


def test_training_with_the_broker_down_is_503(
    settings: Settings, dead_redis_url: str, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    data_dir = tmp_path / "gtzan"
    data_dir.mkdir()
    app = make_app(settings.replace(train_data_dir=data_dir, redis_url=dead_redis_url))
    client = app.test_client()
    body = assert_problem(
        client.post("/api/v1/models/train", headers=admin_headers), 503, "queue_unavailable"
    )
    run = client.get(f"/api/v1/training-runs/{body['training_run_id']}").get_json()
    assert run["status"] == "failed"
    assert run["error"]["code"] == "queue_unavailable"
    # the failed run does not block the next attempt
    assert_problem(
        client.post("/api/v1/models/train", headers=admin_headers), 503, "queue_unavailable"
    )


def test_training_run_shapes(client: Any, db_session: Session) -> None:
    run = TrainingRun(
        trigger="schedule", status="done", progress=1.0, stage="done", model_version="v9",
        activated=True, metrics={"track_accuracy_vote": 0.9},
    )  # fmt: skip
    failed = TrainingRun(trigger="cli", status="failed", error_detail="no audio found")
    db_session.add_all([run, failed])
    db_session.commit()
    body = client.get(f"/api/v1/training-runs/{run.id}").get_json()
    assert body["links"] == {
        "self": f"/api/v1/training-runs/{run.id}",
        "model": "/api/v1/models/v9",
    }
    assert body["metrics"] == {"track_accuracy_vote": 0.9}
    assert body["error"] is None
    error = client.get(f"/api/v1/training-runs/{failed.id}").get_json()["error"]
    assert error == {"code": "training_failed", "detail": "no audio found"}


def test_training_runs_404_and_paging(client: Any, db_session: Session) -> None:
    assert_problem(client.get("/api/v1/training-runs/nope"), 404, "training_run_not_found")
    db_session.add_all([TrainingRun(trigger="cli", status="done") for _ in range(3)])
    db_session.commit()
    page = client.get("/api/v1/training-runs?per_page=2&page=2").get_json()
    assert (page["total"], page["page"], page["per_page"], len(page["items"])) == (3, 2, 2, 1)
    assert_problem(client.get("/api/v1/training-runs?per_page=0"), 400, "invalid_request")


# --- the recipe of a run ---------------------------------------------------------------------


def _training_client(settings: Settings, tmp_path: Path) -> Any:
    data_dir = tmp_path / "gtzan"
    (data_dir / "rock").mkdir(parents=True)
    return make_app(settings.replace(train_data_dir=data_dir)).test_client()


def _post_train(
    settings: Settings, tmp_path: Path, headers: dict[str, str], body: Any
) -> tuple[Any, Any]:
    """POST ``body`` to the train endpoint of an app with a training folder: (client, response)."""
    client = _training_client(settings, tmp_path)
    return client, client.post("/api/v1/models/train", json=body, headers=headers)


def test_training_with_a_named_recipe_keeps_it_on_the_run(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    _, response = _post_train(settings, tmp_path, admin_headers, {"recipe": "musicnn-pool"})
    assert response.status_code == 202, response.get_data(as_text=True)
    metrics = response.get_json()["metrics"]
    assert metrics == {"recipe": RECIPES["musicnn-pool"].to_dict(), "recipe_source": "request"}
    # the worker reads it from the run: only the id travels
    tasks = queued_tasks(redis_client, "train")
    assert [t["args"] for t in tasks] == [[response.get_json()["id"]]]


def test_training_with_a_recipe_object(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    body = {"recipe": {"embedding": "pool", "deltas": True, "epochs": 20}}
    _, response = _post_train(settings, tmp_path, admin_headers, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    recipe = response.get_json()["metrics"]["recipe"]
    assert (recipe["name"], recipe["embedding"], recipe["deltas"], recipe["epochs"]) == (
        "custom", "pool", True, 20,
    )  # fmt: skip


def test_training_without_a_recipe_uses_the_active_models(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    from shared.core.nets.sidecar import write_sidecar
    from shared.store.db import session_scope
    from shared.store.registry import register_model

    path = write_model_files(settings.model_dir, "v-musicnn")
    card = json.loads(path.with_suffix(".json").read_text())
    write_sidecar(path, {**card, "recipe": RECIPES["musicnn"].to_dict()})
    with session_scope(settings.database_url) as session:
        register_model(session, path, activate=True)
    client = _training_client(settings, tmp_path)

    # no body at all, an empty object and a null recipe all mean "the active model's"
    for kwargs in ({}, {"json": {}}, {"json": {"recipe": None}}):
        response = client.post("/api/v1/models/train", headers=admin_headers, **kwargs)
        assert response.status_code == 202, response.get_data(as_text=True)
        assert response.get_json()["metrics"] == {
            "recipe": RECIPES["musicnn"].to_dict(),
            "recipe_source": "active model v-musicnn",
        }
        redis_client.delete("train")
        with session_scope(settings.database_url) as session:
            session.get(TrainingRun, response.get_json()["id"]).status = "skipped"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"recipe": "nope"}, "Unknown recipe 'nope'"),
        ({"recipe": {"architecture": "gru"}}, "'architecture' must be one of"),
        ({"recipe": {"epochs": -1}}, "'epochs' must be an integer"),
        ({"recipe": 3}, "must be a name or a JSON object"),
        ({"recipe": "seed", "epochs": 3}, "Unknown member(s) epochs"),
        (["seed"], "The body must be a JSON object"),
    ],
)
def test_an_invalid_recipe_is_422_and_starts_nothing(
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    admin_headers: dict[str, str],
    body: Any,
    words: str,
) -> None:
    client, response = _post_train(settings, tmp_path, admin_headers, body)
    problem = assert_problem(response, 422, "invalid_recipe")
    assert words in problem["detail"]
    assert queued_tasks(redis_client, "train") == []
    assert client.get("/api/v1/training-runs").get_json()["total"] == 0


def test_a_body_that_is_not_json_is_400_and_starts_nothing(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    client = _training_client(settings, tmp_path)
    response = client.post(
        "/api/v1/models/train", data="recipe=seed", content_type="application/json",
        headers=admin_headers,
    )  # fmt: skip
    assert_problem(response, 400)
    assert queued_tasks(redis_client, "train") == []
    assert client.get("/api/v1/training-runs").get_json()["total"] == 0


@pytest.mark.skipif(
    (WEIGHTS_DIR / "MTT_musicnn.npz").is_file(), reason="the MTT_musicnn weights are installed"
)
def test_a_recipe_whose_musicnn_weights_are_missing_is_409(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    _, response = _post_train(settings, tmp_path, admin_headers, {"recipe": "musicnn-mtt"})
    problem = assert_problem(response, 409, "recipe_unavailable")
    assert "scripts/convert_musicnn.py" in problem["detail"]
    assert queued_tasks(redis_client, "train") == []
