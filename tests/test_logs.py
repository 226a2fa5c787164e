"""Structured logs: JSON lines on request, the job id on every line of a job, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.logs import bind_job_id, configure_logging, redact


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_job_id_inside_bind(json_lines: io.StringIO) -> None:
    log = logging.getLogger("genreflow.test")
    log.info("before")
    with bind_job_id("job-123"):
        log.info("classifying %s", "song.wav")
        log.warning("slow")
    log.info("after")
    records = _records(json_lines)
    assert [r["message"] for r in records] == ["before", "classifying song.wav", "slow", "after"]
    assert [r.get("job_id") for r in records] == [None, "job-123", "job-123", None]
    assert records[1]["level"] == "INFO"
    assert records[1]["logger"] == "genreflow.test"
    assert "time" in records[1]


def test_secrets_never_reach_a_line(json_lines: io.StringIO) -> None:
    log = logging.getLogger("genreflow.test")
    key = "gf_" + "k" * 43
    secret = "whsec_" + "S" * 32
    log.info("made key %s", key)
    log.info("header was Authorization: Bearer %s", "opaque-token-value")
    log.info("signing with %s", secret)
    text = json_lines.getvalue()
    for leaked in (key, secret, "opaque-token-value"):
        assert leaked not in text
    assert text.count("[redacted]") == 3


def test_text_is_the_default_and_shows_the_job_id() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    try:
        with bind_job_id("job-9"):
            logging.getLogger("genreflow.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert not line.startswith("{")
    assert line.endswith("hello job_id=job-9")


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("job 1b2c done: rock (0.91)") == "job 1b2c done: rock (0.91)"
