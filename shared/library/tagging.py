"""Which songs get which genre tag, writing them, and putting the old tags back.

:func:`plan_tags` decides from predict rows (a fresh run's, or a ``--from`` file's): a song is
tagged when it was classified, the model was sure (unless ``include_uncertain``), its confidence
reaches ``min_confidence``, and, with ``only_empty``, it had no genre. :func:`apply_tags` writes
each change after recording the old value in the undo file (JSON Lines, one change a line,
flushed to disk first), so an interrupted run can be undone too; :func:`undo_tags` restores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.library.results import SongResult
from shared.library.tags import Untaggable, read_genres, write_genres


@dataclass(frozen=True)
class TagRules:
    """Which answers may be written."""

    min_confidence: float = 0.0
    include_uncertain: bool = False
    only_empty: bool = False


@dataclass(frozen=True)
class TagChange:
    """One song's genres before and after."""

    path: str
    old: list[str]
    new: list[str]


@dataclass(frozen=True)
class TagSkip:
    """A song left as it is, and why."""

    path: str
    reason: str


def plan_tags(rows: Iterable[SongResult], rules: TagRules) -> tuple[list[TagChange], list[TagSkip]]:
    """Return the changes to make and the songs skipped (the last row of a path counts)."""
    latest = {row.path: row for row in rows}
    changes, skips = [], []
    for path, row in latest.items():
        reason = refusal(row, rules)
        if reason is None:
            try:
                old = read_genres(path)
            except Untaggable as exc:
                reason = str(exc)
            else:
                if rules.only_empty and old:
                    reason = f"keeps its genre {'; '.join(old)} (--only-empty)"
                elif old == [row.genre]:
                    reason = f"already {row.genre}"
        if reason is None:
            changes.append(TagChange(path, old, [row.genre]))
        else:
            skips.append(TagSkip(path, reason))
    return changes, skips


def refusal(row: SongResult, rules: TagRules) -> str | None:
    """Return why ``row``'s answer may not be written by ``rules``, or ``None`` if it may."""
    if not row.ok:
        return f"not classified: {row.error}"
    confidence = row.confidence or 0.0
    if row.uncertain and not rules.include_uncertain:
        return f"not sure (closest {row.genre}, {confidence:.0%}; --include-uncertain tags it)"
    if confidence < rules.min_confidence:
        return f"{row.genre} at {confidence:.0%} is under --min-confidence"
    return None


def apply_tags(changes: Iterable[TagChange], undo_file: Path) -> list[TagSkip]:
    """Write each change, recording it in ``undo_file`` first; return the songs that failed.

    Raises
    ------
    FileExistsError
        ``undo_file`` exists (an earlier run's record is never overwritten).
    """
    failed = []
    with undo_file.open("x", encoding="utf-8") as record:
        for change in changes:
            entry = {**asdict(change), "path": str(Path(change.path).resolve())}
            record.write(json.dumps(entry) + "\n")
            record.flush()
            os.fsync(record.fileno())
            try:
                write_genres(change.path, change.new)
            except Untaggable as exc:
                failed.append(TagSkip(change.path, str(exc)))
    return failed


def undo_tags(undo_file: Path) -> tuple[list[TagChange], list[TagSkip]]:
    """Put back the genres ``undo_file`` recorded, newest first; return restored and left alone.

    A song whose genre changed again since is left alone; one that already holds its old
    genre (its write had failed) needs nothing.
    """
    lines = undo_file.read_text(encoding="utf-8").splitlines()
    entries = [TagChange(**json.loads(line)) for line in lines if line.strip()]
    restored, left = [], []
    for entry in reversed(entries):
        try:
            current = read_genres(entry.path)
            if current == entry.old:
                continue
            if current != entry.new:
                left.append(TagSkip(entry.path, f"changed since to {'; '.join(current) or '—'}"))
                continue
            write_genres(entry.path, entry.old)
        except Untaggable as exc:
            left.append(TagSkip(entry.path, str(exc)))
            continue
        restored.append(entry)
    return restored, left
