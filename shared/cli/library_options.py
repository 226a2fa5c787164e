"""The options ``genreflow predict`` and ``genreflow tag`` share: who answers, how many at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shared.library.local import LocalModel, default_jobs
from shared.library.remote import SERVER_JOBS, GenreflowServer
from shared.library.run import Source


def source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--model``, ``--jobs``, ``--server``, ``--key`` and ``--max-wait`` to a command."""
    options = [
        click.option(
            "--model", "model_path", help="A .keras model (default: the registry's active one)."
        ),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(1),
            help="Songs classified at once: processes here (each loads the model once), or "
            "uploads with --server. Default: this machine's cores (4 uploads with --server).",
        ),
        click.option(
            "--server",
            metavar="URL",
            help="Classify on a genreflow service (upload, poll) instead of this machine.",
        ),
        click.option(
            "--key",
            envvar="GENREFLOW_API_KEY",
            help="API key for --server (or $GENREFLOW_API_KEY).",
        ),
        click.option(
            "--max-wait",
            type=click.FloatRange(0),
            default=600.0,
            show_default=True,
            help="With --server: longest Retry-After (s) to wait on a 429, 503 or 507 before "
            "giving a song up.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_source(
    *, model_path: str | None, server: str | None, key: str | None, max_wait: float
) -> tuple[Source, int]:
    """Return what answers (a local model or a server) and its default number of jobs."""
    if server:
        if model_path:
            raise click.UsageError("--model and --server exclude each other.")
        return GenreflowServer(server, key=key, max_wait_s=max_wait), SERVER_JOBS
    from shared.cli.commands import _settings, find_model_path

    settings = _settings()
    spec = LocalModel(
        find_model_path(model_path),
        serving=settings.serving_options(),
        max_duration_s=settings.max_duration_s,
    )
    return spec, default_jobs()
