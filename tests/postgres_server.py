"""A throwaway PostgreSQL server for tests and benchmarks, from the machine's own binaries.

Usage::

    from tests.postgres_server import PrivatePostgres, PostgresUnavailable

    server = PrivatePostgres(folder, port)
    url = server.start()           # "postgresql+psycopg://postgres@127.0.0.1:<port>/genreflow"
    ...
    server.stop()

The binaries (``initdb``, ``pg_ctl``) are taken from ``PATH``, else from Debian's
``/usr/lib/postgresql/<version>/bin``; when neither has them and this process is root with
``apt-get``, Debian's ``postgresql`` package is installed (once). Run as root, the server runs as
the ``postgres`` user (PostgreSQL refuses root). Trust authentication, no fsync: for tests only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

APT_TIMEOUT_S: Final = 600


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def postgres_bin_dir(*, install: bool = True) -> Path:
    """Return the folder of ``initdb`` and ``pg_ctl``.

    Raises
    ------
    PostgresUnavailable
        When they are not installed and cannot be (not root, or no ``apt-get``).
    """
    found = _find_bin_dir()
    if found is not None:
        return found
    if not install:
        raise PostgresUnavailable(
            "no PostgreSQL binaries (initdb) on PATH or in /usr/lib/postgresql"
        )
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries (initdb) on PATH or in /usr/lib/postgresql, and this is not "
            "a root Debian machine that could install them (apt-get install postgresql)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env,
                       capture_output=True, timeout=APT_TIMEOUT_S)  # fmt: skip
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "postgresql"], check=True, env=env, capture_output=True,
                       timeout=APT_TIMEOUT_S)  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        raise PostgresUnavailable(f"apt-get install postgresql failed: {exc}") from exc
    found = _find_bin_dir()
    if found is None:
        raise PostgresUnavailable("apt-get installed postgresql, but initdb is still missing")
    return found


def _find_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(debian[-1]).parent if debian else None


@dataclass
class PrivatePostgres:
    """A private PostgreSQL server whose cluster lives in ``folder``, listening on ``host:port``.

    Parameters
    ----------
    folder : Path
        Created; holds the data directory, the socket and ``server.log``.
    port : int
    host : str
        The address to listen on (``127.0.0.1``, or a benchmark host's address).
    wrap : list of str
        A prefix for every command (``["ip", "netns", "exec", NAME]``: run in that namespace).
    allow : str, optional
        A network (``10.213.0.0/24``) whose clients are trusted besides the local ones.
    """

    folder: Path
    port: int
    host: str = "127.0.0.1"
    wrap: list[str] = field(default_factory=list)
    allow: str | None = None
    bin_dir: Path | None = None
    _started: bool = field(default=False, init=False)

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin_dir is not None
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        try:
            subprocess.run([*self.wrap, *prefix, str(self.bin_dir / tool), *args], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip()[-800:]
            raise PostgresUnavailable(f"{tool} failed: {detail}") from exc
        except (subprocess.SubprocessError, OSError) as exc:
            raise PostgresUnavailable(f"{tool} failed: {exc}") from exc

    def start(self) -> str:
        """Create the cluster and a ``genreflow`` database, start the server; return its URL.

        Raises
        ------
        PostgresUnavailable
            When the binaries are missing, or as root no ``postgres`` user exists to run them.
        """
        self.bin_dir = self.bin_dir or postgres_bin_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                shutil.chown(self.folder, "postgres")
            except LookupError as exc:
                raise PostgresUnavailable("running as root, and no 'postgres' user") from exc
            for parent in self.folder.parents:  # the postgres user must reach its folder
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        self._run("initdb", "-D", str(self.folder / "data"), "-U", "postgres",
                  "--auth=trust", "--no-sync")  # fmt: skip
        if self.allow:
            with (self.folder / "data" / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.allow} trust\n")
        try:
            self._pg_ctl("start")
        except PostgresUnavailable:
            # pg_ctl gave up waiting (a busy machine) or lost a race for the port: a server it
            # did start must not outlive the attempt
            self._force_stop()
            raise
        self._started = True
        self.create_database("genreflow")
        return self.url("genreflow")

    def create_database(self, name: str) -> None:
        """Create database ``name`` through the server's Unix socket (any network namespace)."""
        import psycopg

        try:
            with psycopg.connect(
                host=str(self.folder),
                port=self.port,
                user="postgres",
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            ) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')  # fmt: skip
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"cannot create database {name}: {exc}") from exc

    def url(self, database: str) -> str:
        """Return the URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.folder} -c fsync=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-w",
                  "-l", str(self.folder / "server.log"), action, *extra)  # fmt: skip

    def restart(self) -> None:
        """Restart in immediate mode: the server crashes and recovers from its WAL."""
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        """Stop the server (if it was started); kill it if ``pg_ctl stop`` fails."""
        if self._started:
            try:
                self._pg_ctl("stop", "-m", "fast")
            except PostgresUnavailable:
                self._force_stop()
            self._started = False

    def _force_stop(self) -> None:
        """Stop whatever server runs on this cluster: ``pg_ctl stop -m immediate``, else kill."""
        try:
            self._pg_ctl("stop", "-m", "immediate")
        except PostgresUnavailable:  # not running, or pg_ctl could not stop it
            pid_file = self.folder / "data" / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
