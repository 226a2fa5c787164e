"""The Redis training lock, on a real Redis server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from shared.errors import TrainingBusy, TransientError
from shared.lifecycle.training_lock import TRAINING_LOCK_NAME, training_lock
from tests.redis_server import free_port, running_redis


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    with running_redis() as url:
        connection = redis.Redis.from_url(url)
        yield connection
        connection.close()


def test_second_holder_is_refused_until_the_first_releases(client: redis.Redis) -> None:
    with training_lock(client), pytest.raises(TrainingBusy), training_lock(client):
        pass  # pragma: no cover - never entered

    with training_lock(client):  # released: free again
        assert client.exists(TRAINING_LOCK_NAME)
    assert not client.exists(TRAINING_LOCK_NAME)


def test_lock_is_renewed_while_held_and_expires_when_its_holder_is_gone(
    client: redis.Redis,
) -> None:
    with training_lock(client, ttl_s=0.6):
        time.sleep(1.2)  # twice the TTL: only renewal keeps it
        assert client.exists(TRAINING_LOCK_NAME)

    # A holder that died never releases nor renews: the lock expires by itself.
    client.set(TRAINING_LOCK_NAME, "dead-holder", px=300)
    with pytest.raises(TrainingBusy), training_lock(client):
        pass  # pragma: no cover
    time.sleep(0.4)
    with training_lock(client):
        pass


def test_unreachable_redis_is_transient() -> None:
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)

    with pytest.raises(TransientError), training_lock(dead):
        pass  # pragma: no cover
