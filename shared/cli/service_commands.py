"""The service commands of ``genreflow``: ``run`` (the whole service) and ``prepare``.

They are registered on the group in :mod:`shared.cli.main`; the container's one-shot migrate
step runs ``genreflow prepare``.
"""

from __future__ import annotations

import click

from shared.cli.services import DEFAULT_HOST, DEFAULT_PORT


@click.command("run")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Web server address.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Web server port.")
@click.option(
    "--redis-port",
    type=int,
    default=None,
    help="Port of the private Redis (default: a free one). Ignored when REDIS_URL is set.",
)
@click.option(
    "--web-workers", default=2, show_default=True, type=click.IntRange(1), help="Gunicorn workers."
)
@click.option(
    "--predict-concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Predict worker processes (each holds one loaded model).",
)
@click.option("--no-beat", is_flag=True, help="Do not start the weekly retrain scheduler.")
def run_command(
    host: str,
    port: int,
    redis_port: int | None,
    web_workers: int,
    predict_concurrency: int,
    no_beat: bool,
) -> None:
    """Start the whole service: Redis, web server, workers and scheduler.

    Everything lives under $GENREFLOW_HOME (default ./var): the SQLite database, uploads,
    models and Redis's data. Ctrl-C stops it all.
    """
    from shared.cli.services import run_service
    from shared.errors import RunnerError
    from shared.store.config import Settings

    try:
        settings = Settings.from_env()
        code = run_service(
            settings,
            host=host,
            port=port,
            redis_port=redis_port,
            web_workers=web_workers,
            predict_concurrency=predict_concurrency,
            with_beat=not no_beat,
            echo=click.echo,
        )
    except (RunnerError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(code)


@click.command("prepare")
def prepare_command() -> None:
    """Create the directories, migrate the database and register the models found.

    ``genreflow run`` does this itself; containers run it once before the other services.
    """
    from shared.cli.home import prepare_home
    from shared.store.config import Settings

    settings = Settings.from_env()
    active = prepare_home(settings)
    click.echo(f"database ready; active model: {active or 'none'}")


COMMANDS = (run_command, prepare_command)
