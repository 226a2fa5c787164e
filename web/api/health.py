"""Liveness and readiness probes (outside ``/api/v1``)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from shared.errors import QueueUnavailable
from shared.store.disk import disk_spaces
from shared.store.registry import active_model
from web.api.schemas import HealthOut, ReadyOut
from web.context import get_db, get_queue, get_settings
from web.errors import problem_response

bp = APIBlueprint("health", __name__, tag="Health")


@bp.get("/health")
@bp.output(HealthOut)
@bp.doc(summary="Liveness: the web process answers")
def health() -> dict[str, Any]:
    """Answer ``{"status": "ok"}`` without touching the database or the broker."""
    return {"status": "ok"}


@bp.get("/ready")
@bp.output(ReadyOut)
@bp.doc(
    summary="Readiness: database, broker, an active model, a warm predict worker, free disk",
    responses=[503],
)
def ready() -> ResponseReturnValue:
    """Check the database, the broker, the active model and a warm worker; 503 names the failures.

    ``worker`` is ready when a predict worker process holds the active model, so the first job
    pays no model loading; until then its detail starts with "warming up". ``disk`` fails while
    less than ``GENREFLOW_MIN_FREE_MB`` is free where uploads (and a SQLite database) live:
    uploads are answered 507 then.
    """
    checks = {"database": _check_database(), "broker": _check_broker()}
    checks["model"] = (
        _check_model()
        if checks["database"]["ok"]
        else {"ok": False, "detail": "unknown: the database is unavailable"}
    )
    active_version = checks["model"].pop("version", None)
    checks["worker"] = _check_worker(active_version, checks["broker"]["ok"])
    checks["disk"] = _check_disk()
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        return problem_response(
            503, "not_ready", "Not ready",
            "Not ready: " + "; ".join(f"{name}: {checks[name]['detail']}" for name in failed),
            headers={"Retry-After": "5"}, checks=checks, failed=failed,
        )  # fmt: skip
    return {"status": "ready", "checks": checks}


def _check_database() -> dict[str, Any]:
    try:
        get_db().execute(text("SELECT 1"))
    except Exception as exc:
        get_db().rollback()
        return {"ok": False, "detail": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    return {"ok": True, "detail": "reachable"}


def _check_disk() -> dict[str, Any]:
    try:
        spaces = disk_spaces(get_settings())
    except OSError as exc:
        return {"ok": False, "detail": f"cannot measure free space: {exc}"}
    low = [space for space in spaces if space.low]
    if low:
        return {"ok": False, "detail": "low: " + "; ".join(space.describe() for space in low)}
    return {"ok": True, "detail": "; ".join(space.describe() for space in spaces)}


def _check_broker() -> dict[str, Any]:
    try:
        get_queue().ping()
    except QueueUnavailable as exc:
        return {"ok": False, "detail": exc.detail}
    return {"ok": True, "detail": "reachable"}


def _check_model() -> dict[str, Any]:
    db = get_db()
    try:
        model = active_model(db)  # a pure read: the registry syncs the model dir itself
    except Exception as exc:  # e.g. tables missing: the database is not migrated
        db.rollback()
        return {"ok": False, "detail": f"cannot read models ({type(exc).__name__})"}
    if model is None:
        return {"ok": False, "detail": "no active model; train one (see POST /api/v1/jobs 503)"}
    return {"ok": True, "detail": f"active version {model.version}", "version": model.version}


def _check_worker(active_version: str | None, broker_ok: bool) -> dict[str, Any]:
    if not broker_ok:
        return {"ok": False, "detail": "unknown: the broker is unavailable"}
    if active_version is None:
        return {"ok": False, "detail": "waiting for an active model"}
    try:
        warm = get_queue().warm_workers()
    except QueueUnavailable as exc:
        return {"ok": False, "detail": exc.detail}
    n_warm = sum(1 for version in warm.values() if version == active_version)
    if n_warm:
        return {"ok": True, "detail": f"{n_warm} predict process(es) warm with {active_version}"}
    return {
        "ok": False,
        "detail": f"warming up: no predict worker holds model {active_version} yet",
    }
