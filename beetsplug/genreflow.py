"""genreflow for beets: classify items by listening to them, and set their genre.

``beet genreflow QUERY`` classifies the matching items with genreflow's model on this machine
(``model``: a ``.keras`` path; default the active one of ``$GENREFLOW_HOME``) or on a genreflow
service (``server``, ``key``), and stores on each item the flexible attributes
``genreflow_genre``, ``genreflow_confidence``, ``genreflow_uncertain`` and ``genreflow_model``.
It sets the item's genre when the model is sure (``include_uncertain`` also takes the rest) and
at least ``min_confidence`` sure, and, like lastgenre, keeps a genre the item already has unless
``force``. With ``auto: yes`` it runs on import. Install with ``pip install 'genreflow[beets]'``
and add ``genreflow`` to ``plugins``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from beets import ui, util
from beets.dbcore import types
from beets.library import Item
from beets.plugins import BeetsPlugin

#: beets 2.x stores genres in the list field ``genres``; earlier versions in ``genre``.
GENRE_FIELD = "genres" if "genres" in Item._fields else "genre"


class GenreflowPlugin(BeetsPlugin):
    """The ``genreflow`` command and import stage."""

    item_types = {  # noqa: RUF012 (beets reads this class attribute)
        "genreflow_genre": types.STRING,
        "genreflow_confidence": types.Float(4),
        "genreflow_uncertain": types.BOOLEAN,
        "genreflow_model": types.STRING,
    }

    def __init__(self) -> None:
        super().__init__()
        self.config.add(
            {
                "auto": False,
                "force": False,
                "model": "",
                "server": "",
                "key": "",
                "jobs": 0,
                "min_confidence": 0.0,
                "include_uncertain": False,
                "max_wait": 600.0,
            }
        )
        self.config["key"].redact = True
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list[ui.Subcommand]:
        """Return ``beet genreflow [-f] [-p] QUERY``."""
        command = ui.Subcommand("genreflow", help="set genres by listening to the audio")
        command.parser.add_option(
            "-f", "--force", action="store_true", default=None, help="replace existing genres"
        )
        command.parser.add_option(
            "-p", "--pretend", action="store_true", help="show the genres, change nothing"
        )
        command.func = self.command
        return [command]

    def command(self, lib: Any, opts: Any, args: list[str]) -> None:
        """Classify the items matching ``args`` and set their genres."""
        force = self.config["force"].get(bool) if opts.force is None else opts.force
        items = list(lib.items(args))
        self.classify(items, force=force, write=ui.should_write(), pretend=opts.pretend)

    def imported(self, session: Any, task: Any) -> None:
        """Classify the items of an import task (beets writes their tags afterwards)."""
        del session
        self.classify(task.imported_items(), force=self.config["force"].get(bool), write=False)

    def classify(
        self, items: Iterable[Item], *, force: bool, write: bool, pretend: bool = False
    ) -> None:
        """Classify ``items``, store the genreflow attributes and set the genres allowed."""
        from shared.errors import GenreflowError
        from shared.library.run import run_library
        from shared.library.tagging import TagRules, refusal

        by_path = {os.fsdecode(item.path): item for item in items}
        if not by_path:
            return
        source, default_jobs = self._source()
        jobs = self.config["jobs"].get(int) or default_jobs
        try:
            rows = run_library(list(by_path), source, jobs=jobs, progress=False).rows
        except GenreflowError as exc:
            raise ui.UserError(f"genreflow: {exc.detail}") from exc
        rules = TagRules(
            min_confidence=self.config["min_confidence"].as_number(),
            include_uncertain=self.config["include_uncertain"].get(bool),
        )
        for row in rows:
            item = by_path[row.path]
            if not row.ok:
                self._log.warning("{}: {}", row.path, row.error)
                continue
            old = _genres(item)
            why_not = refusal(row, rules) or (
                f"keeps its genre {'; '.join(old)}" if old and not force else None
            )
            shown = f"{util.displayable_path(item.path)}: {row.genre} ({row.confidence:.0%})"
            ui.print_(shown + (f", genre unchanged: {why_not}" if why_not else ""))
            if pretend:
                continue
            item["genreflow_genre"] = row.genre
            item["genreflow_confidence"] = row.confidence
            item["genreflow_uncertain"] = bool(row.uncertain)
            item["genreflow_model"] = row.model
            if why_not is None:
                item[GENRE_FIELD] = [row.genre] if GENRE_FIELD == "genres" else row.genre
            item.try_sync(write=write, move=False)

    def _source(self) -> tuple[Any, int]:
        """Return the model or server that answers, and its default number of jobs."""
        from shared.library.local import LocalModel, default_jobs
        from shared.library.remote import SERVER_JOBS, GenreflowServer
        from shared.store.config import Settings

        server = self.config["server"].as_str()
        if server:
            key = self.config["key"].as_str() or os.environ.get("GENREFLOW_API_KEY")
            wait = self.config["max_wait"].as_number()
            return GenreflowServer(server, key=key, max_wait_s=wait), SERVER_JOBS
        import click

        from shared.cli.commands import find_model_path

        settings = Settings.from_env()
        try:
            path = find_model_path(self.config["model"].as_str() or None)
        except click.ClickException as exc:
            raise ui.UserError(f"genreflow: {exc.message}") from exc
        spec = LocalModel(
            path, serving=settings.serving_options(), max_duration_s=settings.max_duration_s
        )
        return spec, default_jobs()


def _genres(item: Item) -> list[str]:
    value = item.get(GENRE_FIELD)
    if isinstance(value, str):
        return [value] if value else []
    return [str(genre) for genre in value or []]
