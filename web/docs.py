"""The API docs page (``/docs``): Swagger UI served from an installed package, offline.

APIFlask's own docs page loads Swagger UI from a CDN and starts it with an inline script, which
the page's Content-Security-Policy forbids. This blueprint serves the Swagger UI files that the
``flask-swagger-ui`` wheel ships (its ``dist`` folder; its blueprint and template are not used)
under ``/docs/assets/``, and starts it from ``static/js/docs.js``, so the page works without the
internet and under the same CSP as the rest of the site.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, send_from_directory

from web.pages import add_security_headers

bp = Blueprint("docs", __name__, template_folder="templates")
bp.after_request(add_security_headers)

SWAGGER_UI_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)


@cache
def swagger_ui_dir() -> Path | None:
    """Return the folder of Swagger UI's files in the ``flask-swagger-ui`` wheel, if installed."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "dist"
    return folder if folder.is_dir() else None


@bp.get("/docs")
def docs() -> str:
    """Serve the Swagger UI page of the OpenAPI document."""
    if swagger_ui_dir() is None:
        abort(404, "Swagger UI is not installed (pip install flask-swagger-ui).")
    return render_template("docs.html")


@bp.get("/docs/assets/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    """Serve one of Swagger UI's files."""
    folder = swagger_ui_dir()
    if folder is None or filename not in SWAGGER_UI_FILES:
        abort(404)
    return send_from_directory(folder, filename, max_age=3600)
