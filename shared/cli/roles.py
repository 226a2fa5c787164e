"""One role per host: ``genreflow web``, ``worker``, ``trainer`` and ``beat``.

Each role starts the same program ``genreflow run`` supervises (:mod:`shared.cli.services`
defines each once), with the same environment (:func:`~shared.cli.services.child_environment`),
for the ``DATABASE_URL`` and ``REDIS_URL`` given. Before it replaces itself with the program
(``exec``: the container's or the service manager's signals reach it directly), a role checks
what every host must share, and refuses to start with the reason when it is plainly not so:

- the database answers and is migrated (``genreflow prepare`` ran once, anywhere);
- Redis answers;
- the uploads and models folders are the shared ones: ``genreflow prepare`` leaves a marker
  file (:data:`SHARE_MARKER`) in each, and the active model's file must be found.

Waiting is bounded: a role waits up to ``--wait`` seconds for the database and Redis (they may
start at the same time), then gives up with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from shared.cli.services import child_environment
from shared.errors import RunnerError
from shared.store.config import SHARE_MARKER

if TYPE_CHECKING:
    from shared.cli.supervisord_config import Program
    from shared.store.config import Settings

#: How long a role waits for the database and Redis by default.
DEFAULT_WAIT_S: Final = 60.0
_RETRY_S: Final = 1.0


def check_shared_folders(settings: Settings, *, uploads: bool, models: bool) -> None:
    """Refuse to start when the uploads or models folder is plainly not the shared one.

    Raises
    ------
    RunnerError
        Naming the folder, its setting and what every host must share.
    """
    wanted = [("GENREFLOW_UPLOAD_DIR", settings.upload_dir)] if uploads else []
    wanted += [("GENREFLOW_MODEL_DIR", settings.model_dir)] if models else []
    for name, folder in wanted:
        if not (folder / SHARE_MARKER).is_file():
            raise RunnerError(
                f"{name} ({folder}) is not the shared folder: `genreflow prepare` left no "
                f"{SHARE_MARKER} file there. Every host must mount the same uploads and models "
                "folders (a shared volume such as NFS) at the same path; run `genreflow "
                "prepare` once with these settings if this is the shared folder."
            )
    if models:
        _check_active_model_file(settings)


def _check_active_model_file(settings: Settings) -> None:
    from shared.store.db import session_scope
    from shared.store.registry import active_model

    with session_scope(settings.database_url) as session:
        active = active_model(session)
        found = None if active is None else (active.version, Path(active.path))
    if found is not None and not found[1].is_file():
        raise RunnerError(
            f"The active model {found[0]} is at {found[1]}, which this host cannot see. Every "
            "host must mount the models folder (GENREFLOW_MODEL_DIR) at the same path."
        )


def wait_for_services(
    settings: Settings, *, timeout_s: float = DEFAULT_WAIT_S, say: Callable[[str], None] = print
) -> None:
    """Wait until the database is reachable and migrated and Redis answers.

    Raises
    ------
    RunnerError
        When either is still missing after ``timeout_s``, or the database is not migrated.
    """
    deadline = time.monotonic() + timeout_s
    _wait(lambda: _database_problem(settings), "the database", deadline, say)
    _wait(lambda: _redis_problem(settings), "Redis", deadline, say)


def _wait(
    problem_of: Callable[[], str | None], what: str, deadline: float, say: Callable[[str], None]
) -> None:
    told = False
    while (problem := problem_of()) is not None:
        if problem.startswith("!"):  # not something waiting mends
            raise RunnerError(problem[1:])
        if time.monotonic() >= deadline:
            raise RunnerError(f"{what} is not reachable: {problem}")
        if not told:
            say(f"genreflow: waiting for {what} ({problem})")
            told = True
        time.sleep(_RETRY_S)


def _database_problem(settings: Settings) -> str | None:
    from shared.store.db import current_revision, head_revision

    try:
        revision = current_revision(settings.database_url)
    except Exception as exc:  # any driver error: not reachable yet
        return str(exc).splitlines()[0][:300]
    if revision != head_revision():
        return (
            f"!the database is at migration {revision or 'none'}, not {head_revision()}: run "
            "`genreflow prepare` once with these settings (it migrates and marks the folders)"
        )
    return None


def _redis_problem(settings: Settings) -> str | None:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)[:300]
    finally:
        client.close()
    return None


def exec_role(settings: Settings, program: Program, *, metrics_dir: Path | None = None) -> NoReturn:
    """Replace this process with ``program``, in the environment ``genreflow run`` gives it."""
    env = child_environment(settings, settings.redis_url, metrics_dir=metrics_dir)
    env.pop("GENREFLOW_PRIVATE_REDIS", None)  # a role always uses the Redis it was given
    settings.home.mkdir(parents=True, exist_ok=True)  # this host's own state (beat's schedule)
    os.chdir(settings.home)
    os.execvpe(program.argv[0], program.argv, env)
