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
