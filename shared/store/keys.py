"""API keys: create, look up, list and revoke; only a hash of each key is ever stored.

A key is ``gf_`` followed by 43 URL-safe characters of :func:`secrets.token_urlsafe` (256 random
bits). The database keeps its SHA-256 digest, its scope and an 11-character prefix for people to
recognise it by; the key itself is shown once, when it is made.

Why a plain SHA-256 and not bcrypt or Argon2: slow, salted hashes exist to protect *guessable*
secrets (passwords) from a dictionary attack once the hashes leak. A 256-bit random token cannot
be guessed, so one SHA-256 already makes a leaked table useless, and it lets every request find
its key by an indexed lookup of the digest instead of a slow comparison against every row.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import ApiKeyNotFound, GenreflowError
from shared.store.columns import utcnow
from shared.store.orm import ApiKey, KeyScope

KEY_PREFIX: Final = "gf_"
TOKEN_BYTES: Final = 32
SHOWN_PREFIX_CHARS: Final = 11
MAX_NAME_CHARS: Final = 100
ADMIN_KEY_FILE: Final = "admin_key"
EMBEDDED_KEY_NAME: Final = "embedded admin"
SCOPES: Final = tuple(scope.value for scope in KeyScope)


@dataclass(frozen=True)
class NewKey:
    """A key just made: its row, and the token itself (shown once, never stored)."""

    row: ApiKey
    token: str


def hash_token(token: str) -> str:
    """Return the hex SHA-256 digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def make_token() -> str:
    """Return a new random key: ``gf_`` + 256 random bits, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def create_key(session: Session, *, name: str, scope: str, token: str | None = None) -> NewKey:
    """Add a key with ``scope`` and return it with its token (the caller commits).

    Parameters
    ----------
    session : Session
    name : str
        A label for people (1 to 100 characters), e.g. who uses the key.
    scope : {"classify", "admin"}
    token : str, optional
        Register this token instead of making one (used for the embedded admin key file).

    Returns
    -------
    NewKey

    Raises
    ------
    GenreflowError
        If ``scope`` is not a known scope or ``name`` is empty or too long.
    """
    name = name.strip()
    if scope not in SCOPES:
        raise GenreflowError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}.")
    if not name or len(name) > MAX_NAME_CHARS:
        raise GenreflowError(f"A key's name must have 1 to {MAX_NAME_CHARS} characters.")
    token = token or make_token()
    row = ApiKey(
        name=name,
        scope=scope,
        prefix=token[:SHOWN_PREFIX_CHARS],
        key_hash=hash_token(token),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return NewKey(row=row, token=token)


def find_key(session: Session, token: str) -> ApiKey | None:
    """Return the active (not revoked) key whose token is ``token``, or ``None``."""
    if not token.startswith(KEY_PREFIX):
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_token(token))).first()
    return row if row is not None and row.active else None


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    """Return every key, newest first."""
    query = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def get_key(session: Session, key_id: str) -> ApiKey:
    """Return the key with id ``key_id`` or its prefix.

    Raises
    ------
    ApiKeyNotFound
        If no key (or more than one, for a prefix) matches.
    """
    row = session.get(ApiKey, key_id)
    if row is None and key_id.startswith(KEY_PREFIX):
        matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == key_id)))
        row = matches[0] if len(matches) == 1 else None
    if row is None:
        raise ApiKeyNotFound(f"No API key has id or prefix {key_id!r}.")
    return row


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key (by id or prefix); revoking twice keeps the first time. The caller commits."""
    row = get_key(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def ensure_admin_key(session: Session, home: Path) -> tuple[Path, bool]:
    """Make sure an admin key exists for an embedded run; keep it in ``home/admin_key``.

    When the file holds a key the database knows and has not revoked, nothing changes. Otherwise
    a new admin key is made, its token written to the file (mode 0600, like the webhook secret)
    and its hash to the database. The caller commits.

    Parameters
    ----------
    session : Session
    home : Path
        ``GENREFLOW_HOME``.

    Returns
    -------
    tuple of (Path, bool)
        The file, and whether a new key was made.
    """
    path = home / ADMIN_KEY_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token and find_key(session, token) is not None:
            return path, False
    new = create_key(session, name=EMBEDDED_KEY_NAME, scope=KeyScope.ADMIN.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)
    os.chmod(tmp, 0o600)
    tmp.write_text(new.token + "\n", encoding="utf-8")
    tmp.replace(path)
    return path, True
