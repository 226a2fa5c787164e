"""supervisord's configuration: the programs to run and how to restart them."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: A program that dies within this many seconds of starting counts as a failed start.
DEFAULT_STARTSECS: Final = 5


#: Failed starts in a row before supervisord gives up on a program (``FATAL``).
DEFAULT_STARTRETRIES: Final = 5


LOG_MAX_BYTES: Final = 10 * 1024 * 1024


LOG_BACKUPS: Final = 3


@dataclass(frozen=True)
class Program:
    """One program to keep running.

    Attributes
    ----------
    name : str
        Short name (letters, digits, ``-``, ``_``): the log prefix and supervisord's name.
    argv : list of str
        The command line.
    priority : int
        Lower starts first and stops last.
    startsecs : int >= 0
        Seconds it must stay up for a start to count as a success.
    startretries : int >= 0
        Failed starts in a row before giving up.
    stopwaitsecs : int > 0
        Grace after SIGTERM before the program's whole process group is killed.
    """

    name: str
    argv: list[str]
    priority: int = 100
    startsecs: int = DEFAULT_STARTSECS
    startretries: int = DEFAULT_STARTRETRIES
    stopwaitsecs: int = 20


def _quote(value: str) -> str:
    # supervisord splits command= with shlex, after ConfigParser's %-interpolation.
    return shlex.quote(value).replace("%", "%%")


def render_config(programs: Sequence[Program], *, run_dir: Path, log_dir: Path, cwd: Path) -> str:
    """Return a supervisord configuration that runs ``programs`` in the foreground.

    Parameters
    ----------
    programs : sequence of Program
    run_dir : Path
        Where the control socket and pid file go (its path must be short: a socket path
        has at most 107 bytes).
    log_dir : Path
        One ``<name>.log`` per program, plus ``supervisord.log``.
    cwd : Path
        Working directory of every program.

    Returns
    -------
    str
        The text of ``supervisord.conf``. Programs inherit supervisord's environment.
    """
    socket_path = run_dir / "supervisor.sock"
    lines = [
        "; Written by genreflow at every start; edits are overwritten.",
        "[unix_http_server]",
        f"file={_quote(str(socket_path))}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",
        f"logfile={_quote(str(log_dir / 'supervisord.log'))}",
        f"logfile_maxbytes={LOG_MAX_BYTES}",
        f"logfile_backups={LOG_BACKUPS}",
        f"pidfile={_quote(str(run_dir / 'supervisord.pid'))}",
        f"childlogdir={_quote(str(log_dir))}",
        "loglevel=info",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_quote(str(socket_path))}",
    ]
    for program in programs:
        lines += [
            "",
            f"[program:{program.name}]",
            "command=" + " ".join(_quote(arg) for arg in program.argv),
            f"directory={_quote(str(cwd))}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={program.startsecs}",
            f"startretries={program.startretries}",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stopwaitsecs}",
            # SIGTERM to the program only (Celery's warm shutdown, gunicorn's graceful stop);
            # SIGKILL, if needed, to its whole group (pool processes, gunicorn workers).
            "stopasgroup=false",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote(str(log_dir / (program.name + '.log')))}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
        ]
    return "\n".join(lines) + "\n"
