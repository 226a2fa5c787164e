"""API keys: who is asking (``/whoami``), and the admin's list, create and revoke."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue

from shared.errors import Unauthorized
from shared.store.keys import create_key, get_key, list_keys, revoke_key
from shared.store.orm import ApiKey
from web.api import API_PREFIX
from web.api.key_schemas import KeyIn, KeyListOut, KeyOut, NewKeyOut, WhoAmIOut, dump_key
from web.api.schemas import ListQuery
from web.auth import Access, check_access, current_principal, requires
from web.context import get_db, get_settings

bp = APIBlueprint("keys", __name__, url_prefix=API_PREFIX, tag="Keys")


@bp.get("/whoami")
@bp.output(WhoAmIOut)
@bp.doc(summary="The caller: its key's scope and what it may do", responses=[401])
def whoami() -> dict[str, Any]:
    """Describe the caller (401 when a key is sent that is unknown or revoked)."""
    principal = current_principal()
    try:
        check_access(Access.CLIENT)
        can_upload = True
    except Unauthorized:
        can_upload = False
    return {
        "authenticated": not principal.is_anonymous,
        "key_id": principal.key_id,
        "scope": principal.scope,
        "can_upload": can_upload,
        "can_admin": principal.is_admin,
        "keys_required": get_settings().require_keys,
    }


@bp.get("/keys")
@requires(Access.ADMIN)
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(KeyListOut)
@bp.doc(summary="List API keys, newest first (admin)", responses=[400])
def list_api_keys(query: dict[str, Any]) -> dict[str, Any]:
    """Return every key (never the keys themselves)."""
    del query  # it has no members: only checked for unknown ones
    return {"items": list_keys(get_db())}


@bp.post("/keys")
@requires(Access.ADMIN)
@bp.input(KeyIn, location="json")
@bp.output(NewKeyOut, status_code=201, description="The key, shown this once")
@bp.doc(summary="Create an API key (admin)", responses=[400])
def create_api_key(json_data: dict[str, Any]) -> ResponseReturnValue:
    """Create a key and show it once; only its hash is stored."""
    db = get_db()
    new = create_key(db, name=json_data["name"], scope=json_data["scope"])
    db.commit()
    body = {**dump_key(new.row), "key": new.token}
    return body, 201, {"Location": body["links"]["self"], "Cache-Control": "no-store"}


@bp.get("/keys/<key_id>")
@requires(Access.ADMIN)
@bp.output(KeyOut)
@bp.doc(summary="Get an API key (admin)", responses=[404])
def get_api_key(key_id: str) -> ApiKey:
    """Return one key (never the key itself)."""
    return get_key(get_db(), key_id)


@bp.delete("/keys/<key_id>")
@requires(Access.ADMIN)
@bp.output(KeyOut)
@bp.doc(summary="Revoke an API key (admin)", responses=[404])
def revoke_api_key(key_id: str) -> ApiKey:
    """Revoke a key at once; it is kept, marked revoked, so jobs still name it."""
    db = get_db()
    row = revoke_key(db, key_id)
    db.commit()
    return row
