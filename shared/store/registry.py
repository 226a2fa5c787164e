"""The model registry: which trained model files exist and which one is active.

A model is a ``<version>.keras`` file with its card (:mod:`shared.core.nets.sidecar`) beside it.
Registering reads only the card, so nothing here imports TensorFlow. :func:`sync_model_dir` is
the one owner of "which files are registered and which is active when none was chosen"; it runs
at start-up (``genreflow prepare``/``run``, worker start) and from beat's periodic
``genreflow.sync_models`` task. Everything else here only reads, or acts on an explicit request
(``activate_version``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.core.nets.sidecar import MODEL_SUFFIX, read_sidecar
from shared.errors import ModelError, ModelVersionNotFound
from shared.store.orm import ModelVersion

if TYPE_CHECKING:
    from shared.store.config import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"


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


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_model_dir` changed.

    Attributes
    ----------
    added : list of str
        Versions registered by this call.
    activated : str or None
        The version this call made active (``None`` when the active model did not change).
    """

    added: list[str] = field(default_factory=list)
    activated: str | None = None


def sync_model_dir(session: Session, settings: Settings) -> SyncResult:
    """Register new model files and, when no model is active, activate the newest.

    Looks at the models shipped in ``shared/default_model/`` and at ``settings.model_dir``.
    Files whose card is missing or invalid are skipped with a warning; known versions are left
    as they are. When no model is active afterwards, the newest model just found in the model
    dir is activated, else the newest shipped one, else the newest registered one. An active
    model is not replaced, with one exception: a model the user trained (``genreflow train DIR``
    writes it into the model dir) takes over from the *shipped* model, unless
    ``GENREFLOW_ACTIVATE_POLICY`` is ``never``; rolling back to the shipped one stays possible.

    Parameters
    ----------
    session : Session
        Flushed, not committed; the caller commits.
    settings : Settings
        ``model_dir``.

    Returns
    -------
    SyncResult
    """
    shipped = _register_files(session, _model_files(DEFAULT_MODEL_DIR))
    added = _register_files(session, _model_files(settings.model_dir))
    activated = None
    active = active_model(session)
    candidates: list[ModelVersion] = []
    if active is None:
        candidates = added or shipped or list_models(session)
    elif added and is_shipped(active) and settings.activate_policy != "never":
        candidates = added
    if candidates:
        newest = max(candidates, key=lambda row: (row.created_at, row.version))
        try:
            with session.begin_nested():
                activated = activate_version(session, newest.version).version
        except IntegrityError:  # another process activated one at the same moment
            log.info("another process activated a model first")
    return SyncResult(added=[row.version for row in [*shipped, *added]], activated=activated)


def is_shipped(row: ModelVersion) -> bool:
    """Whether a registered model is one shipped with genreflow (``shared/default_model/``)."""
    return Path(row.path).resolve().parent == DEFAULT_MODEL_DIR.resolve()


def active_model_file(settings: Settings) -> Path | None:
    """Return the active model's file for a command-line run, syncing the registry first.

    The database is migrated when needed (as ``genreflow prepare`` does), so the command line
    and the service always agree on the active model.

    Returns
    -------
    Path or None
        ``None`` when no model is registered (or the active one's file is gone).

    Raises
    ------
    ModelError
        When the database cannot be reached.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from shared.store.db import session_scope, upgrade_database

    try:
        upgrade_database(settings.database_url)
        with session_scope(settings.database_url) as session:
            sync_model_dir(session, settings)
            active = active_model(session)
            path = Path(active.path) if active is not None else None
    except SQLAlchemyError as exc:
        raise ModelError(f"The model registry's database is unavailable: {exc}") from exc
    return path if path is not None and path.is_file() else None


def _model_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{MODEL_SUFFIX}")) if folder.is_dir() else []


def _register_files(session: Session, paths: list[Path]) -> list[ModelVersion]:
    """Register the files not known yet (by path or version); return the new rows."""
    known_paths = set(session.scalars(select(ModelVersion.path)))
    added: list[ModelVersion] = []
    for path in paths:
        if str(path.resolve()) in known_paths:
            continue
        try:
            meta = read_sidecar(path)
        except ModelError as exc:
            log.warning("skipping model file %s: %s", path, exc.detail)
            continue
        if session.get(ModelVersion, meta["version"]) is not None:
            continue
        try:
            with session.begin_nested():
                added.append(register_model(session, path))
        except IntegrityError:  # another process (worker, beat, runner) registered it first
            log.info("model %s was registered by another process", meta["version"])
    return added
