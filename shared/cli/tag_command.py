"""``genreflow tag``: write each song's genre into its own tags, and undo that."""

from __future__ import annotations

from pathlib import Path

import click

from shared.cli.library_options import make_source, source_options
from shared.errors import GenreflowError
from shared.library.results import SongResult, read_results


def _genres(values: list[str]) -> str:
    return "; ".join(values) or "(none)"


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--from",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Tag from a `genreflow predict --output` file instead of classifying PATHS.",
)
@click.option(
    "--undo-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every old genre here (a new file); needed unless --dry-run.",
)
@click.option("--dry-run", is_flag=True, help="Print old → new for each song; change nothing.")
@click.option("--only-empty", is_flag=True, help="Keep a genre a song already has.")
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Tag only answers at least this sure.",
)
@click.option(
    "--include-uncertain", is_flag=True, help="Also tag answers the model is not sure of."
)
@click.option(
    "--undo",
    "undo_from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Put back the genres an earlier run recorded in this undo file.",
)
@source_options
def tag(
    paths: tuple[Path, ...],
    from_file: Path | None,
    undo_file: Path | None,
    dry_run: bool,
    only_empty: bool,
    min_confidence: float,
    include_uncertain: bool,
    undo_from: Path | None,
    model_path: str | None,
    jobs: int | None,
    server: str | None,
    key: str | None,
    max_wait: float,
) -> None:
    """Write the genre of each song in PATHS (files, folders) into its tags (mp3, flac, ogg, m4a).

    Songs are classified here (or by --server), or read from --from. Answers the model is not
    sure of are left out unless --include-uncertain. Every old value goes to --undo-file
    first, and `genreflow tag --undo FILE` puts them back.
    """
    from shared.library.tagging import TagRules, apply_tags, plan_tags, undo_tags

    if undo_from is not None:
        if paths or from_file:
            raise click.UsageError("--undo takes no PATHS and no --from.")
        restored, left = undo_tags(undo_from)
        for change in restored:
            click.echo(f"{change.path}: {_genres(change.new)} → {_genres(change.old)}")
        for skip in left:
            click.echo(f"left alone: {skip.path}: {skip.reason}", err=True)
        click.echo(f"restored {len(restored)} song(s), left {len(left)} alone")
        return
    if bool(paths) == bool(from_file):
        raise click.UsageError("Give PATHS to classify, or --from a predict output, not both.")
    if not dry_run:
        if undo_file is None:
            raise click.UsageError("--undo-file FILE is needed (or --dry-run).")
        if undo_file.exists():
            raise click.UsageError(f"{undo_file} exists; name a new undo file.")
    rows = _rows(paths, from_file, model_path, jobs, server, key, max_wait)
    rules = TagRules(min_confidence, include_uncertain, only_empty)
    changes, skips = plan_tags(rows, rules)
    for skip in skips:
        click.echo(f"skip: {skip.path}: {skip.reason}", err=True)
    for change in changes:
        click.echo(f"{change.path}: {_genres(change.old)} → {_genres(change.new)}")
    if dry_run:
        click.echo(f"dry run: would tag {len(changes)} song(s), skip {len(skips)}")
        return
    assert undo_file is not None
    failed = apply_tags(changes, undo_file)
    for skip in failed:
        click.echo(f"failed: {skip.path}: {skip.reason}", err=True)
    click.echo(
        f"tagged {len(changes) - len(failed)} song(s), skipped {len(skips)}, failed "
        f"{len(failed)}; undo with: genreflow tag --undo {undo_file}"
    )
    if failed:
        raise SystemExit(1)


def _rows(
    paths: tuple[Path, ...],
    from_file: Path | None,
    model_path: str | None,
    jobs: int | None,
    server: str | None,
    key: str | None,
    max_wait: float,
) -> list[SongResult]:
    """Return the predict rows to tag from: read from ``from_file``, or a fresh run's."""
    from shared.library.run import run_library

    if from_file is not None:
        return read_results(from_file)
    source, default = make_source(model_path=model_path, server=server, key=key, max_wait=max_wait)
    try:
        return run_library(paths, source, jobs=jobs or default).rows
    except GenreflowError as exc:
        raise click.ClickException(exc.detail) from exc


COMMANDS = (tag,)
