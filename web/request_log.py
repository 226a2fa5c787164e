"""Tie a request's log lines to the job it is about (``job_id`` in the URL, or just made)."""

from __future__ import annotations

from flask import Flask, g, request

from shared.logs import reset_job_id, set_job_id


def init_app(app: Flask) -> None:
    """Bind ``job_id`` from the URL for the length of each request."""

    @app.before_request
    def _bind_job_id() -> None:
        job_id = (request.view_args or {}).get("job_id")
        g.job_log_token = set_job_id(job_id if isinstance(job_id, str) else None)

    @app.teardown_request
    def _unbind_job_id(_exc: BaseException | None = None) -> None:
        token = g.pop("job_log_token", None)
        if token is not None:
            reset_job_id(token)
