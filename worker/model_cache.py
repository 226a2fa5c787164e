"""The per-process model cache of a predict worker.

Each predict pool process loads the active model as it starts (:mod:`worker.warmup`, after the
prefork fork, never at import time) and keeps it; ONNX Runtime scores it when the model has its
ONNX artefact (:mod:`shared.core.serving.inference`), so the process does not import TensorFlow.
Every task asks the database which version is active (one cheap query); when another version has
been activated since, the new one is loaded and swapped in.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from shared.errors import ModelError
from shared.store.registry import active_model

if TYPE_CHECKING:
    from shared.core.nets.genre_model import GenreModel
    from shared.store.config import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cached: GenreModel | None = None
_cached_key: tuple[str, str] | None = None


def get_active_model(session: Session, settings: Settings | None = None) -> GenreModel:
    """Return the loaded active model, loading or swapping it when the active version changed.

    Parameters
    ----------
    session : Session
        Used for one query of the active :class:`~shared.store.orm.ModelVersion`.
    settings : Settings, optional
        A relative model path in the registry is resolved against ``settings.model_dir``.

    Returns
    -------
    GenreModel

    Raises
    ------
    ModelError
        If no model is active, or its file cannot be loaded.
    """
    global _cached, _cached_key
    row = active_model(session)
    if row is None:
        raise ModelError(
            "No model is active. Train one (genreflow train DIR) or activate a registered version."
        )
    path = Path(row.path)
    if not path.is_absolute() and settings is not None:
        path = settings.model_dir / path
    key = (row.version, str(path))
    with _lock:
        if _cached is not None and _cached_key == key:
            return _cached
        from shared.core.serving.inference import load_served_model

        log.info("loading model %s from %s", row.version, path)
        serving = settings.serving_options() if settings is not None else None
        model = load_served_model(path, serving=serving)
        _cached, _cached_key = model, key
        return model


def cached_version() -> str | None:
    """Return the version held by this process's cache, if any (for logs and tests)."""
    return _cached_key[0] if _cached_key else None


def clear_model_cache() -> None:
    """Forget the cached model (tests; or to free memory)."""
    global _cached, _cached_key
    with _lock:
        _cached, _cached_key = None, None
