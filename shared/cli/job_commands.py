"""``genreflow jobs delete|expire``: remove jobs and what they keep, straight in the database."""

from __future__ import annotations

import click


@click.group("jobs")
def jobs_command() -> None:
    """Manage stored jobs (delete them with their results and audio)."""


@jobs_command.command("delete")
@click.argument("job_ids", nargs=-1, required=True)
def delete_command(job_ids: tuple[str, ...]) -> None:
    """Delete the jobs JOB_IDS: result, label, webhook deliveries and audio (unless shared)."""
    from shared.errors import GenreflowError
    from shared.lifecycle.deletion import delete_job
    from shared.store.config import Settings
    from shared.store.db import session_scope, upgrade_database
    from shared.store.orm import Job

    settings = Settings.from_env()
    upgrade_database(settings.database_url)
    failed = 0
    for job_id in job_ids:
        with session_scope(settings.database_url) as session:
            job = session.get(Job, job_id)
            if job is None:
                click.echo(f"job {job_id}: no such job", err=True)
                failed += 1
                continue
            try:
                deleted = delete_job(session, job)
            except GenreflowError as exc:
                click.echo(f"job {job_id}: {exc.detail}", err=True)
                failed += 1
                continue
        click.echo(f"job {job_id} deleted ({deleted.bytes_freed} bytes of audio freed)")
    if failed:
        raise click.ClickException(f"{failed} of {len(job_ids)} job(s) not deleted")


@jobs_command.command("expire")
def expire_command() -> None:
    """Run the retention sweep now (the workers run it every hour by themselves)."""
    from shared.lifecycle.retention import sweep_expired
    from shared.store.config import Settings
    from shared.store.db import session_scope, upgrade_database

    settings = Settings.from_env()
    upgrade_database(settings.database_url)
    with session_scope(settings.database_url) as session:
        sweep = sweep_expired(session, settings)
        click.echo(
            f"audio of {sweep.n_audio_expired} job(s) expired, {sweep.n_results_expired} job(s) "
            f"removed, {sweep.n_files_removed} file(s) removed ({sweep.bytes_freed} bytes freed)"
        )


COMMANDS = (jobs_command,)
