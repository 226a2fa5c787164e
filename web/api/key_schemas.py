"""Schemas of API keys and of the caller: a key to create, a key as listed, ``whoami``."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields
from apiflask.validators import Length, OneOf
from marshmallow import pre_dump

from shared.store.columns import isoformat
from shared.store.keys import MAX_NAME_CHARS as MAX_KEY_NAME_CHARS
from shared.store.orm import ApiKey, KeyScope
from web.api import API_PREFIX


class KeyIn(Schema):
    """A key to create: a label and a scope."""

    name = fields.String(
        required=True,
        validate=Length(min=1, max=MAX_KEY_NAME_CHARS),
        metadata={"description": "who or what uses the key", "example": "mobile app"},
    )
    scope = fields.String(
        required=True,
        validate=OneOf([s.value for s in KeyScope]),
        metadata={"description": "classify: upload, read own jobs; admin: everything"},
    )


class KeyOut(Schema):
    """An API key as listed: never the key itself, only its first characters."""

    id = fields.String()
    name = fields.String()
    scope = fields.String(validate=OneOf([s.value for s in KeyScope]))
    prefix = fields.String(metadata={"description": "the key's first characters"})
    created_at = fields.String(metadata={"format": "date-time"})
    revoked_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    active = fields.Boolean()
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, ApiKey):
            return data
        return dump_key(data)


def dump_key(key: ApiKey) -> dict[str, Any]:
    """Return the API shape of a key (never the key itself nor its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "created_at": isoformat(key.created_at),
        "revoked_at": isoformat(key.revoked_at),
        "active": key.active,
        "links": {"self": f"{API_PREFIX}/keys/{key.id}"},
    }


class NewKeyOut(KeyOut):
    """A key just created, with the key itself: shown this once, stored only as a hash."""

    key = fields.String(metadata={"description": "send as 'Authorization: Bearer <key>'"})


class KeyItemOut(KeyOut):
    """An API key inside a listing (a distinct class for the reason given at ModelItemOut)."""


class KeyListOut(Schema):
    """Every API key, newest first (revoked ones included)."""

    items = fields.List(fields.Nested(KeyItemOut))


class WhoAmIOut(Schema):
    """The caller as the server sees it."""

    authenticated = fields.Boolean()
    key_id = fields.String(allow_none=True)
    scope = fields.String(allow_none=True)
    can_upload = fields.Boolean()
    can_admin = fields.Boolean()
    keys_required = fields.Boolean()
