"""The private Redis of ``genreflow run`` keeps its queue across a kill -9 (append-only file)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from shared.cli.private_redis import redis_server_executable, write_redis_config
from shared.lifecycle.queues import QUEUE_PREDICT, TASK_CLASSIFY_SONG, celery_config
from tests.redis_server import free_port


@contextlib.contextmanager
def redis_from_config(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``redis-server <config>`` until the block ends; yield the process once it answers."""
    process = subprocess.Popen([redis_server_executable(), str(config)])
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                if client.ping():
                    break
            assert process.poll() is None, "redis exited at start"
            assert time.monotonic() < deadline, "redis did not answer in 10 s"
            time.sleep(0.05)
        yield process
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
        process.wait()


def test_queue_survives_a_kill_of_the_private_redis(tmp_path: Path) -> None:
    from celery import Celery

    port = free_port()
    config = write_redis_config(tmp_path / "redis", port)
    url = f"redis://127.0.0.1:{port}/0"
    with redis_from_config(config, port) as server:
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("save") == {"save": "60 1"}
        app = Celery("sender", set_as_current=False)
        app.conf.update(celery_config(redis_url=url, retrain_cron=None))
        for job_id in ("job-a", "job-b", "job-c"):
            app.send_task(TASK_CLASSIFY_SONG, args=[job_id], queue=QUEUE_PREDICT)
        app.close()
        client.close()
        time.sleep(1.5)  # appendfsync everysec: at most the last second is at risk
        server.kill()  # kill -9: no shutdown save
        server.wait()

    with redis_from_config(config, port):
        client = redis.Redis.from_url(url)
        messages = client.lrange(QUEUE_PREDICT, 0, -1)
        client.close()
    queued = sorted(m.decode() for m in messages)
    assert len(queued) == 3
    for job_id in ("job-a", "job-b", "job-c"):
        assert sum(job_id in m for m in queued) == 1
    assert (tmp_path / "redis" / "appendonly.aof").stat().st_size > 0
