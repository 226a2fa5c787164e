"""The page blueprint: the browser front end of genreflow.

Every route serves a template; the page itself talks to the JSON API (``/api/v1``) from
plain ES modules in ``web/static/js``. Nothing here touches the database, the broker or a
model, so the pages stay up whenever Flask is.

Routes
------
``/``               upload songs, watch their jobs, recent history
``/jobs/<job_id>``  the same page, opened on one job's result (shareable, reloadable)
``/models``         the active model, its metrics, the versions, retraining
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from shared.core.audio.audio import SUPPORTED_EXTENSIONS
from web.context import get_settings

bp = Blueprint(
    "pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)

#: Everything the page loads comes from this origin: no CDN, no outside fonts.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@bp.after_request
def add_security_headers(response: Response) -> Response:
    """Pin the page to its own origin and keep it out of frames."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _render_classify_page(job_id: str | None) -> str:
    extensions = sorted(SUPPORTED_EXTENSIONS)
    return render_template(
        "index.html",
        job_id=job_id,
        accept=",".join(["audio/*", *extensions]),
        max_upload_mb=current_app.config.get("GENREFLOW_MAX_UPLOAD_MB"),
        require_keys=get_settings().require_keys,
    )


@bp.get("/")
def index() -> str:
    """Serve the upload page."""
    return _render_classify_page(None)


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    """Serve the upload page opened on one job; the page loads the job from the API."""
    return _render_classify_page(job_id)


@bp.get("/models")
def models() -> str:
    """Serve the models page."""
    return render_template("models.html")
