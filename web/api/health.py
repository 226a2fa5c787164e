"""Liveness and readiness probes (outside ``/api/v1``)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from shared.errors import QueueUnavailable
from shared.store.registry import active_model
from web.api.schemas import HealthOut, ReadyOut
from web.context import get_db, get_queue
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
@bp.doc(summary="Readiness: database, broker and an active model", responses=[503])
def ready() -> ResponseReturnValue:
    """Check the database, the broker and the active model; 503 names what failed."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    checks["model"] = (
        _check_model()
        if checks["database"]["ok"]
        else {"ok": False, "detail": "unknown: the database is unavailable"}
    )
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
    return {"ok": True, "detail": f"active version {model.version}"}
