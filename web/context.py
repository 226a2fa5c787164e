"""Per-app and per-request state: settings, the DB session and the task queue client.

``get_db()`` opens one session per request lazily on ``g``; ``close_db`` closes it at teardown.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from shared.store.config import Settings
from web.queue import TaskQueue, broker_name

EXTENSION = "genreflow"


def init_app(app: Flask, settings: Settings) -> None:
    """Attach settings, an engine, a session factory and a queue client to ``app``.

    Nothing connects here: the engine and the broker connect on first use.
    """
    from shared.store.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    app.extensions[EXTENSION] = {
        "settings": settings,
        "engine": engine,
        "sessionmaker": make_sessionmaker(engine),
        "queue": TaskQueue(
            settings.redis_url,
            named=broker_name(
                settings.redis_url,
                url_set=settings.redis_url_set and not settings.private_redis,
                private=settings.private_redis,
            ),
        ),
    }
    app.teardown_appcontext(close_db)


def _state() -> dict[str, Any]:
    return current_app.extensions[EXTENSION]


def get_settings() -> Settings:
    """Return the settings of the current app."""
    return _state()["settings"]


def get_queue() -> TaskQueue:
    """Return the task queue client of the current app."""
    return _state()["queue"]


def get_db() -> Session:
    """Return this request's database session, opening it on first use."""
    if "db_session" not in g:
        factory: sessionmaker[Session] = _state()["sessionmaker"]
        g.db_session = factory()
    return g.db_session


def close_db(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and close this request's session."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
