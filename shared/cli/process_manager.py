"""Run a set of programs under supervisord, and tell the user in plain words what happens.

`supervisor <https://supervisord.org>`_ does the supervising: it starts the programs in
priority order, restarts one that dies while the others keep running, backs off when a program
dies right after starting (1 s, 2 s, 3 s, ... between tries) and gives up after a few tries
(state ``FATAL``) instead of spinning, and stops them all in reverse order. This module only

- writes its configuration (:func:`shared.cli.supervisord_config.render_config`) under the
  service's home,
- starts ``supervisord`` in the foreground as a child, so that it dies with its caller,
- copies each program's log lines to the caller with the program's name in front, and
- turns supervisord's process states into short messages (:meth:`ProcessManager.poll`).

It knows nothing about genreflow: :mod:`shared.cli.services` says what to run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from shared.cli.supervisord_config import Program, render_config

Echo = Callable[[str], None]

DEFAULT_HOST: Final = "127.0.0.1"
#: Grace after SIGTERM before a program's process group is killed.
STOP_GRACE_S: Final = 20.0

POLL_INTERVAL_S: Final = 0.2
#: Lines of supervisord's stderr kept in memory (for the message when it exits at start).
STDERR_TAIL_LINES: Final = 50
#: How often :func:`supervise` looks at the programs' states.
SUPERVISE_INTERVAL_S: Final = 0.5
#: How long :meth:`ProcessManager.stop` waits for supervisord beyond the programs' grace.
SUPERVISORD_EXTRA_WAIT_S: Final = 15.0


class ProcessManagerError(RuntimeError):
    """supervisord could not be started or reached."""


@dataclass
class _Tail:
    """Follows one log file from its end at start, across rotations."""

    path: Path
    handle: IO[bytes] | None = None
    inode: int | None = None
    partial: bytes = b""

    def read_lines(self) -> list[str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self.handle is None or stat.st_ino != self.inode or stat.st_size < self.handle.tell():
            if self.handle is not None:
                self.handle.close()
            self.handle, self.inode, self.partial = self.path.open("rb"), stat.st_ino, b""
        data = self.partial + self.handle.read()
        *complete, self.partial = data.split(b"\n")
        return [line.decode("utf-8", "replace").rstrip() for line in complete]

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


@dataclass
class _Seen:
    restarts: int = 0
    up: bool = False  # reached RUNNING (stayed up startsecs) since it was last started
    down: bool = False  # exited, and not seen running since


_EXITED: Final = re.compile(r"exited: (?P<name>[\w-]+) \((?P<how>.+); not expected\)")
_SUCCESS: Final = re.compile(r"success: (?P<name>[\w-]+) entered RUNNING state")
_GAVE_UP: Final = re.compile(r"gave up: (?P<name>[\w-]+) entered FATAL state")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM supervisord if its caller dies: then it stops every program."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ProcessManager:
    """supervisord running ``programs``, its output and state changes reported through ``echo``.

    Parameters
    ----------
    programs : sequence of Program
    run_dir, log_dir : Path
        See :func:`render_config`.
    env : Mapping[str, str]
        The environment of supervisord and so of every program.
    cwd : Path
    echo : callable(str)
        Receives ``"<name> | <log line>"`` lines and the state messages.
    """

    programs: Sequence[Program]
    run_dir: Path
    log_dir: Path
    env: Mapping[str, str]
    cwd: Path
    echo: Echo = print
    process: subprocess.Popen[bytes] | None = None
    _tails: dict[str, _Tail] = field(default_factory=dict)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _echo_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_tailing: threading.Event = field(default_factory=threading.Event)
    _tailer: threading.Thread | None = None
    _events: _Tail | None = None
    #: The end of supervisord's stderr (also appended to ``supervisord.err`` while it can be).
    _stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=STDERR_TAIL_LINES)
    )

    @property
    def config_path(self) -> Path:
        """Where the configuration is written."""
        return self.run_dir / "supervisord.conf"

    def say(self, line: str) -> None:
        """Print one line, never interleaved with another (dropped if the output is full)."""
        with self._echo_lock, contextlib.suppress(OSError):
            self.echo(line)

    def _drain_stderr(self, stream: Any) -> None:
        """Keep supervisord's stderr: in memory, and in ``supervisord.err`` while the disk allows.

        supervisord reports a log write that failed (a full disk) on its stderr; were that a
        file on the same full disk, the report itself would fail and supervisord would exit.
        Through this pipe it never fails, so the programs keep running while the disk is full.
        """
        path = self.log_dir / "supervisord.err"
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self._stderr_tail.append(line)
            with contextlib.suppress(OSError), path.open("a") as errors:
                errors.write(line)

    def start(self, *, timeout_s: float = 20.0) -> None:
        """Write the configuration, start supervisord and wait until it answers.

        Raises
        ------
        ProcessManagerError
            If supervisord exits or does not answer within ``timeout_s``.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_config(self.programs, run_dir=self.run_dir, log_dir=self.log_dir, cwd=self.cwd)
        )
        self._events = _Tail(self.log_dir / "supervisord.log")
        self._events.read_lines()
        for program in self.programs:  # follow the logs from their current end
            tail = _Tail(self.log_dir / f"{program.name}.log")
            tail.read_lines()
            self._tails[program.name] = tail
            self._seen[program.name] = _Seen()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_path)],
            cwd=self.cwd,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # see _drain_stderr
            start_new_session=True,  # Ctrl-C reaches the caller, which stops supervisord
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        drain = threading.Thread(target=self._drain_stderr, args=(self.process.stderr,))
        drain.daemon = True
        drain.start()
        self._tailer = threading.Thread(target=self._tail_forever, daemon=True)
        self._tailer.start()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                drain.join(timeout=2)
                err = "".join(self._stderr_tail)[-2000:]
                raise ProcessManagerError(f"supervisord exited at start:\n{err}")
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                self.rpc().supervisor.getState()
                return
            if time.monotonic() > deadline:
                raise ProcessManagerError("supervisord did not answer in time")
            time.sleep(0.1)

    def rpc(self) -> Any:
        """Return an XML-RPC proxy of supervisord (over its Unix socket)."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def alive(self) -> bool:
        """Whether supervisord itself is still running."""
        return self.process is not None and self.process.poll() is None

    def states(self) -> dict[str, dict[str, Any]]:
        """Return supervisord's process info per program name (empty if it does not answer)."""
        try:
            infos = self.rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {}
        return {info["name"]: info for info in infos}

    def pid(self, name: str) -> int | None:
        """Return the pid of program ``name`` while it runs."""
        info = self.states().get(name)
        return int(info["pid"]) or None if info else None

    def poll(self) -> list[str]:
        """Report what happened to the programs since the last call, in words.

        Exits are read from supervisord's log (``exited: web (terminated by SIGKILL; not
        expected)``), so none is missed even when the program was restarted in between;
        recoveries from its process states.

        Returns
        -------
        list of str
            The messages, also passed to ``echo``.
        """
        messages: list[str] = []
        for line in self._events.read_lines() if self._events is not None else []:
            if match := _SUCCESS.search(line):
                self._seen.setdefault(match["name"], _Seen()).up = True
            elif match := _EXITED.search(line):
                name, how = match["name"], match["how"]
                seen = self._seen.setdefault(name, _Seen())
                if seen.up:
                    messages.append(
                        f"genreflow: {name} stopped unexpectedly ({how}); "
                        "restarting it, the rest keeps running"
                    )
                else:
                    messages.append(
                        f"genreflow: {name} failed right after starting ({how}); "
                        "trying again after a pause"
                    )
                seen.up, seen.down = False, True
            elif match := _GAVE_UP.search(line):
                name = match["name"]
                self._seen.setdefault(name, _Seen()).down = True
                messages.append(
                    f"genreflow: {name} keeps crashing right after it starts, so it is no longer "
                    f"restarted (the rest keeps running). Its log: {self.log_dir / (name + '.log')}"
                    ". Fix the cause, then run genreflow again."
                )
        for name, info in self.states().items():
            seen = self._seen.setdefault(name, _Seen())
            if info["statename"] == "RUNNING" and seen.down:
                seen.restarts += 1
                seen.down = False
                messages.append(f"genreflow: {name} is running again (restart {seen.restarts})")
        for message in messages:
            self.say(message)
        return messages

    def _tail_forever(self) -> None:
        width = max((len(p.name) for p in self.programs), default=7)
        while not self._stop_tailing.is_set():
            for name, tail in self._tails.items():
                for line in tail.read_lines():
                    self.say(f"{name:>{width}} | {line}")
            self._stop_tailing.wait(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop every program (reverse priority, each with its grace) and supervisord."""
        if self.process is not None and self.process.poll() is None:
            grace = sum(p.stopwaitsecs for p in self.programs) + SUPERVISORD_EXTRA_WAIT_S
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.say("genreflow: supervisord did not stop in time; killing")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        time.sleep(POLL_INTERVAL_S * 2)  # let the tailer print the last lines
        self._stop_tailing.set()
        if self._tailer is not None:
            self._tailer.join(timeout=2)
        for tail in [*self._tails.values(), *([self._events] if self._events else [])]:
            tail.close()


def find_free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
    manager: ProcessManager,
    stop: StopRequested,
    *,
    every_s: float,
    periodic: Callable[[], list[str]],
) -> int:
    """Report the programs' fortunes until a stop is requested; run ``periodic`` meanwhile.

    Parameters
    ----------
    manager : ProcessManager
    stop : StopRequested
    every_s : float > 0
        How often ``periodic`` runs.
    periodic : callable() -> list of str
        A chore whose messages are printed; its failures are printed and retried next time.

    Returns
    -------
    int
        0 after a requested stop; 1 when supervisord itself died.
    """
    next_run = time.monotonic() + every_s
    while stop.signal is None:
        if time.monotonic() >= next_run:
            next_run = time.monotonic() + every_s
            try:
                for message in periodic():
                    manager.say(message)
            except Exception as exc:  # e.g. the database is busy; try again next time
                manager.say(f"genreflow: {exc}")
        if not manager.alive():
            manager.say("genreflow: supervisord stopped unexpectedly; stopping everything")
            return 1
        manager.poll()
        time.sleep(SUPERVISE_INTERVAL_S)
    return 0
