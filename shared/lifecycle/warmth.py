"""Which predict worker processes hold a loaded model: short-lived keys in the broker's Redis.

Each warm predict process keeps ``genreflow:warm:<worker id>`` set to the model version it holds,
refreshed every :data:`REFRESH_S` seconds with a :data:`TTL_S`-second expiry, so a process that
dies drops out of the set within seconds. ``/ready`` reads the set: the service is ready when a
process holds the active model. Light: only ``redis`` is imported, and only by the caller's
client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from redis import Redis

KEY_PREFIX: Final = "genreflow:warm:"
#: Seconds between a warm process's refreshes of its key (and checks for a new active model).
REFRESH_S: Final = 2.0
#: Seconds a key outlives its last refresh.
TTL_S: Final = 10


def mark_warm(redis: Redis, worker_id: str, version: str, *, ttl_s: int = TTL_S) -> None:
    """Record that ``worker_id`` holds model ``version`` for the next ``ttl_s`` seconds."""
    redis.set(f"{KEY_PREFIX}{worker_id}", version, ex=ttl_s)


def mark_cold(redis: Redis, worker_id: str) -> None:
    """Forget ``worker_id`` (its process is stopping)."""
    redis.delete(f"{KEY_PREFIX}{worker_id}")


def warm_versions(redis: Redis) -> dict[str, str]:
    """Return ``{worker id: model version}`` of every warm predict process."""
    keys = list(redis.scan_iter(match=f"{KEY_PREFIX}*", count=100))
    if not keys:
        return {}
    values = redis.mget(keys)
    return {
        _text(key).removeprefix(KEY_PREFIX): _text(value)
        for key, value in zip(keys, values, strict=True)
        if value is not None
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
