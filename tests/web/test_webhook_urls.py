"""Webhook URLs that point inward are refused at upload (400) unless the operator allows them."""

from __future__ import annotations

from typing import Any

from shared.store.config import Settings
from tests.web.helpers import assert_problem
from tests.web.test_auth import upload


def test_an_upload_with_a_webhook_to_127_0_0_1_is_refused_by_default(
    client: Any, active_model: str
) -> None:
    response = upload(client, form={"webhook_url": "http://127.0.0.1:9/hook"})
    body = assert_problem(response, 400, "webhook_target_refused")
    assert "GENREFLOW_WEBHOOK_ALLOW_PRIVATE" in body["detail"]


def test_private_targets_are_accepted_when_allowed(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    from web import create_app

    client = create_app(settings.replace(webhook_allow_private=True)).test_client()
    response = upload(client, form={"webhook_url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 202
    assert response.get_json()["webhook_url"] == "http://127.0.0.1:9/hook"
