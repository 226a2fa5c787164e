"""The API fuzzed against its own OpenAPI document (schemathesis), with a valid admin key.

Every operation of ``/openapi.json`` gets generated requests, valid ones and invalid ones; every
response must pass all of schemathesis' default checks: no 5xx, status codes, content types,
headers and bodies as documented, invalid input refused and valid input accepted. Examples per
operation and mode are bounded (``FUZZ_EXAMPLES``) and derandomized, so the run is repeatable
and takes about a minute.

One judgement is the project's, not the document's: an upload whose bytes are not audio is
schema-valid (OpenAPI cannot say "these bytes must decode as audio"), and the API answers it
with its documented 413/415/422; so is a webhook URL whose host is, or resolves to, a private
address (400 ``webhook_target_refused``). For ``POST /api/v1/jobs`` schemathesis' "valid data is
accepted" check is therefore replaced by :func:`upload_answered_as_documented`, which allows
exactly those content-caused refusals, read from the problem's ``code``, and nothing else (no
400 for a schema-valid request).

Random bytes are never audio, so the upload strategy also draws real songs (generated WAV, MP3
and FLAC, declared with their audio type) for the file, about half the time: the accepted path
(202, or 200 for bytes already classified) is fuzzed too, with every generated webhook URL and
header, and the test fails unless uploads were accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.transport.serialization import Binary

from shared.store.config import Settings
from tests.web.conftest import make_key

#: Examples per operation and mode; ``GENREFLOW_FUZZ_EXAMPLES=200`` for a longer hunt by hand.
FUZZ_EXAMPLES = int(os.environ.get("GENREFLOW_FUZZ_EXAMPLES", "20"))
UPLOAD = "POST /api/v1/jobs"
#: What a schema-valid upload may be answered: accepted, or refused for its bytes or its rate.
ACCEPTED = frozenset({200, 202})
#: The problem codes a schema-valid upload may be refused with, by status.
UPLOAD_REFUSALS: dict[int, frozenset[str]] = {
    400: frozenset({"webhook_target_refused"}),
    413: frozenset({"upload_too_large", "audio_too_long"}),
    415: frozenset({"unsupported_media_type"}),
    422: frozenset({"empty_audio", "invalid_audio", "audio_too_short"}),
    429: frozenset({"rate_limited"}),
    507: frozenset({"insufficient_storage"}),
}
#: Real songs for the upload's file: (format, declared type), 4 s each, distinct.
SONG_FORMATS = ((".wav", "audio/wav"), (".mp3", "audio/mpeg"), (".flac", "audio/flac"))
N_OPERATIONS = 27  # every documented operation; a new one must be fuzzed too


@pytest.fixture
def fuzz_app(settings: Settings, redis_client: Any, active_model: str) -> Iterator[Any]:
    """Yield the app under fuzzing: an active model, real Redis, generous upload limits.

    A predict worker is announced warm the way a real one does (``mark_warm``), so ``/ready``
    is ready; its own 503 is tested in ``test_health.py``.
    """
    from shared.lifecycle.warmth import mark_warm
    from web import create_app

    mark_warm(redis_client, "fuzz:1", active_model, ttl_s=3600)
    app = create_app(
        settings.replace(uploads_per_minute=100_000, upload_mb_per_hour=100_000),
        config={"TESTING": True},
    )
    app.config["FUZZ_HEADERS"] = {"Authorization": f"Bearer {make_key(settings, 'admin')}"}
    yield app
    app.extensions["genreflow"]["engine"].dispose()


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, str]]:
    """Return real songs (bytes, declared type), one per format of :data:`SONG_FORMATS`."""
    from shared.core.learning.demo_data import synth_track, write_audio

    folder = tmp_path_factory.mktemp("fuzz-songs")
    out = []
    for seed, (ext, mimetype) in enumerate(SONG_FORMATS):
        y = synth_track(("disco", "metal", "classical")[seed], seconds=4.0, seed=900 + seed)
        out.append((write_audio(folder / f"song{seed}{ext}", y).read_bytes(), mimetype))
    return out


def upload_answered_as_documented(statuses: list[int]) -> Any:
    """Return a check: a schema-valid upload is accepted, or refused only for content or rate.

    The statuses seen are appended to ``statuses``.
    """

    def check(ctx: Any, response: Any, case: schemathesis.Case) -> None:
        statuses.append(response.status_code)
        if response.status_code in ACCEPTED:
            return
        try:
            code = response.json().get("code")
        except ValueError:
            code = None
        if code not in UPLOAD_REFUSALS.get(response.status_code, frozenset()):
            raise AssertionError(
                f"schema-valid upload answered {response.status_code} {code}: {response.text[:300]}"
            )

    return check


def with_song(drawn: tuple[schemathesis.Case, tuple[bytes, str] | None]) -> schemathesis.Case:
    """Put a real song, with its audio type, in a generated upload's file part."""
    case, song = drawn
    # A case meant to break the schema (its body, say) keeps its own file: a song in its place
    # could make it valid while schemathesis still expects a refusal.
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if song is not None and isinstance(case.body, dict) and not negative:
        content, mimetype = song
        # Binary: bytes as schemathesis' own generated files are (a JSON Schema "string").
        case.body = {**case.body, "file": Binary(content)}
        case.multipart_content_types = {**(case.multipart_content_types or {}), "file": mimetype}
        # schemathesis re-validates an edited body and counts any binary part as invalid, which
        # would relabel this valid upload as a negative case: the song is this case's own state.
        case._record_starting_state()
    return case


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    calls: list[int],
    *,
    songs: list[tuple[bytes, str]],
    upload_statuses: list[int],
) -> None:
    options: dict[str, Any] = {}
    strategy = operation.as_strategy(generation_mode=mode)
    if operation.label == UPLOAD and mode is GenerationMode.POSITIVE:
        options = {
            "excluded_checks": [positive_data_acceptance],
            "additional_checks": [upload_answered_as_documented(upload_statuses)],
        }
        strategy = st.tuples(strategy, st.none() | st.sampled_from(songs)).map(with_song)

    @given(case=strategy)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        calls.append(1)
        case.call_and_validate(headers=headers, **options)

    run()


@pytest.mark.slow
def test_every_operation_honours_its_schema(fuzz_app: Any, songs: list[tuple[bytes, str]]) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    headers = fuzz_app.config["FUZZ_HEADERS"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == N_OPERATIONS
    findings: list[str] = []
    calls: list[int] = []
    upload_statuses: list[int] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, headers, calls, songs=songs, upload_statuses=upload_statuses)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no invalid request exists for it
            except (Exception, BaseExceptionGroup) as exc:  # report every finding
                findings.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    assert not findings, "\n\n".join(findings)
    assert len(calls) > N_OPERATIONS * FUZZ_EXAMPLES // 2  # the requests really were made
    # The accepted path was fuzzed, not only the refusals.
    assert ACCEPTED & set(upload_statuses), sorted(set(upload_statuses))
