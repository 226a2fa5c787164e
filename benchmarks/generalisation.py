"""What held-back songs see: the linear read-out baseline, cross-source scores, a third source.

Used by ``benchmarks/accuracy.py`` for every variant:

- **linear read-out**: a logistic regression on the same per-segment features the variant reads
  (its embeddings; the MFCCs' per-segment mean and spread for an MFCC-only variant), trained on
  the same folds, segments averaged into songs like the service does. The baseline a variant
  must beat.
- **cross-source**: for a genre found in more than one source folder (electronic in the kit),
  a model is trained without that genre's songs from one source and scores them: it learnt the
  genre from the other source only. Songs of the other genres keep their cross-validation
  scores; together they give a cross-source track accuracy in which a model that learnt "this
  source sounds electronic" loses.
- **third source**: clips of a folder the models never trained on (the kit's ten GTZAN samples,
  ``<genre>.<n>.<ext>``), scored by every fold's model; clips of genres the model does not know
  are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.learning.readout import READOUT_C, READOUT_MAX_ITER

FoldRunner = Callable[[dict[str, list[Any]], list[str]], dict[str, Any]]


def load_third_source(folder: Path) -> list[Any]:
    """Tracks of a flat folder of ``<genre>.<n>.<ext>`` clips (the kit's ``data/samples``)."""
    from shared.core.learning.dataset import SUPPORTED_EXTENSIONS, Track

    return [
        Track(path=path, genre=path.name.split(".")[0])
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix.lower() in SUPPORTED_EXTENSIONS
    ]


def readout_features(data: Any, track: Any, variant: Any) -> np.ndarray:
    """Per-segment features of the read-out: the variant's embeddings, else MFCC mean and sd."""
    parts = []
    if variant.embedding:
        parts += [data.embeddings(n)[track][variant.embedding] for n in variant.networks]
        if variant.audioset:
            parts.append(data.audioset()[track]["embedding"])
    else:
        mfcc = data.mfcc[track]
        parts += [mfcc.mean(axis=1), mfcc.std(axis=1)]
    return np.concatenate(parts, axis=1)


def readout_key(variant: Any) -> tuple[Any, ...]:
    """Variants with the same key have the same read-out (computed once)."""
    embedding = (variant.embedding, variant.networks, variant.audioset) if variant.embedding else ()
    return (*embedding, variant.loudness_db, variant.balanced)


def run_readout_fold(
    data: Any,
    fold: dict[str, list[Any]],
    variant: Any,
    genres: list[str],
    *,
    third: list[Any] | None = None,
) -> dict[str, Any]:
    """Train the linear read-out on a fold's training tracks; score its test tracks.

    Returns the same metrics as ``accuracy.run_fold`` (``tracks`` with song-level scores,
    ``third_source`` when ``third`` is given).
    """
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shared.core.learning.evaluation import evaluate_probabilities, song_scores

    train = fold["train"] + fold["valid"]  # no early stopping: the validation songs train too
    index = {g: i for i, g in enumerate(genres)}
    x = np.concatenate([readout_features(data, t, variant) for t in train])
    y = np.concatenate([[index[t.genre]] * len(data.mfcc[t]) for t in train])
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=READOUT_C,
            max_iter=READOUT_MAX_ITER,
            class_weight="balanced" if variant.balanced else None,
        ),
    )
    started = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - started

    def score(tracks: list[Any]) -> list[np.ndarray]:
        probabilities = []
        for track in tracks:
            p = np.zeros((len(data.mfcc[track]), len(genres)), np.float32)
            p[:, model.classes_] = model.predict_proba(readout_features(data, track, variant))
            probabilities.append(p)
        return probabilities

    per_track = score(fold["test"])
    known = all(t.genre in genres for t in fold["test"])
    metrics = (
        evaluate_probabilities(per_track, [t.genre for t in fold["test"]], genres) if known else {}
    )
    metrics["train_seconds"] = round(seconds, 1)
    metrics["epochs_run"] = 0
    metrics["tracks"] = [
        {"track": t.relpath, "genre": t.genre, **song_scores(p)}
        for t, p in zip(fold["test"], per_track, strict=True)
    ]
    if third:
        metrics["third_source"] = third_source_records(third, score(third))
    return metrics


def third_source_records(tracks: list[Any], per_track: list[np.ndarray]) -> list[dict[str, Any]]:
    """Song-level scores of third-source clips (as a fold's ``tracks``)."""
    from shared.core.learning.evaluation import song_scores

    return [
        {"track": t.path.name, "genre": t.genre, **song_scores(p)}
        for t, p in zip(tracks, per_track, strict=True)
    ]


