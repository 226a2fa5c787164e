"""The ``genreflow`` click group: every command is registered here, in one place."""

from __future__ import annotations

import logging

import click

from shared.cli import (
    commands,
    job_commands,
    key_commands,
    predict_command,
    service_commands,
    tag_command,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(package_name="genreflow")
def main(verbose: bool) -> None:
    """Genreflow: tell the genre of a song with an LSTM over 3-second MFCC segments."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


for _command in (
    *commands.COMMANDS,
    *predict_command.COMMANDS,
    *tag_command.COMMANDS,
    *service_commands.COMMANDS,
    *key_commands.COMMANDS,
    *job_commands.COMMANDS,
):
    main.add_command(_command)
