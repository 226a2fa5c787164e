"""Classify songs on a genreflow server through its API: upload, poll, read the result.

The API's answers are handled as its OpenAPI document says (``POST /api/v1/jobs``): 200/202
give a job to poll; 413 (too large or too long), 415 (not audio) and 422 (unreadable) are the
song's error row; 429 (rate limit), 503 (no model or queue) and 507 (the server's disk is low)
carry ``Retry-After``: the client waits that long and tries again, up to ``max_tries``, unless
the wait is longer than ``max_wait_s`` (then the row says when to retry). 401 and 403 stop the
run (:class:`shared.errors.ServerUnusable`). HTTP is :mod:`requests`; refused connections are
retried by urllib3's :class:`~urllib3.util.Retry`.
"""

from __future__ import annotations

import mimetypes
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from shared.errors import ServerUnusable
from shared.library.files import content_hash
from shared.library.results import SongResult

API = "/api/v1"
#: Answers that say "not now": wait ``Retry-After`` seconds, then send the song again.
RETRY_LATER = frozenset({429, 503, 507})
#: Answers that say the key cannot be used: the run stops.
REFUSED_KEY = frozenset({401, 403})
FINAL_STATUSES = frozenset({"done", "failed"})
#: Songs uploaded at once when the caller does not say.
SERVER_JOBS = 4


class SongRefused(Exception):
    """The server refused or failed one song; ``str(exc)`` is the row's reason."""


def problem_text(response: requests.Response) -> str:
    """Return ``"<status> <code>: <detail>"`` from a problem+json answer (or its text)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("code") or response.reason or ""
    detail = body.get("detail") or body.get("title") or response.text[:200]
    return f"{response.status_code} {code}: {detail}".strip()


def retry_after_s(response: requests.Response, default: float = 5.0) -> float:
    """Return the answer's ``Retry-After`` in seconds, or ``default`` when it has none.

    Seconds are what genreflow sends; an HTTP date (RFC 9110 allows one) counts from now.
    """
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class GenreflowServer:
    """A genreflow service reached over HTTP.

    Parameters
    ----------
    base_url : str
        The service's root, e.g. ``http://cluster:8000``.
    key : str, optional
        An API key (``classify`` scope is enough), sent as ``Authorization: Bearer``.
    max_tries : int >= 1
        Uploads of one song while the server answers 429/503/507.
    max_wait_s : float >= 0
        Longest ``Retry-After`` honoured; a longer one ends that song's tries.
    poll_interval_s, job_timeout_s, request_timeout_s : float > 0
        Seconds between polls of a job, before giving up on a job, and per HTTP request.
    """

    base_url: str
    key: str | None = None
    max_tries: int = 5
    max_wait_s: float = 600.0
    poll_interval_s: float = 0.5
    job_timeout_s: float = 3600.0
    request_timeout_s: float = 120.0
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    @property
    def session(self) -> requests.Session:
        """Return this thread's HTTP session (requests' sessions are not shared across threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            retry = Retry(connect=3, read=0, status=0, other=0, backoff_factor=0.5)
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            session.headers["Accept"] = "application/json"
            if self.key:
                session.headers["Authorization"] = f"Bearer {self.key}"
            self._local.session = session
        return session

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, self.base_url + API + path, timeout=self.request_timeout_s, **kwargs
            )
        except requests.RequestException as exc:
            raise ServerUnusable(f"Cannot reach {self.base_url}: {exc}") from exc
        if response.status_code in REFUSED_KEY:
            raise ServerUnusable(f"{self.base_url} refused the request: {problem_text(response)}")
        return response

    def active_model(self) -> str:
        """Return the server's active model version (``""`` when none is active)."""
        response = self._request("GET", "/models")
        if response.status_code != 200:
            raise ServerUnusable(f"{self.base_url}: {problem_text(response)}")
        return str(response.json().get("active_version") or "")

    def classify(self, path: str | os.PathLike[str], sha256: str = "") -> SongResult:
        """Upload one song, wait for its job and return its row (an error row if refused).

        Raises
        ------
        ServerUnusable
            The server cannot be reached or refuses the key: no song can go through.
        """
        path = Path(path)
        try:
            sha256 = sha256 or content_hash(path)
            job = self.wait_for(self.upload(path))
        except SongRefused as exc:
            return SongResult.failed(path, str(exc), sha256=sha256)
        except OSError as exc:
            return SongResult.failed(path, f"{path}: {exc.strerror or exc}", sha256=sha256)
        if job["status"] != "done":
            error = job.get("error") or {}
            reason = f"{error.get('code', 'failed')}: {error.get('detail', 'the job failed')}"
            return SongResult.failed(path, reason, sha256=sha256)
        result = {"model_version": job.get("model_version"), **job["result"]}
        return SongResult.from_prediction(path, result, sha256=sha256)

    def upload(self, path: Path) -> dict[str, Any]:
        """Send a song to ``POST /api/v1/jobs``, waiting out 429/503/507; return the job."""
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        for attempt in range(1, self.max_tries + 1):
            with path.open("rb") as handle:
                response = self._request(
                    "POST", "/jobs", files={"file": (path.name, handle, content_type)}
                )
            if response.status_code in (200, 202):
                return response.json()
            reason = problem_text(response)
            if response.status_code not in RETRY_LATER:
                raise SongRefused(reason)
            wait = retry_after_s(response)
            if wait > self.max_wait_s:
                raise SongRefused(f"{reason} (Retry-After {wait:g} s, over --max-wait)")
            if attempt == self.max_tries:
                raise SongRefused(f"{reason} (still refused after {attempt} tries)")
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_for(self, job: dict[str, Any]) -> dict[str, Any]:
        """Poll a job until it is done or failed; return its last state."""
        deadline = time.monotonic() + self.job_timeout_s
        while job.get("status") not in FINAL_STATUSES:
            if time.monotonic() > deadline:
                raise SongRefused(f"job {job.get('id')} not finished after {self.job_timeout_s} s")
            time.sleep(self.poll_interval_s)
            response = self._request("GET", f"/jobs/{job['id']}")
            if response.status_code != 200:
                raise SongRefused(problem_text(response))
            job = response.json()
        return job


def classify_remotely(
    songs: Sequence[tuple[str, str]], server: GenreflowServer, *, jobs: int = 1
) -> Iterator[SongResult]:
    """Classify songs on ``server``, ``jobs`` uploads at a time; yield rows as they finish.

    Raises
    ------
    ServerUnusable
        The server cannot be reached or refuses the key (the songs not yet sent are not).
    """
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(server.classify, path, sha256) for path, sha256 in songs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
