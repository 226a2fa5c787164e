"""The service commands of ``genreflow``: ``run``, ``prepare`` and the one-role commands.

``run`` is the whole service on one machine; ``web``, ``worker``, ``trainer`` and ``beat`` each
start one role on a host or container of its own (:mod:`shared.cli.roles`).

They are registered on the group in :mod:`shared.cli.main`; the container's one-shot migrate
step runs ``genreflow prepare``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from shared.cli.services import DEFAULT_HOST, DEFAULT_PORT, PREDICT_QUEUES

if TYPE_CHECKING:
    from shared.cli.supervisord_config import Program
    from shared.store.config import Settings


WEB_WORKERS_OPTION = click.option(
    "--web-workers", default=2, show_default=True, type=click.IntRange(1), help="Gunicorn workers."
)


def concurrency_option(flag: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return the option of the predict worker's process count, named ``flag``."""
    return click.option(
        flag,
        default=2,
        show_default=True,
        type=click.IntRange(1),
        help="Predict worker processes (each holds one loaded model).",
    )


@click.command("run")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Web server address.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Web server port.")
@click.option(
    "--redis-port",
    type=int,
    default=None,
    help="Port of the private Redis (default: a free one). Ignored when REDIS_URL is set.",
)
@WEB_WORKERS_OPTION
@concurrency_option("--predict-concurrency")
@click.option(
    "--no-beat",
    is_flag=True,
    help=(
        "Do not start the scheduler: no scheduled retrain and no 30-s scan of the model folder "
        "by beat. Everything else still runs: the workers find and re-queue lost work "
        "themselves, and this command registers new model files every few seconds."
    ),
)
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


WAIT_OPTION = click.option(
    "--wait",
    "wait_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for the database and Redis before giving up.",
)


def _start_role(
    build: Callable[[Settings], Program],
    *,
    wait_s: float,
    uploads: bool = False,
    models: bool = False,
    before: Callable[[Settings], Any] | None = None,
) -> None:
    """Check what the role needs, then become its program (see :mod:`shared.cli.roles`)."""
    from shared.cli.roles import check_shared_folders, exec_role, wait_for_services
    from shared.errors import RunnerError
    from shared.store.config import Settings

    try:
        settings = Settings.from_env()
        wait_for_services(settings, timeout_s=wait_s, say=click.echo)
        check_shared_folders(settings, uploads=uploads, models=models)
        if before is not None:
            before(settings)
        program = build(settings)
    except (RunnerError, ValueError) as exc:
        raise click.ClickException(str(getattr(exc, "detail", exc))) from exc
    click.echo(f"genreflow: starting {program.name}: {' '.join(program.argv)}")
    exec_role(settings, program)


@click.command("web")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port.")
@WEB_WORKERS_OPTION
@WAIT_OPTION
def web_command(host: str, port: int, web_workers: int, wait_s: float) -> None:
    """Serve the web app and API (gunicorn) on this host, for DATABASE_URL and REDIS_URL."""
    from shared.cli.home import prepare_admin_key
    from shared.cli.services import web_spec

    def announce_key(settings: Settings) -> None:
        key_file, made = prepare_admin_key(settings)  # also a fresh metrics folder
        click.echo(f"genreflow: {'a new' if made else 'the'} admin API key is in {key_file}")

    _start_role(
        lambda settings: web_spec(
            host=host, port=port, n_workers=web_workers,
            control_socket=settings.home / "gunicorn.ctl",
        ),
        wait_s=wait_s, uploads=True, models=True, before=announce_key,
    )  # fmt: skip


@click.command("worker")
@click.option(
    "--queues",
    default=PREDICT_QUEUES,
    show_default=True,
    help="Queues to consume, comma-separated (predict, webhooks).",
)
@concurrency_option("--concurrency")
@WAIT_OPTION
def worker_command(queues: str, concurrency: int, wait_s: float) -> None:
    """Run a predict worker on this host; it also sweeps for lost work (no scheduler needed)."""
    from shared.cli.services import predict_spec

    names = {name.strip() for name in queues.split(",") if name.strip()}
    unknown = names - {"predict", "webhooks"}
    if not names or unknown:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(sorted(unknown)) or '(none)'}: choose from "
            "predict, webhooks (training has its own command, `genreflow trainer`)",
            param_hint="--queues",
        )
    predicts = "predict" in names
    _start_role(
        lambda _settings: predict_spec(queues=",".join(sorted(names)), concurrency=concurrency),
        wait_s=wait_s, uploads=predicts, models=predicts,
    )  # fmt: skip


@click.command("trainer")
@WAIT_OPTION
def trainer_command(wait_s: float) -> None:
    """Run the training worker on this host (one run at a time; the Redis lock besides)."""
    from shared.cli.services import train_spec

    _start_role(lambda _settings: train_spec(), wait_s=wait_s, models=True)


@click.command("beat")
@WAIT_OPTION
def beat_command(wait_s: float) -> None:
    """Run the scheduler on this host: the scheduled retrain and the model-folder scan.

    Run one beat per cluster. Recovery of lost work does not need it: the workers do that.
    """
    from shared.cli.services import beat_spec

    _start_role(beat_spec, wait_s=wait_s)


COMMANDS = (
    run_command,
    prepare_command,
    web_command,
    worker_command,
    trainer_command,
    beat_command,
)
