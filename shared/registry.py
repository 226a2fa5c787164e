"""The model registry: which trained model files exist and which one is active.

A model is a ``<version>.keras`` file with a sidecar ``<version>.json`` beside it (keys
``version``, ``genres``, ``feature_config``, ``metrics``, ``data_fingerprint``, ``created_at``).
Registering reads only the sidecar, so nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.errors import ModelError, ModelVersionNotFound
from shared.model import read_sidecar as read_sidecar_file
from shared.model import sidecar_path
from shared.models import ModelVersion

if TYPE_CHECKING:
    from shared.config import Settings

log = logging.getLogger(__name__)

MODEL_SUFFIX = ".keras"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def read_sidecar(model_path: str | Path) -> dict[str, Any]:
    """Read and check the sidecar JSON of a ``.keras`` model file.

    Parameters
    ----------
    model_path : str or Path
        The ``.keras`` file; its sidecar is ``<stem>.json`` in the same folder.

    Returns
    -------
    dict
        The sidecar, with at least ``version`` (str) and ``genres`` (non-empty list).

    Raises
    ------
    ModelError
        If the model file or its sidecar is missing, or the sidecar is not valid.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist.")
    sidecar = sidecar_path(path)
    data = read_sidecar_file(path)
    if not isinstance(data, dict):
        raise ModelError(f"Model sidecar {sidecar.name} is not a JSON object.")
    version = data.get("version") or path.stem
    genres = data.get("genres")
    if not isinstance(version, str) or not version.strip() or "/" in version:
        raise ModelError(f"Model sidecar {sidecar.name} has an invalid version {version!r}.")
    if not isinstance(genres, list) or not genres or not all(isinstance(g, str) for g in genres):
        raise ModelError(f"Model sidecar {sidecar.name} must list the model's genres.")
    data["version"] = version
    return data


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register_model(
    session: Session,
    model_path: str | Path,
    *,
    activate: bool = False,
    training_run_id: str | None = None,
) -> ModelVersion:
    """Register a model file (idempotent: a known version is returned, its path refreshed).

    Parameters
    ----------
    session : Session
        Flushed, not committed; the caller commits.
    model_path : str or Path
        The ``.keras`` file, with its sidecar beside it.
    activate : bool
        Make this the active model.
    training_run_id : str, optional
        The training run that produced it.

    Returns
    -------
    ModelVersion

    Raises
    ------
    ModelError
        If the file or sidecar is missing or invalid.
    """
    path = Path(model_path).resolve()
    meta = read_sidecar(path)
    row = session.get(ModelVersion, meta["version"])
    if row is None:
        row = ModelVersion(
            version=meta["version"],
            path=str(path),
            created_at=_parse_time(meta.get("created_at")) or datetime.now(UTC),
            genres=list(meta["genres"]),
            metrics=meta.get("metrics"),
            feature_config=meta.get("feature_config"),
            data_fingerprint=meta.get("data_fingerprint"),
            active=False,
            training_run_id=training_run_id,
        )
        session.add(row)
        session.flush()
        log.info("registered model %s from %s", row.version, path)
    else:
        row.path = str(path)
        if training_run_id is not None:
            row.training_run_id = training_run_id
    if activate:
        activate_version(session, row.version)
    return row


def active_model(session: Session) -> ModelVersion | None:
    """Return the active model version, or ``None`` when none is active."""
    return session.scalars(select(ModelVersion).where(ModelVersion.active.is_(True))).first()


def list_models(session: Session) -> list[ModelVersion]:
    """Return every registered model, newest first."""
    query = select(ModelVersion).order_by(
        ModelVersion.created_at.desc(), ModelVersion.version.desc()
    )
    return list(session.scalars(query))


def get_model(session: Session, version: str) -> ModelVersion:
    """Return the registered model ``version``.

    Raises
    ------
    ModelVersionNotFound
        If no model has that version.
    """
    row = session.get(ModelVersion, version)
    if row is None:
        raise ModelVersionNotFound(f"No model version {version!r} is registered.")
    return row


def activate_version(session: Session, version: str) -> ModelVersion:
    """Make ``version`` the one active model (flushed, not committed).

    Raises
    ------
    ModelVersionNotFound
        If no model has that version.
    """
    row = get_model(session, version)
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.active.is_(True), ModelVersion.version != version)
        .values(active=False)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    row.active = True
    session.flush()
    return row


activate = activate_version


def register_default_model(session: Session, settings: Settings) -> ModelVersion | None:
    """Register the model shipped in ``shared/default_model/`` (if any), on first start.

    It is activated only when no model is active yet. ``settings`` is accepted for symmetry with
    :func:`scan_model_dir` (the shipped model stays where the package keeps it).

    Returns
    -------
    ModelVersion or None
        The shipped model's row, or ``None`` when the package ships none.
    """
    del settings  # the shipped model is read in place
    return _register_newest(session, sorted(DEFAULT_MODEL_DIR.glob(f"*{MODEL_SUFFIX}")))


def scan_model_dir(session: Session, settings: Settings) -> list[ModelVersion]:
    """Register model files in ``settings.model_dir`` that the database does not know yet.

    Files whose sidecar is missing or invalid are skipped with a warning. When no model is
    active, the newest model found becomes active, so ``genreflow train DIR --out
    $GENREFLOW_MODEL_DIR`` makes a usable service.

    Returns
    -------
    list of ModelVersion
        The rows added by this call.
    """
    if not settings.model_dir.is_dir():
        return []
    known_paths = set(session.scalars(select(ModelVersion.path)))
    added: list[ModelVersion] = []
    for path in sorted(settings.model_dir.glob(f"*{MODEL_SUFFIX}")):
        resolved = str(path.resolve())
        if resolved in known_paths:
            continue
        try:
            meta = read_sidecar(path)
        except ModelError as exc:
            log.warning("skipping model file %s: %s", path, exc.detail)
            continue
        if session.get(ModelVersion, meta["version"]) is not None:
            continue
        added.append(register_model(session, path))
    if active_model(session) is None:
        newest = list_models(session)
        if newest:
            activate_version(session, newest[0].version)
    return added


def _register_newest(session: Session, paths: list[Path]) -> ModelVersion | None:
    rows: list[ModelVersion] = []
    for path in paths:
        try:
            rows.append(register_model(session, path))
        except ModelError as exc:
            log.warning("skipping shipped model %s: %s", path, exc.detail)
    if not rows:
        return None
    newest = max(rows, key=lambda row: row.created_at)
    if active_model(session) is None:
        activate_version(session, newest.version)
    return newest
