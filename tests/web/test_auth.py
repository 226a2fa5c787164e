"""API keys at the door: 401 without a usable key, 403 for a too-small scope, own jobs only."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select

from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.keys import hash_token
from shared.store.orm import ApiKey, Job
from tests.web.conftest import make_key, wav_bytes
from tests.web.helpers import assert_problem

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}  # a client that is not on loopback


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(
    client: Any,
    headers: dict[str, str] | None = None,
    *,
    form: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    payload = {"file": (io.BytesIO(wav_bytes()), "song.wav"), **(form or {})}
    return client.post(
        "/api/v1/jobs",
        data=payload,
        content_type="multipart/form-data",
        headers=headers or {},
        **kwargs,
    )


def _app(settings: Settings) -> Any:
    from web import create_app

    return create_app(settings, config={"TESTING": True})


def test_upload_without_a_key_is_refused_when_keys_are_required(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    client = _app(settings.replace(require_keys=True)).test_client()
    body = assert_problem(upload(client), 401, "unauthorized")
    response = upload(client)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "genreflow keys create" in body["detail"]
    token = make_key(settings, "classify")
    assert upload(client, bearer(token)).status_code == 202


def test_the_upload_page_asks_for_a_key_when_keys_are_required(
    settings: Settings, redis_client: Any
) -> None:
    strict = _app(settings.replace(require_keys=True)).test_client()
    page = strict.get("/").get_data(as_text=True)
    assert 'id="client-key-form"' in page
    assert 'id="client-key-input"' in page
    # The page's script wires the panel and sends the key with the upload and every read.
    script = strict.get("/assets/js/clientkey.js")
    assert script.status_code == 200
    api = strict.get("/assets/js/api.js").get_data(as_text=True)
    assert 'xhr.setRequestHeader("Authorization"' in api
    assert "{ key = storedKey() }" in api
    # An open service (keys not required) shows no key panel.
    assert 'id="client-key"' not in _app(settings).test_client().get("/").get_data(as_text=True)


def test_open_on_loopback_but_not_from_elsewhere(client: Any, active_model: str) -> None:
    assert upload(client).status_code == 202  # the test client comes from 127.0.0.1
    assert_problem(upload(client, environ_base=REMOTE), 401, "unauthorized")
    assert_problem(client.get("/api/v1/jobs", environ_base=REMOTE), 401, "unauthorized")


def test_a_classify_key_is_refused_on_admin_endpoints(
    client: Any, settings: Settings, active_model: str
) -> None:
    headers = bearer(make_key(settings, "classify"))
    for method, path in (
        ("post", "/api/v1/models/train"),
        ("post", f"/api/v1/models/{active_model}/activate"),
        ("get", "/api/v1/keys"),
        ("post", "/api/v1/keys"),
    ):
        response = getattr(client, method)(path, headers=headers, json={})
        assert_problem(response, 403, "forbidden")
        assert "admin" in response.get_json()["detail"]


def test_admin_endpoints_need_a_key_even_on_loopback(client: Any, active_model: str) -> None:
    response = client.post(f"/api/v1/models/{active_model}/activate")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.post("/api/v1/models/train"), 401, "unauthorized")


def test_a_revoked_key_is_refused(client: Any, admin_headers: dict[str, str]) -> None:
    made = client.post(
        "/api/v1/keys", json={"name": "phone app", "scope": "classify"}, headers=admin_headers
    )
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    key = made.get_json()
    headers = bearer(key["key"])
    assert client.get("/api/v1/jobs", headers=headers, environ_base=REMOTE).status_code == 200

    assert client.get(made.headers["Location"], headers=admin_headers).get_json()["active"]
    revoked = client.delete(f"/api/v1/keys/{key['id']}", headers=admin_headers)
    assert revoked.status_code == 200
    assert revoked.get_json()["active"] is False
    response = client.get("/api/v1/jobs", headers=headers, environ_base=REMOTE)
    assert_problem(response, 401, "invalid_api_key")
    # even on loopback, where no key would do, a revoked one is refused
    assert_problem(client.get("/api/v1/jobs", headers=headers), 401, "invalid_api_key")


def test_malformed_and_unknown_keys_are_401(client: Any) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer gf_not-a-real-key", "gf_x"):
        response = client.get("/api/v1/jobs", headers={"Authorization": header})
        assert_problem(response, 401, "invalid_api_key")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_stored_key_is_a_hash_not_the_key(
    client: Any, settings: Settings, admin_headers: dict[str, str]
) -> None:
    made = client.post("/api/v1/keys", json={"name": "n", "scope": "admin"}, headers=admin_headers)
    token = made.get_json()["key"]
    assert token.startswith("gf_")
    assert len(token) >= 40
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM api_keys"))
    engine.dispose()
    assert token not in dump
    assert token[11:] not in dump  # only the shown prefix is kept in clear
    assert hash_token(token) in dump
    listing = client.get("/api/v1/keys", headers=admin_headers).get_json()["items"]
    assert token not in str(listing)
    assert {item["prefix"] for item in listing} >= {token[:11]}


def test_keys_read_only_their_own_jobs(
    client: Any, settings: Settings, active_model: str, admin_headers: dict[str, str]
) -> None:
    alice, bob = bearer(make_key(settings, "classify")), bearer(make_key(settings, "classify"))
    job = upload(client, alice).get_json()
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=alice).status_code == 200
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}", headers=bob), 404, "job_not_found")
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}"), 404, "job_not_found")  # anonymous
    assert client.get("/api/v1/jobs", headers=bob).get_json()["total"] == 0
    assert client.get("/api/v1/jobs", headers=alice).get_json()["total"] == 1
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=admin_headers).status_code == 200
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        row = session.get(Job, job["id"])
        owner = session.scalars(select(ApiKey).where(ApiKey.id == row.api_key_id)).one()
        assert owner.scope == "classify"
    engine.dispose()


def test_whoami(client: Any, settings: Settings, admin_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/whoami").get_json() == {
        "authenticated": False,
        "key_id": None,
        "scope": None,
        "can_upload": True,
        "can_admin": False,
        "keys_required": False,
    }
    me = client.get("/api/v1/whoami", headers=admin_headers).get_json()
    assert me["authenticated"]
    assert me["can_admin"]
    assert me["scope"] == "admin"
    assert client.get("/api/v1/whoami", environ_base=REMOTE).get_json()["can_upload"] is False


@pytest.mark.parametrize("body", [{}, {"name": "x"}, {"name": "", "scope": "admin"},
                                  {"name": "x", "scope": "root"}])  # fmt: skip
def test_creating_a_key_validates_its_fields(
    client: Any, admin_headers: dict[str, str], body: dict[str, str]
) -> None:
    assert_problem(client.post("/api/v1/keys", json=body, headers=admin_headers), 400)


def test_revoking_an_unknown_key_is_404(client: Any, admin_headers: dict[str, str]) -> None:
    assert_problem(
        client.delete("/api/v1/keys/nope", headers=admin_headers), 404, "api_key_not_found"
    )


def test_the_openapi_document_shows_the_scheme(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    train = spec["paths"]["/api/v1/models/train"]["post"]
    assert train["security"] == [{"ApiKey": []}]
    assert {"401", "403"} <= set(train["responses"])
    assert "application/problem+json" in train["responses"]["401"]["content"]
