"""Free space and full-disk errors (``shared/store/disk.py``)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from shared.errors import InsufficientStorage
from shared.store.config import Settings
from shared.store.disk import disk_spaces, is_disk_full, require_free_space


def test_full_disk_errors_are_recognised_and_others_are_not() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(OperationalError("INSERT ...", {}, full))
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_disk_full(wrapped)

    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(OperationalError("SELECT", {}, sqlite3.OperationalError("locked")))
    assert not is_disk_full(None)


def test_a_real_sqlite_error_of_another_kind_is_not_a_full_disk(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(OperationalError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    engine.dispose()
    assert not is_disk_full(caught.value)


def test_require_free_space_counts_the_incoming_bytes(settings: Settings) -> None:
    (space,) = disk_spaces(settings)  # uploads and the SQLite file share the test's disk
    require_free_space(settings, incoming_bytes=0)  # GENREFLOW_MIN_FREE_MB=1 in the tests
    with pytest.raises(InsufficientStorage) as caught:
        require_free_space(settings, incoming_bytes=space.free_bytes)
    assert caught.value.status == 507
    assert caught.value.headers["Retry-After"] == "300"
    assert "GENREFLOW_MIN_FREE_MB=1" in caught.value.detail
