"""``genreflow keys create|list|revoke`` on a real SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from shared.cli.main import main
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.keys import find_key


def test_create_list_revoke(tmp_path: Path) -> None:
    env = {"GENREFLOW_HOME": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--name", "ops", "--scope", "admin"], env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("gf_")
    assert "shown only this once" in made.stderr

    listed = runner.invoke(main, ["keys", "list", "--json"], env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["scope"], r["revoked_at"]) for r in rows] == [("ops", "admin", None)]
    assert token not in listed.stdout
    assert rows[0]["prefix"] == token[:11]

    settings = Settings.from_env(env)
    with session_scope(settings.database_url) as session:
        assert find_key(session, token) is not None
    revoked = runner.invoke(main, ["keys", "revoke", rows[0]["prefix"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    with session_scope(settings.database_url) as session:
        assert find_key(session, token) is None
    assert "revoked" in runner.invoke(main, ["keys", "list"], env=env).stdout


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    env = {"GENREFLOW_HOME": str(tmp_path)}
    result = CliRunner().invoke(main, ["keys", "revoke", "nope"], env=env)
    assert result.exit_code != 0
    assert "No API key has id or prefix 'nope'" in result.output
    result = CliRunner().invoke(main, ["keys", "create", "--name", " "], env=env)
    assert result.exit_code != 0
    assert "name must have 1 to 100 characters" in result.output
