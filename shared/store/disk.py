"""Free disk space where genreflow writes, and telling a full disk from other failures.

Uploads and (with SQLite) the database live under ``GENREFLOW_HOME``. :func:`require_free_space`
refuses new data before it is written when storing it would leave less than
``GENREFLOW_MIN_FREE_MB``; :func:`is_disk_full` recognises the error of a write that hit a full
disk anyway (``ENOSPC`` from the OS, ``SQLITE_FULL``, PostgreSQL's ``disk_full``), so the caller
can answer 507 or retry later instead of failing. Nothing is cached: when space comes back, the
next check sees it.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shared.errors import InsufficientStorage

if TYPE_CHECKING:
    from shared.store.config import Settings

#: OS errors of a full disk (or an exhausted quota).
DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL: Final = 13
PG_DISK_FULL: Final = "53100"
#: How long a client is told to wait before uploading again when the disk is low.
RETRY_AFTER_S: Final = 300


@dataclass(frozen=True)
class DiskSpace:
    """Free space on the filesystem of ``path``, against the minimum to keep."""

    path: Path
    free_bytes: int
    total_bytes: int
    min_free_bytes: int

    @property
    def low(self) -> bool:
        """Whether less than the minimum is free."""
        return self.free_bytes < self.min_free_bytes

    def describe(self) -> str:
        """Return ``"<free> MiB free of <total> MiB at <path> (keeping <min> MiB)"``."""
        mib = 1024 * 1024
        return (
            f"{self.free_bytes / mib:.1f} MiB free of {self.total_bytes / mib:.1f} MiB at "
            f"{self.path} (GENREFLOW_MIN_FREE_MB={self.min_free_bytes // mib})"
        )


def storage_paths(settings: Settings) -> list[Path]:
    """Return the folders genreflow writes data to: uploads, and the SQLite file's folder."""
    paths = [settings.upload_dir]
    if settings.database_url.startswith("sqlite:///"):
        paths.append(Path(settings.database_url.removeprefix("sqlite:///")).parent)
    return paths


def disk_space(path: Path, *, min_free_bytes: int) -> DiskSpace:
    """Measure the filesystem of ``path`` (its nearest existing parent when it is missing)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    return DiskSpace(Path(path), usage.free, usage.total, min_free_bytes)


def disk_spaces(settings: Settings) -> list[DiskSpace]:
    """Measure every filesystem of :func:`storage_paths` once (folders on one disk count once)."""
    seen: set[int] = set()
    spaces = []
    for path in storage_paths(settings):
        existing = path if path.exists() else path.parent
        device = existing.stat().st_dev if existing.exists() else -1
        if device in seen:
            continue
        seen.add(device)
        spaces.append(disk_space(path, min_free_bytes=settings.min_free_bytes))
    return spaces


def require_free_space(settings: Settings, *, incoming_bytes: int = 0) -> None:
    """Raise :class:`InsufficientStorage` unless ``incoming_bytes`` fit above the minimum.

    Parameters
    ----------
    settings : Settings
        ``upload_dir``, ``database_url`` and ``min_free_bytes``.
    incoming_bytes : int >= 0
        What is about to be written (an upload's ``Content-Length``).
    """
    for space in disk_spaces(settings):
        if space.free_bytes - incoming_bytes < space.min_free_bytes:
            raise InsufficientStorage(
                f"The server's disk is nearly full ({space.describe()}); nothing was stored. "
                "Try again later.",
                retry_after_s=RETRY_AFTER_S,
            )


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a write that found the disk or database full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        if getattr(exc, "sqlstate", None) == PG_DISK_FULL:  # psycopg 3
            return True
        if getattr(exc, "pgcode", None) == PG_DISK_FULL:  # psycopg 2
            return True
        text = str(exc).lower()
        if "database or disk is full" in text or "no space left on device" in text:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def storage_full_error(what: str) -> InsufficientStorage:
    """Return the 507 of a write that hit a full disk while doing ``what``."""
    return InsufficientStorage(
        f"The server's disk filled up while {what}; nothing was kept. Try again later.",
        retry_after_s=RETRY_AFTER_S,
    )
