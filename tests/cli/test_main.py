"""The ``genreflow`` group: every command registered in one place, no import side effects."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from shared.cli import (
    commands,
    job_commands,
    key_commands,
    predict_command,
    service_commands,
    tag_command,
)
from shared.cli.main import main

EXPECTED = {
    "train", "evaluate", "predict", "tag", "demo-data", "run", "prepare", "keys", "jobs",
    "web", "worker", "trainer", "beat",
}  # fmt: skip


def test_every_command_is_registered_on_the_one_group() -> None:
    assert set(main.commands) == EXPECTED
    registered = (
        *commands.COMMANDS,
        *predict_command.COMMANDS,
        *tag_command.COMMANDS,
        *service_commands.COMMANDS,
        *key_commands.COMMANDS,
        *job_commands.COMMANDS,
    )
    assert {c.name for c in registered} == EXPECTED


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in EXPECTED:
        assert name in result.output


def test_importing_the_command_modules_registers_nothing_and_loads_no_tensorflow() -> None:
    code = (
        "import sys, shared.cli.commands, shared.cli.service_commands, shared.cli.key_commands\n"
        "import shared.cli.predict_command, shared.cli.tag_command\n"
        "assert 'shared.cli.main' not in sys.modules, 'the group was built by an import'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported'\n"
        "assert 'mutagen' not in sys.modules, 'mutagen imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
