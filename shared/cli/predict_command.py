"""``genreflow predict``: the genre of songs, files and folders, here or on a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from shared.cli.library_options import make_source, source_options
from shared.errors import GenreflowError
from shared.library.files import find_audio_files
from shared.library.results import SongResult, output_format, summarize
from shared.library.run import run_library, unreadable_reason


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@source_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one row per song to this .csv or .jsonl file (path, genre, confidence, "
    "uncertain, model, error, sounds_like, sha256); a second run skips the songs done.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@click.option("--segments", is_flag=True, help="Also print the per-segment timeline.")
def predict(
    paths: tuple[Path, ...],
    model_path: str | None,
    jobs: int | None,
    server: str | None,
    key: str | None,
    max_wait: float,
    output: Path | None,
    as_json: bool,
    segments: bool,
) -> None:
    """Tell the genre of each audio file in PATHS (files, and folders walked recursively).

    Without --output each song is printed as it is done; with it, rows go to the file and a
    progress bar to the terminal. A summary ends a run of several songs. A song that cannot be
    read gets its reason and the run goes on; the exit status is 1 when any song failed.
    """
    from shared.cli.commands import format_prediction

    if output is not None:
        try:
            output_format(output)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--output") from exc
    songs = find_audio_files(paths)
    if not songs:
        raise click.ClickException(f"No audio files in {', '.join(map(str, paths))}.")
    if all(unreadable_reason(path) for path in songs):  # no model (nor TensorFlow) is loaded
        for path in songs:
            _echo_row(SongResult.failed(path, str(unreadable_reason(path))), as_json=as_json)
        raise SystemExit(1)

    def on_row(row: SongResult) -> None:
        if not row.ok or output is None:
            _echo_row(row, as_json=as_json, segments=segments, table=format_prediction)

    source, default = make_source(model_path=model_path, server=server, key=key, max_wait=max_wait)
    try:
        report = run_library(songs, source, jobs=jobs or default, output=output, on_row=on_row)
    except GenreflowError as exc:
        raise click.ClickException(exc.detail) from exc
    if output is not None or len(report.rows) + report.n_skipped > 1:
        lines = [summarize(report.rows)]
        if report.n_skipped:
            lines.append(f"skipped {report.n_skipped} song(s) already in {output}")
        if output is not None:
            lines.append(f"rows → {output}")
        click.echo("\n".join(lines), err=as_json)
    if any(not row.ok for row in report.rows):
        raise SystemExit(1)


def _echo_row(
    row: SongResult,
    *,
    as_json: bool,
    segments: bool = False,
    table: Callable[..., str] | None = None,
) -> None:
    """Print one song: JSON on stdout, or its table on stdout and its error on stderr."""
    if as_json:
        body = {"error": {"detail": row.error}} if not row.ok else (row.detail or row.values())
        click.echo(json.dumps({"file": row.path, **body}))
    elif not row.ok:
        click.echo(f"error: {row.error}", err=True)
    elif table is not None:
        click.echo(table(Path(row.path), row.detail or {}, with_segments=segments))


COMMANDS = (predict,)
