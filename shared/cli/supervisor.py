"""A generic process supervisor: start children, prefix their output, stop them together.

It knows nothing of genreflow; :mod:`shared.cli.services` describes what it supervises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

DEFAULT_HOST: Final = "127.0.0.1"
STOP_GRACE_S: Final = 20.0
POLL_INTERVAL_S: Final = 0.2

Echo = Callable[[str], None]


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


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the supervise loop reads."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Catch SIGINT and SIGTERM."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop waiting politely
            raise KeyboardInterrupt
        self.signal = signum


def supervise(
    supervisor: Supervisor,
    stop: StopRequested,
    *,
    every_s: float,
    periodic: Callable[[], list[str]],
) -> int:
    """Watch the children until a stop is requested or one dies; run ``periodic`` meanwhile.

    Parameters
    ----------
    supervisor : Supervisor
    stop : StopRequested
    every_s : float > 0
        How often ``periodic`` runs.
    periodic : callable() -> list of str
        A chore whose messages are printed; its failures are printed and retried next time.

    Returns
    -------
    int
        0 after a requested stop; 1 when a child died on its own.
    """
    next_run = time.monotonic() + every_s
    while stop.signal is None:
        if time.monotonic() >= next_run:
            next_run = time.monotonic() + every_s
            try:
                for message in periodic():
                    supervisor.say(message)
            except Exception as exc:  # e.g. the database is busy; try again next time
                supervisor.say(f"genreflow: {exc}")
        dead = supervisor.first_dead()
        if dead is not None:
            supervisor.say(
                f"genreflow: the {dead.spec.name} process exited with code "
                f"{dead.process.returncode}; stopping everything"
            )
            return 1
        time.sleep(POLL_INTERVAL_S)
    return 0
