"""GTZAN-layout training folders: find the tracks, split them by track, cache their features.

A folder ``<root>/<genre>/<file>`` gives one track per audio file; the genre is the folder name.
Splits are always made over tracks, never over segments, so no song has segments on both
sides of an evaluation.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.core.audio.audio import SUPPORTED_EXTENSIONS, decode_audio
from shared.core.audio.features import FeatureConfig, mfcc_segments
from shared.errors import DatasetError, GenreflowError

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Track:
    """One audio file of a GTZAN-layout folder."""

    path: Path
    genre: str

    @property
    def relpath(self) -> str:
        """``<genre>/<file name>``, the track's name inside its folder."""
        return f"{self.genre}/{self.path.name}"

    @property
    def track_id(self) -> str:
        """``<genre>/<stem>``: the form the GTZAN split lists use (no extension)."""
        return f"{self.genre}/{self.path.stem}"


def find_tracks(root: str | Path) -> list[Track]:
    """List the audio files of a GTZAN-layout folder, sorted by genre then name.

    Raises
    ------
    DatasetError
        ``root`` is missing or holds no ``<genre>/<audio file>``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Training folder {root} does not exist.")
    tracks = [
        Track(path=path, genre=genre_dir.name)
        for genre_dir in sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for path in sorted(genre_dir.iterdir())
        if path.is_file() and path.suffix.lower() in SUPPORTED_EXTENSIONS
    ]
    if not tracks:
        raise DatasetError(
            f"{root} holds no audio in GTZAN layout: expected <root>/<genre>/<file> with files "
            f"ending in {', '.join(sorted(SUPPORTED_EXTENSIONS))}."
        )
    return tracks


ARTISTS_FILE = "artists.csv"


def read_artists(root: str | Path) -> dict[str, str]:
    """Return ``{"<genre>/<file name>": artist}`` from ``<root>/artists.csv``, if there is one.

    The file has a header row with at least ``file``, ``genre`` and ``artist``. Tracks of one
    artist sound alike, so evaluation keeps an artist's tracks on one side of every split.
    """
    import csv

    path = Path(root) / ARTISTS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"file", "genre", "artist"} - set(rows[0] if rows else {})
    if missing:
        raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
    return {f"{row['genre']}/{row['file']}": row["artist"].strip() for row in rows}


def dataset_fingerprint(root: str | Path) -> str:
    """Return a hash that changes when any track is added, removed, renamed or rewritten."""
    digest = hashlib.sha256()
    for track in find_tracks(root):
        stat = track.path.stat()
        digest.update(f"{track.relpath}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def tracks_fingerprint(base: str, extra_tracks: Sequence[Track]) -> str:
    """Return ``base`` (a folder's fingerprint) combined with extra tracks' genres and names.

    ``base`` itself when there are no extra tracks. Extra tracks are content-addressed uploads,
    so their names change whenever their bytes do.
    """
    if not extra_tracks:
        return base
    digest = hashlib.sha256(base.encode())
    for line in sorted(f"{t.genre}\0{t.path.name}" for t in extra_tracks):
        digest.update(f"{line}\n".encode())
    return digest.hexdigest()[:32]


def split_tracks(
    tracks: Sequence[Track], *, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Track]]:
    """Split tracks into train / valid / test, stratified by genre, reproducibly.

    Every genre keeps at least one track in each part.

    Raises
    ------
    DatasetError
        A genre has fewer than three tracks.
    """
    by_genre: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        by_genre[track.genre].append(track)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Track]] = {name: [] for name in SPLIT_NAMES}
    for genre, members in sorted(by_genre.items()):
        if len(members) < 3:
            raise DatasetError(
                f"Genre {genre!r} has {len(members)} track(s); at least 3 are needed to keep "
                "training, validation and test tracks apart."
            )
        order = [members[i] for i in rng.permutation(len(members))]
        n_test = max(1, round(len(order) * test_fraction))
        n_valid = max(1, round(len(order) * valid_fraction))
        n_test, n_valid = min(n_test, len(order) - 2), min(n_valid, len(order) - 2)
        parts["test"] += order[:n_test]
        parts["valid"] += order[n_test : n_test + n_valid]
        parts["train"] += order[n_test + n_valid :]
    return parts


def split_from_lists(tracks: Sequence[Track], split_dir: str | Path) -> dict[str, list[Track]]:
    """Split tracks by fixed lists, e.g. the artist-filtered GTZAN split.

    ``split_dir`` holds ``*train*.txt``, ``*valid*.txt`` and ``*test*.txt``, one track id
    (``<genre>/<stem>``) per line. Tracks on no list are left out.
    """
    split_dir = Path(split_dir)
    by_id = {track.track_id: track for track in tracks}
    parts: dict[str, list[Track]] = {}
    for name in SPLIT_NAMES:
        files = sorted(split_dir.glob(f"*{name}*.txt"))
        if len(files) != 1:
            raise DatasetError(f"{split_dir} must hold exactly one *{name}*.txt split list.")
        ids = [line.strip() for line in files[0].read_text().splitlines() if line.strip()]
        parts[name] = [by_id[i] for i in ids if i in by_id]
        if not parts[name]:
            raise DatasetError(f"None of the tracks listed in {files[0].name} is in the folder.")
    return parts


class FeatureCache:
    """MFCC sequences of whole tracks on disk, keyed by file content hash + feature config.

    Retraining on the same files computes nothing again, and a changed feature config never
    reads stale features.
    """

    def __init__(self, cache_dir: str | Path | None, config: FeatureConfig) -> None:
        self.config = config
        self.directory = Path(cache_dir) / config.digest() if cache_dir else None

    def features(self, path: Path, *, offset: int = 0) -> np.ndarray:
        """Return ``(n_segments, n_frames, n_features)`` for an audio file, cached.

        ``offset`` (samples) starts the segmentation later: the segments then straddle the
        default ones, which makes new training examples from the same song.
        """
        suffix = f"+{offset}" if offset else ""

        def compute() -> np.ndarray:
            y = decode_audio(
                path,
                sr=self.config.sample_rate,
                min_duration_s=self.config.segment_seconds + offset / self.config.sample_rate,
            )
            return mfcc_segments(y[offset:], config=self.config)

        return self.cached(f"{_file_sha256(path)}{suffix}", compute)

    def cached(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return ``<directory>/<name>.npy``, computed (and written atomically) when missing."""
        if self.directory is None:
            return compute()
        cached = self.directory / f"{name}.npy"
        if cached.is_file():
            return np.load(cached)
        features = compute()
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(".tmp.npy")
        np.save(temporary, features)
        temporary.replace(cached)
        return features


def load_features(
    tracks: Iterable[Track],
    cache: FeatureCache,
    *,
    offset: int = 0,
    progress_bar: bool = True,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[Track, np.ndarray], dict[Track, str]]:
    """Compute (or read cached) features of tracks; unreadable tracks are reported, not fatal.

    ``offset`` is passed to :meth:`FeatureCache.features`; ``progress(fraction)`` is called
    after each track.

    Returns
    -------
    features : dict Track → np.ndarray, shape (n_segments, n_frames, n_features)
    skipped : dict Track → reason
    """
    from tqdm import tqdm

    tracks = list(tracks)
    features: dict[Track, np.ndarray] = {}
    skipped: dict[Track, str] = {}
    for track in tqdm(tracks, desc="features", unit="track", disable=not progress_bar):
        try:
            features[track] = cache.features(track.path, offset=offset)
        except GenreflowError as exc:
            log.warning("Skipping %s: %s", track.relpath, exc.detail)
            skipped[track] = exc.detail
        if progress:
            progress(len(features | skipped) / len(tracks))
    return features, skipped


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
