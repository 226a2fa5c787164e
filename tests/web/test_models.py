"""GET/POST /api/v1/models: listing, activation, confusion matrices; GETs only read."""

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shared.store.config import Settings
from shared.store.orm import ModelVersion
from shared.store.registry import register_model
from tests.web.conftest import write_model_files
from tests.web.helpers import assert_problem
from worker.tasks import sync_registry

MODEL_KEYS = {
    "version", "created_at", "active", "genres", "metrics", "feature_config",
    "data_fingerprint", "training_run_id", "links",
}  # fmt: skip


# --- models ----------------------------------------------------------------------------------


def test_models_empty(client: Any) -> None:
    assert client.get("/api/v1/models").get_json() == {"items": [], "active_version": None}


def test_models_list_get_and_activate(
    client: Any, settings: Settings, db_session: Session, admin_headers: dict[str, str]
) -> None:
    register_model(
        db_session, write_model_files(settings.model_dir, "a", created_at="2026-01-01T00:00:00Z")
    )
    register_model(
        db_session, write_model_files(settings.model_dir, "b", created_at="2026-02-01T00:00:00Z"),
        activate=True,
    )  # fmt: skip
    db_session.commit()
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

    response = client.post("/api/v1/models/a/activate", headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json()["active"] is True
    listing = client.get("/api/v1/models").get_json()
    assert listing["active_version"] == "a"
    assert [m["active"] for m in listing["items"]] == [False, True]


def test_unknown_model_is_404(client: Any, admin_headers: dict[str, str]) -> None:
    assert_problem(client.get("/api/v1/models/nope"), 404, "model_not_found")
    assert_problem(
        client.post("/api/v1/models/nope/activate", headers=admin_headers), 404, "model_not_found"
    )
    assert_problem(client.get("/api/v1/models/nope/confusion-matrix.png"), 404, "model_not_found")


def test_activating_a_model_whose_file_is_gone_is_409(
    client: Any, settings: Settings, db_session: Session, admin_headers: dict[str, str]
) -> None:
    path = write_model_files(settings.model_dir, "gone")
    register_model(db_session, path)
    db_session.commit()
    path.unlink()
    assert_problem(
        client.post("/api/v1/models/gone/activate", headers=admin_headers),
        409,
        "model_file_missing",
    )


def test_confusion_matrix(client: Any, settings: Settings, db_session: Session) -> None:
    register_model(db_session, write_model_files(settings.model_dir, "with"))
    register_model(
        db_session, write_model_files(settings.model_dir, "without", confusion_png=False)
    )
    db_session.commit()
    response = client.get("/api/v1/models/with/confusion-matrix.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
    assert_problem(
        client.get("/api/v1/models/without/confusion-matrix.png"), 404, "confusion_matrix_not_found"
    )


def test_model_card(client: Any, settings: Settings, db_session: Session) -> None:
    carded = write_model_files(settings.model_dir, "carded")
    sidecar = json.loads(carded.with_suffix(".json").read_text())
    carded.with_suffix(".json").write_text(json.dumps({**sidecar, "card": "carded.md"}))
    (settings.model_dir / "carded.md").write_text("# Model card\n\nFour broad genres.\n")
    register_model(db_session, carded)
    register_model(db_session, write_model_files(settings.model_dir, "plain"))
    db_session.commit()
    response = client.get("/api/v1/models/carded/card")
    assert response.status_code == 200
    assert response.mimetype == "text/markdown"
    assert "Four broad genres" in response.get_data(as_text=True)
    items = {m["version"]: m for m in client.get("/api/v1/models").get_json()["items"]}
    assert items["carded"]["links"]["card"] == "/api/v1/models/carded/card"
    assert "card" not in items["plain"]["links"]
    assert_problem(client.get("/api/v1/models/plain/card"), 404, "model_card_not_found")


@pytest.mark.usefixtures("no_shipped_model")
def test_models_listing_is_a_pure_read_and_shows_synced_files(
    client: Any, settings: Settings
) -> None:
    write_model_files(settings.model_dir, "trained-by-cli")
    assert client.get("/api/v1/models").get_json() == {"items": [], "active_version": None}
    assert client.get("/ready").status_code == 503  # no write here either
    sync_registry(settings)  # what worker start-up and beat's genreflow.sync_models run
    listing = client.get("/api/v1/models").get_json()
    assert listing["active_version"] == "trained-by-cli"


def test_exactly_one_active_model_after_many_activations(
    client: Any, settings: Settings, db_session: Session, admin_headers: dict[str, str]
) -> None:
    for version in "abc":
        register_model(db_session, write_model_files(settings.model_dir, version))
    db_session.commit()
    for version in "abcacb":
        assert (
            client.post(f"/api/v1/models/{version}/activate", headers=admin_headers).status_code
            == 200
        )
    db_session.expire_all()
    assert [m.version for m in db_session.query(ModelVersion).filter_by(active=True)] == ["b"]
