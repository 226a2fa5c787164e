"""The cluster-wide training lock in Redis: two trainings never overlap, even on several workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from shared.errors import TrainingBusy, TransientError

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

TRAINING_LOCK_NAME: Final = "genreflow:training-lock"
#: The lock expires this long after its holder stops renewing it (a killed training worker),
#: so a crash blocks other trainings for minutes, not hours. Renewed every third of it.
TRAINING_LOCK_TTL_S: Final = 600.0


@contextmanager
def training_lock(redis: Redis, *, ttl_s: float = TRAINING_LOCK_TTL_S) -> Iterator[None]:
    """Hold the cluster-wide training lock for the duration of the block.

    A daemon thread renews the lock every ``ttl_s / 3`` seconds while the block runs.

    Parameters
    ----------
    redis : redis.Redis
        The broker's Redis.
    ttl_s : float > 0
        The lock expires this long after the last renewal (when its holder died).

    Raises
    ------
    TrainingBusy
        At once, when another training holds the lock.
    TransientError
        When Redis cannot be reached.
    """
    from redis.exceptions import LockError, RedisError

    # thread_local=False: the renewer thread must see the token the task thread acquired with.
    lock = redis.lock(TRAINING_LOCK_NAME, timeout=ttl_s, blocking=False, thread_local=False)
    try:
        acquired = lock.acquire(blocking=False)
    except RedisError as exc:
        raise TransientError(f"Redis unavailable for the training lock: {exc}") from exc
    if not acquired:
        raise TrainingBusy("another training is running")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                lock.reacquire()
            except (LockError, RedisError) as exc:  # keep trying: Redis may come back
                log.warning("could not renew the training lock: %s", exc)

    renewer = threading.Thread(target=renew, name="training-lock-renewer", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        try:
            lock.release()
        except (LockError, RedisError) as exc:  # expired or Redis gone: nothing left to free
            log.warning("could not release the training lock: %s", exc)
