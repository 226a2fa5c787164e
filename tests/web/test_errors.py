"""Every error the web process answers is application/problem+json with the right status."""

import json
from typing import Any

import pytest

from shared.store.config import Settings
from shared.store.db import session_scope
from tests.lifecycle.test_jobs import make_job
from tests.web.conftest import make_app
from tests.web.helpers import assert_problem


def test_unknown_route_and_method_are_problems(client: Any) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")
    response = client.delete("/api/v1/jobs")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unexpected_errors_are_500_without_internals(settings: Settings) -> None:
    app = make_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 in /srv/secret/path.py")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    body = assert_problem(app.test_client().get("/boom"), 500, "internal_error")
    assert "hunter2" not in json.dumps(body)
    assert "RuntimeError" not in json.dumps(body)


def test_a_database_that_cannot_be_reached_is_503_to_retry(settings: Settings) -> None:
    """Found by the soak run: right after a PostgreSQL restart an upload was answered 500."""
    import io
    import socket

    from tests.web.conftest import wav_bytes

    with socket.socket() as sock:  # a port where nothing listens: the database is down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(settings.replace(database_url=f"postgresql://postgres@127.0.0.1:{port}/gone"))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    try:
        upload = client.post(
            "/api/v1/jobs", data={"file": (io.BytesIO(wav_bytes()), "song.wav")},
            content_type="multipart/form-data",
        )  # fmt: skip
        body = assert_problem(upload, 503, "database_unavailable")
        assert int(upload.headers["Retry-After"]) > 0
        assert str(port) not in json.dumps(body)  # no connection details
        assert_problem(client.get("/api/v1/jobs"), 503, "database_unavailable")
    finally:
        app.extensions["genreflow"]["engine"].dispose()
    assert not list(settings.upload_dir.glob("*.wav"))  # nothing stored for a refused upload


LISTINGS = ["/jobs", "/labels", "/training-runs", "/models", "/keys", "/jobs/{job_id}/deliveries"]


@pytest.mark.parametrize("listing", LISTINGS)
def test_every_listing_refuses_an_unknown_query_parameter(
    client: Any, settings: Settings, admin_headers: dict[str, str], listing: str
) -> None:
    with session_scope(settings.database_url) as session:
        job_id = make_job(session).id
    path = "/api/v1" + listing.format(job_id=job_id)
    assert client.get(path, headers=admin_headers).status_code == 200

    body = assert_problem(
        client.get(path + "?colour=blue&sort=name", headers=admin_headers), 400, "invalid_request"
    )

    assert "colour" in json.dumps(body["errors"])
    assert "sort" in json.dumps(body["errors"])
