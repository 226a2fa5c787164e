"""A library run: files and folders in, one row per song out, resumable, with a progress bar.

Songs are classified by this machine's model (:mod:`shared.library.local`) or by a server
(:mod:`shared.library.remote`). With an output file, every row is written as soon as it is
known, and a second run skips each song whose bytes (SHA-256) were already classified by the
same model there; the rows of songs that failed are tried again. The bar is tqdm's, on stderr,
and only on a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.library.files import content_hash, find_audio_files
from shared.library.local import LocalModel, classify_locally, model_version
from shared.library.remote import GenreflowServer, classify_remotely
from shared.library.results import ResultWriter, SongResult, done_keys, read_results

Source = LocalModel | GenreflowServer


@dataclass
class RunReport:
    """What a run did: this run's rows, and how many songs an earlier run had done."""

    model: str
    rows: list[SongResult] = field(default_factory=list)
    n_skipped: int = 0


def unreadable_reason(path: Path) -> str | None:
    """Return why ``path`` (named as the user gave it) cannot be read, or ``None`` if it can."""
    if not path.exists():
        return f"{path}: no such file."
    if path.is_dir():
        return f"{path} is a folder, not an audio file."
    if not os.access(path, os.R_OK):
        return f"{path}: permission denied."
    return None


def source_model(source: Source) -> str:
    """Return the version of the model that will answer (read, not loaded)."""
    if isinstance(source, GenreflowServer):
        return source.active_model()
    return model_version(source)


def classify_songs(
    songs: list[tuple[str, str]], source: Source, *, jobs: int
) -> Iterator[SongResult]:
    """Classify ``(path, sha256)`` pairs with ``source``; yield rows as they are ready."""
    if isinstance(source, GenreflowServer):
        return classify_remotely(songs, source, jobs=jobs)
    return classify_locally(songs, source, jobs=jobs)


def run_library(
    paths: Iterable[str | os.PathLike[str]],
    source: Source,
    *,
    jobs: int = 1,
    output: Path | None = None,
    on_row: Callable[[SongResult], None] | None = None,
    progress: bool | None = None,
) -> RunReport:
    """Classify every song under ``paths`` and write a row per song to ``output``.

    Parameters
    ----------
    paths : iterable of path-like
        Files and folders (walked recursively, :func:`shared.library.files.find_audio_files`).
    source : LocalModel or GenreflowServer
    jobs : int >= 1
        Processes (local) or concurrent uploads (server).
    output : Path, optional
        ``.csv`` or ``.jsonl``; its earlier rows make the run resume.
    on_row : callable(SongResult), optional
        Called with each row as it comes (the rows of unreadable paths first).
    progress : bool, optional
        Show the bar; default: when stderr is a terminal.

    Returns
    -------
    RunReport

    Raises
    ------
    ModelError, ServerUnusable
        No model or server to answer; nothing is classified.
    """
    from tqdm import tqdm

    def emit(row: SongResult) -> None:
        report.rows.append(row)
        if writer is not None:
            writer.write(row)
        if on_row is not None:
            with tqdm.external_write_mode(file=sys.stderr):  # lines above the bar, not through it
                on_row(row)

    files = find_audio_files(paths)
    unreadable = {path: unreadable_reason(path) for path in files}
    model = source_model(source)
    report = RunReport(model=model)
    earlier = read_results(output) if output is not None else []
    done = {key for key in done_keys(earlier) if key[1] == model}
    todo: list[tuple[str, str]] = []
    for path in files:
        if unreadable[path] is None:
            sha256 = content_hash(path) if done else ""
            if (sha256, model) in done:
                report.n_skipped += 1
            else:
                todo.append((str(path), sha256))
    here = {str(path) for path in files}
    keep = [row for row in earlier if row.ok or row.path not in here]
    writer = ResultWriter(output, keep=keep) if output is not None else None
    try:
        for path, reason in unreadable.items():
            if reason is not None:
                emit(SongResult.failed(path, reason))
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(total=len(todo), unit="song", disable=not show, file=sys.stderr) as bar:
            for row in classify_songs(todo, source, jobs=jobs):
                emit(row)
                bar.update()
    finally:
        if writer is not None:
            writer.close()
    return report
