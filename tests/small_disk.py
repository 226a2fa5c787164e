"""A real small filesystem for full-disk tests: a tmpfs of a few MiB (needs root to mount).

``small_disk(path, size_mb)`` mounts one and unmounts it afterwards; without root (or where
mounting is not allowed, e.g. an unprivileged container) the test is skipped with the reason.
``fill(path, leave_bytes)`` writes a filler file until only ``leave_bytes`` stay free.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHUNK = 64 * 1024


@contextmanager
def small_disk(path: Path, size_mb: int = 4) -> Iterator[Path]:
    """Mount a ``size_mb`` MiB tmpfs at ``path`` for the block; skip the test if impossible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, *, leave_bytes: int = 0, name: str = "filler.bin") -> Path:
    """Write ``directory/name`` until at most ``leave_bytes`` are free on its filesystem."""
    target = directory / name
    with target.open("ab", buffering=0) as out:
        while (free := shutil.disk_usage(directory).free) > leave_bytes:
            try:
                out.write(b"\0" * min(CHUNK, max(4096, free - leave_bytes)))
            except OSError:
                break
    return target
