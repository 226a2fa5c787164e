"""Classify many songs on this machine: a pool of processes, the model loaded once in each.

``jobs`` processes each load the model once, as they start (never in the parent), and score
one song at a time on one math thread, as a predict worker does
(:func:`shared.core.serving.inference.use_one_math_thread`). With ``jobs=1`` the songs are
classified in this process. The pool is the standard library's
:class:`concurrent.futures.ProcessPoolExecutor`, started with ``spawn`` so that a parent with
threads (a test, beets) forks nothing it holds.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import GenreflowError
from shared.library.files import content_hash
from shared.library.results import SongResult

if TYPE_CHECKING:
    from shared.core.nets.genre_model import GenreModel
    from shared.core.serving.staged import ServingOptions


@dataclass(frozen=True)
class LocalModel:
    """Which model a process loads, and how it scores it."""

    path: Path
    serving: ServingOptions | None = None
    max_duration_s: float = 30 * 60.0


_model: GenreModel | None = None
_max_duration_s: float = 0.0


def load_process_model(spec: LocalModel) -> None:
    """Load the model of this process (a pool's initializer; also used with ``jobs=1``)."""
    global _model, _max_duration_s
    from shared.core.serving.inference import load_served_model, use_one_math_thread

    use_one_math_thread()
    _model = load_served_model(spec.path, serving=spec.serving)
    _max_duration_s = spec.max_duration_s


def classify_one(path: str, sha256: str = "") -> SongResult:
    """Classify one song with this process's model; a song that fails gets its error row."""
    from shared.core.serving.predict import predict_file

    assert _model is not None, "load_process_model first"
    try:
        sha256 = sha256 or content_hash(path)
        prediction = predict_file(path, _model, max_duration_s=_max_duration_s, name=path)
    except GenreflowError as exc:
        return SongResult.failed(path, exc.detail, sha256=sha256)
    except OSError as exc:
        return SongResult.failed(path, f"{path}: {exc.strerror or exc}", sha256=sha256)
    except Exception as exc:  # one odd file must not end a library run; its row says why
        return SongResult.failed(path, f"{path}: {type(exc).__name__}: {exc}", sha256=sha256)
    return SongResult.from_prediction(path, prediction.to_dict(), sha256=sha256)


def default_jobs() -> int:
    """Return the number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def classify_locally(
    songs: Sequence[tuple[str, str]], spec: LocalModel, *, jobs: int = 1
) -> Iterator[SongResult]:
    """Classify songs with ``jobs`` processes; yield each row as it is ready (any order).

    Parameters
    ----------
    songs : sequence of (path, sha256)
        ``sha256`` may be ``""``: the process hashes the file itself.
    spec : LocalModel
    jobs : int >= 1
        Processes; at most one per song.

    Raises
    ------
    ModelError
        The model cannot be loaded (before any song is classified).
    """
    if not songs:
        return
    jobs = max(1, min(jobs, len(songs)))
    if jobs == 1:
        load_process_model(spec)
        for path, sha256 in songs:
            yield classify_one(path, sha256)
        return
    model_version(spec)  # a missing model fails here, once, not in every process
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=load_process_model, initargs=(spec,)
    ) as pool:
        futures = {pool.submit(classify_one, path, sha256): path for path, sha256 in songs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:  # a process died (out of memory?): its songs get rows
                yield SongResult.failed(futures[future], "the classifying process died")


def model_version(spec: LocalModel) -> str:
    """Return the version of the model ``spec`` names, from its sidecar (nothing is loaded).

    Raises
    ------
    ModelError
        The model file or its sidecar is missing or unreadable.
    """
    from shared.core.nets.genre_model import open_sidecar

    _, sidecar, _ = open_sidecar(spec.path)
    return str(sidecar.get("version") or spec.path.stem)
