"""The soak benchmark's webhook receiver: a local server that fails a tenth and hangs on a few."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

#: The receiver outwaits genreflow's read timeout (10 s) on a delivery it lets time out.
HANG_S: Final = 12.0


class FlakyReceiver:
    """Answers 500 to ``fail_fraction`` of deliveries, hangs past the timeout on a few.

    Every delivery is logged (JSON lines): time, ``webhook_id``, event ``type``, ``job_id`` and
    ``answer`` (the status sent; 0 for one left to time out).
    """

    def __init__(
        self, log_path: Path, *, seed: int, fail_fraction: float, timeout_fraction: float
    ) -> None:
        self.log_path = log_path
        self.rng = random.Random(seed)
        self.fail_fraction, self.timeout_fraction = fail_fraction, timeout_fraction
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self, *, host: str = "127.0.0.1") -> str:
        """Start serving on ``host``; return the URL to give as ``webhook_url``."""
        receiver = self
        log = self.log_path.open("a")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                event: dict[str, Any] = {}
                with contextlib.suppress(ValueError):
                    event = json.loads(body)
                with receiver.lock:
                    draw = receiver.rng.random()
                answer = 500 if draw < receiver.fail_fraction else 204
                hang = (
                    receiver.fail_fraction
                    <= draw
                    < (receiver.fail_fraction + receiver.timeout_fraction)
                )
                record = {"t": time.time(), "webhook_id": self.headers.get("webhook-id", "?"),
                          "type": event.get("type"), "job_id": (event.get("data") or {}).get("id"),
                          "answer": 0 if hang else answer}  # fmt: skip
                with receiver.lock:
                    receiver.records.append(record)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if hang:
                    time.sleep(HANG_S)
                with contextlib.suppress(OSError):
                    self.send_response(answer)
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://{host}:{self.server.server_address[1]}/hooks"

    def delivered(self) -> set[tuple[str, str]]:
        """Return the ``(job_id, type)`` pairs answered 2xx at least once."""
        with self.lock:
            return {(r["job_id"], r["type"]) for r in self.records if 200 <= r["answer"] < 300}

    def snapshot(self) -> list[dict[str, Any]]:
        """Return a copy of the log."""
        with self.lock:
            return list(self.records)

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
