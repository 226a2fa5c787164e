"""Honest evaluation of a genre model on held-out tracks.

Accuracy is reported three ways: per segment, per track by majority vote (what the service
answers), and per track by the mean of segment probabilities. Per-genre precision, recall and
F1 and the confusion matrix are over tracks (vote).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.serving.predict import vote_genre


def evaluate_probabilities(
    track_probabilities: Sequence[np.ndarray],
    true_genres: Sequence[str],
    genres: Sequence[str],
) -> dict[str, Any]:
    """Score per-track segment probabilities against the true genres.

    Parameters
    ----------
    track_probabilities : sequence of np.ndarray, each shape (n_segments, n_genres)
        The model's output for each held-out track.
    true_genres : sequence of str
        Each track's genre. A genre the model does not know always counts as wrong.
    genres : sequence of str
        The model's genres, in output order.

    Returns
    -------
    dict
        ``segment_accuracy``, ``track_accuracy_vote``, ``track_accuracy_mean``,
        ``n_test_tracks``, ``n_test_segments``, ``per_genre`` (precision, recall, f1,
        support), ``confusion_matrix`` (rows: true, columns: predicted by vote) and ``genres``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    genres = list(genres)
    index = {genre: i for i, genre in enumerate(genres)}
    truth = np.array([index.get(genre, -1) for genre in true_genres])
    by_vote, by_mean, segment_hits, n_segments = [], [], 0, 0
    for probabilities, label in zip(track_probabilities, truth, strict=True):
        winner, _, mean = vote_genre(probabilities, genres)
        by_vote.append(winner)
        by_mean.append(int(mean.argmax()))
        segment_hits += int((probabilities.argmax(axis=1) == label).sum())
        n_segments += len(probabilities)
    by_vote_arr, by_mean_arr = np.array(by_vote), np.array(by_mean)
    labels = list(range(len(genres)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, by_vote_arr, labels=labels, zero_division=0
    )
    return {
        "segment_accuracy": round(segment_hits / max(n_segments, 1), 4),
        "track_accuracy_vote": round(float(np.mean(by_vote_arr == truth)), 4),
        "track_accuracy_mean": round(float(np.mean(by_mean_arr == truth)), 4),
        "n_test_tracks": len(truth),
        "n_test_segments": n_segments,
        "per_genre": {
            genre: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, genre in enumerate(genres)
        },
        "confusion_matrix": confusion_matrix(truth, by_vote_arr, labels=labels).tolist(),
        "genres": genres,
    }


def song_scores(probabilities: np.ndarray) -> dict[str, list[float]]:
    """Summarise one song's segment probabilities ``(n_segments, n_genres)`` three ways.

    Returns
    -------
    dict
        ``mean``: the mean probability per genre; ``geometric``: the normalised geometric mean
        (mean log-probability); ``vote``: the share of segments whose top genre it is. Rounded
        to 5 decimals, JSON-ready.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    log_mean = np.log(np.clip(probabilities, 1e-7, 1.0)).mean(axis=0)
    geometric = np.exp(log_mean - log_mean.max())
    votes = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    return {
        "mean": np.round(probabilities.mean(axis=0), 5).tolist(),
        "geometric": np.round(geometric / geometric.sum(), 5).tolist(),
        "vote": np.round(votes / votes.sum(), 5).tolist(),
    }


def save_confusion_png(
    matrix: Sequence[Sequence[int]], genres: Sequence[str], path: str | Path, *, title: str
) -> Path:
    """Draw a confusion matrix (rows true, columns predicted) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    data = np.asarray(matrix)
    size = 2.5 + 0.55 * len(genres)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    try:
        ax.imshow(data, cmap="Blues")
        ax.set_xticks(range(len(genres)), labels=genres, rotation=45, ha="right")
        ax.set_yticks(range(len(genres)), labels=genres)
        ax.set_xlabel("predicted (vote)")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize="medium")
        threshold = data.max() / 2 if data.size else 0
        for (row, col), value in np.ndenumerate(data):
            colour = "white" if value > threshold else "black"
            ax.text(col, row, str(value), ha="center", va="center", color=colour)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
