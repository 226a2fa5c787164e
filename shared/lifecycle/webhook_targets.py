"""Webhooks may not be aimed inward: refuse targets on loopback, link-local or private networks.

:func:`check_webhook_target` runs when a job is submitted (a literal address, or a name that
resolves to one, is refused with 400; a name that does not resolve passes). Right before each
delivery, :func:`pin_webhook_target` resolves the name afresh, checks every address, and returns
the one the request must connect to: the delivery connects to that address
(:func:`shared.lifecycle.webhooks.post_webhook`), keeping the name for the ``Host`` header and
TLS, so no second DNS answer (DNS rebinding) can slip an inward address in between.
``GENREFLOW_WEBHOOK_ALLOW_PRIVATE=1`` turns the inward check off (tests, the embedded run); the
address is pinned all the same.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from shared.errors import WebhookTargetRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IpAddress]]


class UnresolvableHost(Exception):
    """The webhook's host name does not resolve (now)."""


def resolve_host(host: str, port: int) -> list[IpAddress]:
    """Return every address ``host`` resolves to for TCP.

    Raises
    ------
    UnresolvableHost
        When the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{host}: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def is_inward(address: IpAddress) -> bool:
    """Whether ``address`` is loopback, link-local, private, or otherwise not a public host."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def pin_webhook_target(
    url: str,
    *,
    allow_private: bool,
    resolve: Resolver = resolve_host,
) -> str:
    """Resolve a webhook URL's host once, check it, and return the address to connect to.

    Parameters
    ----------
    url : str
        An absolute http(s) URL.
    allow_private : bool
        ``GENREFLOW_WEBHOOK_ALLOW_PRIVATE``: when true, inward addresses are allowed.
    resolve : callable(host, port) -> list of addresses
        The resolver (DNS by default).

    Returns
    -------
    str
        The first address of the host (all of them passed the check).

    Raises
    ------
    WebhookTargetRefused
        When any address of the host is inward (or the port is invalid).
    UnresolvableHost
        When the name does not resolve now (the attempt fails and is retried later).
    """
    host, port = _host_port(url)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = resolve(host, port)
    if not addresses:
        raise UnresolvableHost(f"{host}: no address")
    if not allow_private:
        _refuse_inward(host, addresses)
    return str(addresses[0])


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookTargetRefused(f"The webhook URL has an invalid port: {url[:200]!r}.") from None


def _refuse_inward(host: str, addresses: list[IpAddress]) -> None:
    inward = [str(address) for address in addresses if is_inward(address)]
    if inward:
        raise WebhookTargetRefused(
            f"The webhook host {host!r} is on a loopback, link-local or private address "
            f"({', '.join(sorted(set(inward)))}); webhooks must reach a public address "
            "(an operator may allow private targets with GENREFLOW_WEBHOOK_ALLOW_PRIVATE=1)."
        )


def check_webhook_target(
    url: str,
    *,
    allow_private: bool,
    resolve: Resolver = resolve_host,
) -> None:
    """Refuse a webhook URL whose host is, or resolves to, an inward address.

    Parameters
    ----------
    url : str
        An absolute http(s) URL.
    allow_private : bool
        ``GENREFLOW_WEBHOOK_ALLOW_PRIVATE``: when true, nothing is checked.
    resolve : callable(host, port) -> list of addresses
        The resolver (DNS by default).

    Raises
    ------
    WebhookTargetRefused
        When any address of the host is inward. A name that does not resolve passes: the
        request itself would fail to connect.
    """
    if allow_private:
        return
    try:
        pin_webhook_target(url, allow_private=False, resolve=resolve)
    except UnresolvableHost:
        return