def cross_source_folds(
    tracks: list[Any], collection: Any, *, seed: int, hold_out: Callable[..., Any]
) -> list[dict[str, Any]]:
    """One fold per (shared genre, source): train without that genre's songs of that source.

    Returns
    -------
    list of dict
        ``train``, ``valid``, ``test`` as a cross-validation fold, plus ``genre`` and
        ``source`` (the left-out songs' source) for the report.
    """
    sources_of: dict[str, set[str]] = {}
    for track in tracks:
        sources_of.setdefault(track.genre, set()).add(collection.source[track])
    folds = []
    for number, (genre, sources) in enumerate(sorted(sources_of.items())):
        if len(sources) < 2:
            continue
        for source in sorted(sources):
            test = [t for t in tracks if t.genre == genre and collection.source[t] == source]
            train = [t for t in tracks if t not in set(test)]
            fit, valid = hold_out(
                train, [collection.group[t] for t in train], seed=seed + 100 + number
            )
            folds.append(
                {"train": fit, "valid": valid, "test": test, "genre": genre, "source": source}
            )
    return folds


def winner(record: dict[str, Any]) -> int:
    """Return the column the mean rule picks (the service's rule)."""
    return int(np.argmax(record["mean"]))


def cross_source_summary(
    cv_records: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    genres: list[str],
) -> dict[str, Any]:
    """Combine cross-validation scores with the cross-source runs.

    Parameters
    ----------
    cv_records : list of dict
        Every held-out track of the cross-validation (``track``, ``genre``, ``mean``).
    runs : list of dict
        One per cross-source fold: ``genre``, ``source`` and the fold's ``tracks``.

    Returns
    -------
    dict
        ``directions``: accuracy on each left-out (genre, source) when trained on the other
        source(s); ``overall``: track accuracy with those songs scored cross-source and every
        other song as in the cross-validation; ``n``.
    """
    replaced = {r["track"] for run in runs for r in run["tracks"]}
    hits = [genres[winner(r)] == r["genre"] for r in cv_records if r["track"] not in replaced]
    directions = {}
    for run in runs:
        right = [genres[winner(r)] == r["genre"] for r in run["tracks"]]
        directions[f"{run['genre']} of {run['source']}"] = {
            "accuracy": round(float(np.mean(right)), 4),
            "n": len(right),
        }
        hits += right
    return {
        "directions": directions,
        "overall": round(float(np.mean(hits)), 4) if hits else None,
        "n": len(hits),
    }


def third_source_summary(folds: list[dict[str, Any]], genres: list[str]) -> dict[str, Any]:
    """Accuracy on third-source clips of the model's genres, mean over the fold models."""
    per_fold, answers = [], {}
    for fold in folds:
        records = [r for r in fold.get("third_source", []) if r["genre"] in genres]
        if not records:
            continue
        per_fold.append(np.mean([genres[winner(r)] == r["genre"] for r in records]))
        for r in records:
            answers.setdefault(r["track"], []).append(genres[winner(r)])
    if not per_fold:
        return {}
    return {
        "accuracy": round(float(np.mean(per_fold)), 4),
        "n": len(answers),
        # the answer most fold models gave each clip
        "answers": {k: max(set(v), key=v.count) for k, v in sorted(answers.items())},
    }


def format_generalisation(summaries: list[dict[str, Any]]) -> list[str]:
    """Return the table to choose a model on: held-out artists, sources, third source."""
    lines = [
        "",
        "Songs the model never saw (mean rule, pooled over folds): artist-held-out per source, "
        "cross-source (a genre's songs of one source scored by a model that learnt that genre "
        "from the other source only; the other songs as in the folds) and the third source. "
        "Each variant's linear read-out of the same features is the row below it.",
        "",
    ]
    keys = sorted(
        {k for s in summaries for k in s.get("per_source", {}) if ":" not in k}
        | {k for s in summaries for k in s.get("per_source", {}) if ":" in k}
    )
    directions = sorted(
        {d for s in summaries for d in (s.get("cross_source") or {}).get("directions", {})}
    )
    lines.append(
        "| variant | all (mean rule) | "
        + " | ".join(keys)
        + " | "
        + " | ".join(f"cross-source: {d}" for d in directions)
        + " | cross-source overall | third source |"
    )
    lines.append("|---|---|" + "---|" * (len(keys) + len(directions) + 2))
    for s in summaries:
        per = s.get("per_source", {})
        cross = s.get("cross_source") or {}
        third = s.get("third_source") or {}
        cells = [f"{per[k]['mean']:.1%} ({per[k]['n']})" if k in per else "-" for k in keys]
        cells += [
            f"{cross['directions'][d]['accuracy']:.1%} ({cross['directions'][d]['n']})"
            if d in cross.get("directions", {})
            else "-"
            for d in directions
        ]
        cells.append(f"{cross['overall']:.1%}" if cross.get("overall") is not None else "-")
        cells.append(f"{third['accuracy']:.1%} (of {third['n']})" if third else "-")
        rule = s.get("pooled_by_rule", {}).get("mean")
        overall = f"{rule:.1%}" if rule is not None else "-"
        lines.append(f"| {s['variant']['name']} | {overall} | " + " | ".join(cells) + " |")
    return lines
