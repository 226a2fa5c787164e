"""genreflow's web process: the Flask (APIFlask) app factory.

``create_app()`` builds the app from :class:`shared.store.config.Settings`; it connects to
nothing and migrates nothing (``genreflow prepare`` and ``run`` call
:func:`shared.store.db.upgrade_database` and :func:`shared.store.registry.sync_model_dir`). The web
process never imports TensorFlow, librosa or ``worker/``.
"""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

from shared import __version__
from shared.store.config import Settings

API_TITLE = "genreflow"


def create_app(
    settings: Settings | None = None,
    *,
    upgrade_db: bool = False,
    config: dict[str, Any] | None = None,
) -> APIFlask:
    """Build the genreflow web app.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :meth:`Settings.from_env`.
    upgrade_db : bool
        Run ``alembic upgrade head`` on ``settings.database_url`` first.
    config : dict, optional
        Extra Flask config (``{"TESTING": True}``...), applied last.

    Returns
    -------
    APIFlask
    """
    from shared.logs import configure_process_logging
    from web import auth, context, docs, limits, metrics, pages, request_log
    from web.api import health, jobs, keys, labels, models, training
    from web.api.schemas import ProblemOut
    from web.errors import register_error_handlers

    settings = settings or Settings.from_env()
    settings.ensure_dirs()
    configure_process_logging(settings.log_format)
    if upgrade_db:
        from shared.store.db import upgrade_database

        upgrade_database(settings.database_url)

    # docs_path=None: /docs is web/docs.py's page (Swagger UI from a package, under the CSP).
    app = APIFlask(__name__, title=API_TITLE, version=__version__, docs_path=None)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        GENREFLOW_MAX_UPLOAD_MB=settings.max_upload_mb,
        JSON_SORT_KEYS=False,
        HTTP_ERROR_SCHEMA=ProblemOut,
        VALIDATION_ERROR_SCHEMA=ProblemOut,
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Invalid request parameters",
        SPEC_FORMAT="json",
        INFO={
            "description": "Tells the genre of a song (GTZAN's 10 genres) with an LSTM over "
            "3-second MFCC segments. Errors are application/problem+json."
        },
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client is who the trusted proxies say it is (rate limits, the loopback rule);
        # an X-Forwarded-For sent without such a proxy in front is ignored.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    if config:
        app.config.update(config)

    context.init_app(app, settings)
    register_error_handlers(app)
    limits.init_app(app, settings)
    request_log.init_app(app)
    for blueprint in (health.bp, jobs.bp, labels.bp, models.bp, training.bp, keys.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(pages.bp)
    app.register_blueprint(docs.bp)
    auth.document_security(app)
    metrics.init_app(app, settings, app.extensions[context.EXTENSION]["sessionmaker"])
    return app
