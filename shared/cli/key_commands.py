"""``genreflow keys create|list|revoke``: manage API keys straight in the database."""

from __future__ import annotations

import json

import click

from shared.store.keys import SCOPES


def _session():
    from shared.store.config import Settings
    from shared.store.db import session_scope, upgrade_database

    settings = Settings.from_env()
    upgrade_database(settings.database_url)
    return session_scope(settings.database_url)


@click.group("keys")
def keys_command() -> None:
    """Create, list and revoke API keys (stored only as SHA-256 hashes)."""


@keys_command.command("create")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default="classify",
    show_default=True,
    help="classify: upload and read own jobs; admin: train, activate, manage keys, read all.",
)
def create_command(name: str, scope: str) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from shared.errors import GenreflowError
    from shared.store.keys import create_key

    try:
        with _session() as session:
            new = create_key(session, name=name, scope=scope)
            key_id = new.row.id
    except GenreflowError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(new.token)
    click.echo(
        f"key {key_id} ({scope}) created; it is shown only this once, keep it safe.", err=True
    )


@keys_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def list_command(as_json: bool) -> None:
    """List keys: id, prefix, scope, name, created, revoked (never the keys themselves)."""
    from shared.store.columns import isoformat
    from shared.store.keys import list_keys

    with _session() as session:
        rows = [
            {
                "id": row.id,
                "prefix": row.prefix,
                "scope": row.scope,
                "name": row.name,
                "created_at": isoformat(row.created_at),
                "revoked_at": isoformat(row.revoked_at),
            }
            for row in list_keys(session)
        ]
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            click.echo(
                f"{row['id']}  {row['prefix']}…  {row['scope']:<8}  {state:<28}  {row['name']}"
            )


@keys_command.command("revoke")
@click.argument("key_id")
def revoke_command(key_id: str) -> None:
    """Revoke the key with id (or shown prefix) KEY_ID; it stops working at once."""
    from shared.errors import GenreflowError
    from shared.store.keys import revoke_key

    try:
        with _session() as session:
            row = revoke_key(session, key_id)
            key_id = row.id
    except GenreflowError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"key {key_id} revoked")


COMMANDS = (keys_command,)
