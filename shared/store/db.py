"""Database engine, sessions and migrations.

Nothing here connects at import time. :func:`make_engine` builds an engine (SQLite gets WAL and
foreign keys), :func:`session_scope` gives a task one committed-or-rolled-back session, and
:func:`upgrade_database` runs ``alembic upgrade head`` from any working directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create a new SQLAlchemy engine for ``url``.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL. ``postgresql://`` is routed to psycopg 3. For SQLite the parent
        directory is created, and every connection enables WAL, foreign keys and a busy timeout;
        connections may cross threads.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Returns
    -------
    Engine
    """
    sa_url = make_url(normalize_url(url))
    if sa_url.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(sa_url, **kwargs)


def normalize_url(url: str) -> str:
    """Route plain ``postgres://`` and ``postgresql://`` URLs to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_engine(url: str) -> Engine:
    """Return the process-wide engine for ``url``, creating it on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines(*, close: bool = True) -> None:
    """Forget every cached engine (at the end of tests; after a fork with ``close=False``).

    ``close=False`` drops the pooled connections without closing them: in a forked child they
    are the parent's sockets, which the parent may still use.
    """
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose(close=close)
        _engines.clear()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(url_or_engine: str | Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error.

    Parameters
    ----------
    url_or_engine : str or Engine
        A database URL (its cached engine is used, see :func:`get_engine`) or an engine.

    Yields
    ------
    Session
    """
    engine = get_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    """Return an Alembic ``Config`` for this project's migrations, pointed at ``url``.

    ``alembic.ini`` and ``migrations/`` are found relative to this package, so this works from
    any working directory and from an editable install.
    """
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False  # leave the host process's logging alone
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on ``url`` (creating a SQLite file if needed)."""
    from alembic import command

    if make_url(normalize_url(url)).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str, revision: str = "base") -> None:
    """Run ``alembic downgrade <revision>`` on ``url``."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """Return the database's Alembic revision, or ``None`` for an unmigrated database."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """Return the newest migration revision shipped with the code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
