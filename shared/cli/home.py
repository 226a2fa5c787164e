"""A home for ``genreflow run`` and ``genreflow prepare``: its folders, database, models and keys.

Also the advice printed while no model is active, in the user's own terms.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shared.store.config import SHARE_MARKER
from shared.store.keys import ADMIN_KEY_FILE

if TYPE_CHECKING:
    from shared.store.config import Settings

#: Under ``GENREFLOW_HOME``: prometheus_client's multiprocess files of the web workers.
METRICS_DIR: Final = "metrics"

#: Memory-backed folder preferred for those files (see :func:`metrics_dir`).
SHM_DIR: Final = Path("/dev/shm")


def metrics_dir(settings: Settings) -> Path:
    """Return where the web workers keep their multiprocess metrics files.

    The files are memory-mapped: on a full disk, a write to one kills the web worker with
    SIGBUS. So they live in RAM (``/dev/shm/genreflow-metrics-<home hash>``) where that exists,
    else under ``$GENREFLOW_HOME/metrics``.
    """
    if SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK):
        digest = hashlib.sha256(str(settings.home).encode()).hexdigest()[:12]
        return SHM_DIR / f"genreflow-metrics-{digest}"
    return settings.home / METRICS_DIR


def prepare_home(settings: Settings) -> str | None:
    """Create the directories, migrate the database and sync the model registry.

    Returns
    -------
    str or None
        The active model version, or ``None`` when no model is active.
    """
    from shared.store.db import session_scope, upgrade_database
    from shared.store.registry import active_model, sync_model_dir

    settings.ensure_dirs()
    mark_shared_folders(settings)
    upgrade_database(settings.database_url)
    with session_scope(settings.database_url) as session:
        sync_model_dir(session, settings)
        active = active_model(session)
        return active.version if active is not None else None


def mark_shared_folders(settings: Settings) -> None:
    """Leave :data:`SHARE_MARKER` in the uploads and models folders (once)."""
    for folder in (settings.upload_dir, settings.model_dir):
        marker = folder / SHARE_MARKER
        if not marker.exists():
            marker.write_text(f"genreflow shared folder {uuid.uuid4()}\n")


def prepare_admin_key(settings: Settings) -> tuple[Path, bool]:
    """Make sure an admin key exists for this home and reset the metrics directory.

    Returns
    -------
    tuple of (Path, bool)
        The file holding the admin key, and whether it was just made.
    """
    from shared.store.db import session_scope
    from shared.store.keys import ensure_admin_key

    folder = metrics_dir(settings)
    shutil.rmtree(folder, ignore_errors=True)  # counts of an earlier run's processes
    folder.mkdir(parents=True, exist_ok=True)
    with session_scope(settings.database_url) as session:
        return ensure_admin_key(session, settings.home)


def genreflow_command() -> str:
    """Return how to call ``genreflow`` from this shell: its name if on PATH, else its path."""
    if shutil.which("genreflow"):
        return "genreflow"
    script = Path(sys.executable).parent / "genreflow"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def no_model_message(settings: Settings, base_url: str) -> str:
    """Return the plain advice printed when no model is active yet."""
    command = genreflow_command()
    return (
        "No model is active yet, so uploads are refused (503) until there is one. To get one:\n"
        f"  {command} demo-data var/demo && {command} train var/demo"
        "   # a synthetic demo, about a minute\n"
        f"  {command} train /path/to/gtzan   # real music, <genre>/<file>\n"
        f"The model lands in {settings.model_dir}; this service picks it\n"
        "up within seconds and activates it. Or set GENREFLOW_TRAIN_DATA_DIR and\n"
        f'  curl -X POST -H "Authorization: Bearer $(cat {settings.home / ADMIN_KEY_FILE})" '
        f"{base_url}/api/v1/models/train\n"
        "to train and activate one while the service runs."
    )
