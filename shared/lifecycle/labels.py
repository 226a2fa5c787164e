"""Users teach genreflow: a label's life, and the training data approved labels add.

A label says which genre a finished job's song really is; the genre may be one the model does not
know yet. A label from an admin key is approved at once; any other waits (``pending``) until an
admin approves or rejects it. Approved labels, with their audio, are training data beside
``GENREFLOW_TRAIN_DATA_DIR``: :func:`label_tracks` returns them as extra training tracks, which
only ever join the training part of a run (the held-out tracks that decide ``if_better`` stay
the folder's fixed split). A genre the folder does not have enters only with at least
:data:`MIN_EXAMPLES_NEW_GENRE` approved examples, and a model whose genre set differs from the
active one is never activated automatically (:func:`hold_new_genre_set`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import InvalidLabel, LabelNotAllowed, LabelNotFound
from shared.store.columns import utcnow
from shared.store.orm import Job, JobLabel, JobStatus, LabelStatus

if TYPE_CHECKING:
    from shared.core.learning.dataset import Track

#: Approved examples a genre the training folder lacks needs before it enters training.
MIN_EXAMPLES_NEW_GENRE: Final = 20
MAX_GENRE_CHARS: Final = 64
#: A genre is a plain name: it becomes a folder-like name in a model's genre list.
_GENRE = re.compile(r"^[a-z0-9](?:[a-z0-9 &'+._-]*[a-z0-9+])?$")


def normalize_genre(raw: object) -> str:
    """Return ``raw`` as a genre name: trimmed, lower case, single spaces.

    Raises
    ------
    InvalidLabel
        Not a string, empty, longer than 64 characters, or with characters other than letters,
        digits, spaces and ``& ' + . _ -``.
    """
    if not isinstance(raw, str):
        raise InvalidLabel('Send the genre as a string, e.g. {"genre": "jazz"}.')
    genre = " ".join(raw.split()).lower()
    if not genre:
        raise InvalidLabel("The genre is empty.")
    if len(genre) > MAX_GENRE_CHARS or not _GENRE.match(genre):
        raise InvalidLabel(
            f"{raw[:80]!r} is not a genre name: use at most {MAX_GENRE_CHARS} letters, digits, "
            "spaces and & ' + . _ -"
        )
    return genre


def set_label(
    session: Session, job: Job, genre: str, *, api_key_id: str | None, by_admin: bool
) -> JobLabel:
    """Record (or replace) the label of ``job`` and commit.

    Parameters
    ----------
    session : Session
    job : Job
        A ``done`` job whose audio is still stored.
    genre : str
        As the user wrote it (normalised here).
    api_key_id : str or None
        The key that gives the label.
    by_admin : bool
        An admin's label is approved at once; any other is pending.

    Raises
    ------
    InvalidLabel, LabelNotAllowed
    """
    genre = normalize_genre(genre)
    if job.status != JobStatus.DONE.value or job.prediction is None:
        raise LabelNotAllowed(f"Job {job.id} has no result to correct (it is {job.status}).")
    if job.audio_expired_at is not None or not Path(job.upload_path).is_file():
        raise LabelNotAllowed(
            f"The audio of job {job.id} is no longer stored, so it cannot become training data."
        )
    now = utcnow()
    label = job.label or JobLabel(job_id=job.id)
    label.genre = genre
    label.predicted_genre = job.prediction.genre
    label.api_key_id = api_key_id
    label.created_at = now
    label.status = LabelStatus.APPROVED.value if by_admin else LabelStatus.PENDING.value
    label.decided_at = now if by_admin else None
    job.label = label
    session.commit()
    return label


def find_label(session: Session, job_id: str) -> JobLabel:
    """Return the label of job ``job_id``.

    Raises
    ------
    LabelNotFound
    """
    label = session.scalars(select(JobLabel).where(JobLabel.job_id == job_id)).first()
    if label is None:
        raise LabelNotFound(f"Job {job_id!r} has no label.")
    return label


def decide_label(session: Session, job_id: str, *, approve: bool) -> JobLabel:
    """Approve or reject the label of job ``job_id`` (an admin's decision) and commit."""
    label = find_label(session, job_id)
    label.status = (LabelStatus.APPROVED if approve else LabelStatus.REJECTED).value
    label.decided_at = utcnow()
    session.commit()
    return label


def remove_label(session: Session, job: Job) -> None:
    """Remove the label of ``job`` and commit; its audio then follows the normal retention."""
    if job.label is None:
        raise LabelNotFound(f"Job {job.id!r} has no label.")
    job.label = None
    session.commit()


@dataclass
class LabelSet:
    """The approved labels a training run gets, and the new genres still short of examples."""

    tracks: list[Track] = field(default_factory=list)
    #: Approved examples per genre that entered training.
    used: dict[str, int] = field(default_factory=dict)
    #: Genres the folder lacks, with their approved examples, still under the threshold.
    waiting: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return what a training run's record says about its user labels."""
        return {
            "n_tracks": len(self.tracks),
            "by_genre": dict(sorted(self.used.items())),
            "waiting_genres": dict(sorted(self.waiting.items())),
            "min_examples_new_genre": MIN_EXAMPLES_NEW_GENRE,
        }


def label_tracks(session: Session, folder_genres: set[str]) -> LabelSet:
    """Return the approved labels whose audio is stored, as extra training tracks.

    A label of a genre in ``folder_genres`` always counts; one of a new genre only once that
    genre has :data:`MIN_EXAMPLES_NEW_GENRE` approved examples. Identical bytes labelled twice
    with the same genre count once.
    """
    from shared.core.learning.dataset import Track

    rows = session.execute(
        select(Job.upload_path, JobLabel.genre)
        .join(JobLabel, JobLabel.job_id == Job.id)
        .where(JobLabel.status == LabelStatus.APPROVED.value, Job.audio_expired_at.is_(None))
        .order_by(Job.upload_path, JobLabel.genre)
    ).all()
    examples = sorted({(path, genre) for path, genre in rows if Path(path).is_file()})
    counts = Counter(genre for _path, genre in examples)
    enters = {g for g, n in counts.items() if g in folder_genres or n >= MIN_EXAMPLES_NEW_GENRE}
    return LabelSet(
        tracks=[Track(path=Path(path), genre=genre) for path, genre in examples if genre in enters],
        used={g: n for g, n in counts.items() if g in enters},
        waiting={g: n for g, n in counts.items() if g not in enters},
    )


def folder_genres(data_dir: str | Path) -> set[str]:
    """Return the genres (sub-folder names) of a GTZAN-layout training folder."""
    from shared.core.learning.dataset import find_tracks

    return {track.genre for track in find_tracks(data_dir)}


def training_labels(session: Session, data_dir: str | Path) -> LabelSet:
    """Return the labels a training run on ``data_dir`` adds (see :func:`label_tracks`)."""
    return label_tracks(session, folder_genres(data_dir))


def training_fingerprint(session: Session, data_dir: str | Path) -> str:
    """Return the fingerprint of what a run on ``data_dir`` would see: folder plus labels.

    Equal to :func:`shared.core.learning.dataset.dataset_fingerprint` while no approved label
    counts, so models trained before any label keep their fingerprint.
    """
    from shared.core.learning.dataset import dataset_fingerprint, tracks_fingerprint

    return tracks_fingerprint(
        dataset_fingerprint(data_dir), training_labels(session, data_dir).tracks
    )
