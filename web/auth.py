"""Who is asking: API keys sent as ``Authorization: Bearer <key>``, and who may do what.

Two levels guard the API (:func:`requires`):

- ``CLIENT``: upload and read (jobs, models, training runs). Any valid key passes; without a key,
  a request from a loopback address passes too unless ``GENREFLOW_REQUIRE_KEYS=1``.
- ``ADMIN``: train, activate and roll back, manage keys. Only a key with the ``admin`` scope.

A request without a usable key is answered ``401`` with ``WWW-Authenticate: Bearer``; a valid
key whose scope is too small gets ``403`` (RFC 9110 §15.5.2 and §15.5.4). Who made a job decides
who may read it (:func:`can_read_job`). The OpenAPI document shows the scheme and the 401/403
answers of every guarded operation (:func:`document_security`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from flask import Flask, g, request
from sqlalchemy import Select

from shared.errors import Forbidden, InvalidApiKey, Unauthorized
from shared.store.keys import find_key
from shared.store.orm import Job, KeyScope
from web.context import get_db, get_settings

SECURITY_SCHEME: Final = "ApiKey"
_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
_ACCESS_ATTR: Final = "_genreflow_access"

F = TypeVar("F", bound=Callable[..., Any])


class Access(StrEnum):
    """What a view needs from the caller."""

    CLIENT = "client"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller: a key's id and scope, or anonymous (both ``None``)."""

    key_id: str | None = None
    scope: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds an admin key."""
        return self.scope == KeyScope.ADMIN.value

    @property
    def is_anonymous(self) -> bool:
        """Whether the caller sent no key."""
        return self.key_id is None


ANONYMOUS: Final = Principal()


def current_principal() -> Principal:
    """Return the caller of this request, reading its ``Authorization`` header once.

    Raises
    ------
    InvalidApiKey
        When a key is sent but is malformed, unknown or revoked.
    """
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization")
    principal = ANONYMOUS
    if header is not None:
        match = _BEARER.match(header)
        if match is None:
            raise InvalidApiKey("Send the key as 'Authorization: Bearer <key>'.")
        row = find_key(get_db(), match.group(1))
        if row is None:
            raise InvalidApiKey("The API key is unknown or has been revoked.")
        principal = Principal(key_id=row.id, scope=row.scope)
    g.principal = principal
    return principal


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` (a client IP) is a loopback address."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_access(access: Access) -> Principal:
    """Return the caller if it may use a view that needs ``access``.

    Raises
    ------
    Unauthorized
        No key (and the request does not qualify for open access), or an invalid key.
    Forbidden
        A valid key whose scope is too small.
    """
    principal = current_principal()
    if access is Access.ADMIN:
        if principal.is_anonymous:
            raise Unauthorized("This needs an API key with the admin scope.")
        if not principal.is_admin:
            raise Forbidden(
                f"This key has the {principal.scope!r} scope; this needs the 'admin' scope."
            )
        return principal
    if principal.is_anonymous and (
        get_settings().require_keys or not is_loopback(request.remote_addr)
    ):
        raise Unauthorized(
            "Send an API key as 'Authorization: Bearer <key>' (create one with "
            "`genreflow keys create`)."
        )
    return principal


def requires(access: Access) -> Callable[[F], F]:
    """Guard a view: check the caller before the view (and its input validation) runs.

    Place it just below the route decorator (``@bp.get(...)``), above ``@bp.input``.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            check_access(access)
            return view(*args, **kwargs)

        setattr(guarded, _ACCESS_ATTR, access)
        return guarded  # type: ignore[return-value]

    return decorate


def can_read_job(job: Job, principal: Principal) -> bool:
    """Whether ``principal`` may read ``job``: admins all, keys their own, anonymous the open."""
    return principal.is_admin or job.api_key_id == principal.key_id


def visible_jobs(query: Select[Any], principal: Principal) -> Select[Any]:
    """Restrict a job query to the jobs ``principal`` may read."""
    if principal.is_admin:
        return query
    if principal.key_id is None:
        return query.where(Job.api_key_id.is_(None))
    return query.where(Job.api_key_id == principal.key_id)


def document_security(app: Flask) -> None:
    """Add the bearer scheme and the 401/403 answers of guarded views to the OpenAPI document.

    Every error response is documented as ``application/problem+json`` as well.
    """

    @app.spec_processor  # type: ignore[attr-defined]
    def add_security(spec: dict[str, Any]) -> dict[str, Any]:
        components = spec.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `genreflow keys create` or POST /api/v1/keys.",
        }
        problem = {"$ref": "#/components/schemas/ProblemOut"}
        for rule in app.url_map.iter_rules():
            view = app.view_functions.get(rule.endpoint)
            access = getattr(view, _ACCESS_ATTR, None)
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            operations = spec.get("paths", {}).get(path)
            if access is None or operations is None:
                continue
            for method in rule.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                operation["security"] = [{SECURITY_SCHEME: []}]
                if access is Access.CLIENT:
                    operation["security"].append({})  # open on loopback unless keys are required
                responses = operation.setdefault("responses", {})
                for status, text in (("401", "No valid API key"), ("403", "Key scope too small")):
                    responses.setdefault(
                        status,
                        {
                            "description": text,
                            "content": {"application/problem+json": {"schema": problem}},
                        },
                    )
        _errors_are_problems(spec)
        return spec


def _errors_are_problems(spec: dict[str, Any]) -> None:
    """Document every 4xx/5xx body as ``application/problem+json``, the type actually sent.

    Every request body is also marked required (``POST /models/train`` takes a missing one as
    ``{}``, for older clients).
    """
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}) if isinstance(response, dict) else {}
                if str(status)[:1] in {"4", "5"} and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")
