"""How the API client reads an answer: the problem's words and its Retry-After."""

from __future__ import annotations

import json

import requests

from shared.library.remote import problem_text, retry_after_s


def answer(status: int, body: bytes, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {429: "TOO MANY REQUESTS", 502: "BAD GATEWAY"}.get(status, "")
    response._content = body
    response.headers.update(headers)
    return response


def test_a_problem_answer_reads_as_status_code_and_detail():
    body = json.dumps({"code": "rate_limited", "detail": "Too many uploads.", "status": 429})
    assert problem_text(answer(429, body.encode())) == "429 rate_limited: Too many uploads."


def test_a_non_json_answer_still_says_what_came_back():
    assert problem_text(answer(502, b"<html>bad gateway</html>")) == (
        "502 BAD GATEWAY: <html>bad gateway</html>"
    )


def test_retry_after_in_seconds_or_the_default():
    assert retry_after_s(answer(429, b"", **{"Retry-After": "17"})) == 17.0
    assert retry_after_s(answer(503, b"")) == 5.0
    assert retry_after_s(answer(503, b"", **{"Retry-After": "soon"})) == 5.0


def test_retry_after_as_an_http_date_counts_from_now():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= retry_after_s(answer(429, b"", **{"Retry-After": later})) <= 90
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_s(answer(429, b"", **{"Retry-After": past})) == 0.0
