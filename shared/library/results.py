"""One row per song: what ``genreflow predict`` writes (CSV or JSON Lines) and reads back.

A row is ``path, genre, confidence, uncertain, model, error, sounds_like, sha256``. ``error``
is empty for a song that was classified and holds the reason for one that was not. ``sha256``
(the file's bytes) and ``model`` make the output resumable: a song already classified by the
same model is not classified again (:func:`done_keys`). The CSV is written and read with the
standard library's :mod:`csv`, JSON Lines with :mod:`json`.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

#: The output formats, by file extension.
FORMATS = (".csv", ".jsonl")


@dataclass(frozen=True)
class SongResult:
    """One song's answer, or why it has none."""

    path: str
    genre: str = ""
    confidence: float | None = None
    uncertain: bool | None = None
    model: str = ""
    error: str = ""
    sounds_like: list[dict[str, Any]] | None = None
    sha256: str = ""
    #: The whole prediction (probabilities, votes, segments), for the terminal; not written.
    detail: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def values(self) -> dict[str, Any]:
        """Return the written columns by name."""
        return {name: getattr(self, name) for name in COLUMNS}

    @property
    def ok(self) -> bool:
        """Whether the song was classified."""
        return not self.error

    @classmethod
    def from_prediction(
        cls, path: str | os.PathLike[str], result: Mapping[str, Any], *, sha256: str
    ) -> SongResult:
        """Build a row from a prediction's JSON shape (local or the API's ``result``)."""
        return cls(
            path=str(path),
            genre=str(result["genre"]),
            confidence=float(result["confidence"]),
            uncertain=bool(result.get("uncertain")),
            model=str(result.get("model_version") or ""),
            sounds_like=result.get("sounds_like") or None,
            sha256=sha256,
            detail=dict(result),
        )

    @classmethod
    def failed(cls, path: str | os.PathLike[str], reason: str, *, sha256: str = "") -> SongResult:
        """Build the row of a song that could not be classified."""
        return cls(path=str(path), error=reason or "unknown error", sha256=sha256)


COLUMNS = tuple(column.name for column in fields(SongResult) if column.name != "detail")


def format_sounds_like(sounds_like: list[dict[str, Any]] | None) -> str:
    """Render ``[{"name", "score"}, ...]`` as ``"Heavy metal 0.45; Punk rock 0.25"``."""
    return "; ".join(f"{item['name']} {float(item['score']):.2f}" for item in sounds_like or [])


def _csv_row(row: SongResult) -> dict[str, str]:
    values = row.values()
    values["confidence"] = "" if row.confidence is None else f"{row.confidence:.4f}"
    values["uncertain"] = "" if row.uncertain is None else str(row.uncertain).lower()
    values["sounds_like"] = format_sounds_like(row.sounds_like)
    return values


def _from_csv(values: Mapping[str, str]) -> SongResult:
    confidence = values.get("confidence") or ""
    uncertain = values.get("uncertain") or ""
    return SongResult(
        path=values["path"],
        genre=values.get("genre") or "",
        confidence=float(confidence) if confidence else None,
        uncertain=uncertain == "true" if uncertain else None,
        model=values.get("model") or "",
        error=values.get("error") or "",
        sha256=values.get("sha256") or "",
        sounds_like=parse_sounds_like(values.get("sounds_like") or ""),
    )


def parse_sounds_like(text: str) -> list[dict[str, Any]] | None:
    """Read back :func:`format_sounds_like`'s text (``"Heavy metal 0.45; Punk rock 0.25"``)."""
    items = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, score = part.rpartition(" ")
        try:
            items.append({"name": name, "score": float(score)})
        except ValueError:
            return None  # not written by genreflow: keep nothing rather than a wrong list
    return items or None


def output_format(path: str | os.PathLike[str]) -> str:
    """Return ``".csv"`` or ``".jsonl"`` for an output file; raise ``ValueError`` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(none)"
        raise ValueError(f"{path}: the output must end in .csv or .jsonl, not {shown}.")
    return suffix


def read_results(path: str | os.PathLike[str]) -> list[SongResult]:
    """Read the rows of a CSV or JSON Lines output (none when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        if output_format(path) == ".csv":
            return [_from_csv(values) for values in csv.DictReader(handle)]
        rows = []
        for line in handle:
            if line.strip():
                data = json.loads(line)
                rows.append(SongResult(**{key: data.get(key) for key in COLUMNS if key in data}))
        return rows


def done_keys(rows: Iterable[SongResult]) -> set[tuple[str, str]]:
    """Return the ``(sha256, model)`` pairs of the rows that were classified."""
    return {(row.sha256, row.model) for row in rows if row.ok and row.sha256}


class ResultWriter:
    """Write rows to a CSV or JSON Lines file as they come, flushed one by one.

    Parameters
    ----------
    path : path-like
        ``.csv`` or ``.jsonl``.
    keep : iterable of SongResult
        Rows of an earlier run to write first. They go to a new file that then replaces
        ``path`` at once, so an interrupted start loses none of them.
    """

    def __init__(self, path: str | os.PathLike[str], *, keep: Iterable[SongResult] = ()) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_name(self.path.name + ".partial")
        self._open(fresh, "w")
        if self._csv is not None:
            self._csv.writeheader()
        for row in keep:
            self.write(row)
        self.close()
        os.replace(fresh, self.path)
        self._open(self.path, "a")

    def _open(self, path: Path, mode: str) -> None:
        self._handle: IO[str] = path.open(mode, encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._handle, COLUMNS) if self.format == ".csv" else None

    def write(self, row: SongResult) -> None:
        """Append one row and flush it to the file."""
        if self._csv is not None:
            self._csv.writerow(_csv_row(row))
        else:
            self._handle.write(json.dumps(row.values()) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summarize(rows: Iterable[SongResult]) -> str:
    """Return the end-of-run summary: songs per genre, how many not sure, how many failed."""
    rows = list(rows)
    ok = [row for row in rows if row.ok]
    lines = [f"{len(rows)} song(s): {len(ok)} classified, {len(rows) - len(ok)} failed"]
    per_genre = Counter(row.genre for row in ok)
    unsure = Counter(row.genre for row in ok if row.uncertain)
    for genre, count in sorted(per_genre.items(), key=lambda item: (-item[1], item[0])):
        note = f" ({unsure[genre]} not sure)" if unsure[genre] else ""
        lines.append(f"  {genre:<12}{count:>6}{note}")
    if ok:
        lines.append(f"not sure: {sum(unsure.values())} of {len(ok)}")
    return "\n".join(lines)
