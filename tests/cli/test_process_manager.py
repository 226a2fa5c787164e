"""The process manager: supervisord restarts a dead program and gives up on a crash loop."""

from __future__ import annotations

import configparser
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.cli.process_manager import ProcessManager
from shared.cli.supervisord_config import Program, render_config

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def test_config_quotes_arguments_and_escapes_percent(tmp_path: Path) -> None:
    program = Program("predict", ["celery", "-n", "predict@%h", "a b"], priority=20)

    text = render_config([program], run_dir=tmp_path, log_dir=tmp_path / "logs", cwd=tmp_path)

    parser = configparser.ConfigParser()  # supervisord reads it the same way (%-interpolation)
    parser.read_string(text)
    assert parser["program:predict"]["command"] == "celery -n predict@%h 'a b'"
    assert parser["program:predict"]["autorestart"] == "true"
    assert parser["supervisord"]["nodaemon"] == "true"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[ProcessManager, list[str]]]:
    lines: list[str] = []
    run_dir = Path("/tmp") / f"gf-pm-{os.getpid()}-{time.monotonic_ns()}"  # short socket path
    started = ProcessManager(
        [
            Program("sleeper", SLEEPER, startsecs=1),
            Program("crasher", CRASHER, startsecs=1, startretries=1),
        ],
        run_dir=run_dir,
        log_dir=tmp_path / "logs",
        env=dict(os.environ),
        cwd=tmp_path,
        echo=lines.append,
    )
    started.start()
    yield started, lines
    started.stop()
    assert not started.alive()


def wait_until(check: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_a_killed_program_is_restarted_and_a_crash_loop_is_given_up(
    manager: tuple[ProcessManager, list[str]],
) -> None:
    pm, lines = manager
    wait_until(lambda: pm.states().get("sleeper", {}).get("statename") == "RUNNING")
    first = pm.pid("sleeper")
    assert first

    os.kill(first, signal.SIGKILL)

    def reported(text: str) -> Callable[[], bool]:
        return lambda: bool(pm.poll() or True) and any(text in line for line in lines)

    wait_until(reported("sleeper stopped unexpectedly (terminated by SIGKILL)"))
    wait_until(reported("sleeper is running again (restart 1)"))
    assert pm.pid("sleeper") not in (None, first)
    wait_until(reported("crasher failed right after starting (exit status 3)"))
    wait_until(reported("crasher keeps crashing right after it starts"))
    assert pm.states()["crasher"]["statename"] == "FATAL"
    assert pm.states()["sleeper"]["statename"] == "RUNNING"  # the rest keeps running
    wait_until(lambda: any(line.endswith("| up") for line in lines))  # its output, prefixed
