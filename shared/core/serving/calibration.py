"""Honest answers: calibrated song probabilities, a "not sure" flag, and a check for strange sounds.

A song's answer starts from its segments' probabilities: their mean gives the song's
probabilities, and the model's song rule picks the genre (the highest mean, or the most
votes). Three things make it honest about itself, all fitted on
songs the model never saw and stored in the model's sidecar under ``"answer"``:

- **Temperature scaling** (Guo et al., 2017) of the song's mean probabilities:
  ``softmax(log p / T)`` keeps their ranking and makes them mean what they say (of answers given
  with 0.8, about 8 in 10 are right).
- **An uncertainty threshold** on the calibrated top probability: under it, the answer is
  flagged ``uncertain`` (the genre is then only the closest one).
- **A novelty check**: the song's MFCC statistics (mean and spread of each coefficient) against
  those of the training songs (Mahalanobis distance). Speech, noise, test tones and silence sit
  far outside what the model was trained on, however confident its softmax is about them.

NumPy only at import time; scipy and scikit-learn are imported where they fit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: The song rules a model may use: the genre of highest mean probability, or of most votes.
SONG_RULES = ("mean", "vote")
#: What a model without a fitted ``"answer"`` entry uses: the vote, uncalibrated, flagged under
#: one half (an answer more likely wrong than right).
DEFAULT_RULE = "vote"
DEFAULT_UNCERTAIN_BELOW = 0.5
#: Bins of the expected calibration error.
ECE_BINS = 10
#: Share of held-out songs of the model's own genres that the novelty check may call strange.
NOVELTY_QUANTILE = 0.99


@dataclass(frozen=True)
class Novelty:
    """The training songs' MFCC statistics as a Gaussian, and how far is too far from it."""

    mean: list[float]
    precision: list[list[float]]  # inverse covariance (Ledoit-Wolf shrunk)
    threshold: float  # squared Mahalanobis distance

    def distance(self, stats: np.ndarray) -> float:
        """Squared Mahalanobis distance of one song's statistics from the training songs."""
        delta = np.asarray(stats, dtype=np.float64) - np.asarray(self.mean)
        return float(delta @ np.asarray(self.precision) @ delta)

    def is_strange(self, stats: np.ndarray) -> bool:
        """Whether a song's statistics lie beyond the threshold."""
        return self.distance(stats) > self.threshold


@dataclass(frozen=True)
class AnswerPolicy:
    """How a model turns segment probabilities into an honest song answer (sidecar ``answer``)."""

    rule: str = DEFAULT_RULE
    temperature: float = 1.0
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW
    novelty: Novelty | None = None
    fitted_on: str = "not fitted: uncalibrated defaults"
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in the sidecar."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AnswerPolicy:
        """Read the sidecar's ``answer`` entry; a missing one gives the defaults."""
        if not data:
            return cls()
        novelty = data.get("novelty")
        return cls(
            rule=str(data.get("rule", DEFAULT_RULE)),
            temperature=float(data.get("temperature", 1.0)),
            uncertain_below=float(data.get("uncertain_below", DEFAULT_UNCERTAIN_BELOW)),
            novelty=Novelty(**novelty) if novelty else None,
            fitted_on=str(data.get("fitted_on", "")),
            figures=dict(data.get("figures", {})),
        )


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Return ``softmax(log p / T)`` of each row: T > 1 softens, T < 1 sharpens."""
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """Return the temperature that minimises the negative log-likelihood of held-out songs.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_songs, n_genres)
        Song-level probabilities of songs the model never saw.
    labels : sequence of int
        Each song's true column.
    """
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        scaled = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(scaled[rows, labels], 1e-12, 1.0))))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return round(float(np.exp(result.x)), 4)


def expected_calibration_error(
    probabilities: np.ndarray, labels: Sequence[int], *, n_bins: int = ECE_BINS
) -> float:
    """Return the expected calibration error of the top probability, in equal-width bins."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return round(float(error), 4)


def song_statistics(mfcc: np.ndarray, *, n_mfcc: int) -> np.ndarray:
    """Return a song's MFCC statistics: each coefficient's mean and spread over all frames.

    Parameters
    ----------
    mfcc : np.ndarray, shape (n_segments, n_frames, n_features)
        The song's segments (deltas, if any, follow the MFCCs and are left out).
    n_mfcc : int > 0
        How many leading columns are MFCCs.

    Returns
    -------
    np.ndarray, shape (2 * n_mfcc,)
    """
    frames = np.asarray(mfcc[..., :n_mfcc], dtype=np.float64).reshape(-1, n_mfcc)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


def fit_novelty(
    train_stats: np.ndarray,
    held_out_stats: np.ndarray | None = None,
    *,
    quantile: float = NOVELTY_QUANTILE,
) -> Novelty:
    """Fit the training songs' Gaussian and set the threshold at a quantile of held-out songs.

    Parameters
    ----------
    train_stats : np.ndarray, shape (n_songs, n_stats)
        :func:`song_statistics` of the training songs.
    held_out_stats : np.ndarray, optional
        Statistics of songs of the same genres the Gaussian was not fitted on; the training
        songs themselves when not given (which sets the threshold a little low).
    quantile : float in (0, 1)
        Share of those songs that must count as familiar.
    """
    from sklearn.covariance import LedoitWolf

    estimator = LedoitWolf().fit(np.asarray(train_stats, dtype=np.float64))
    novelty = Novelty(
        mean=estimator.location_.tolist(), precision=estimator.precision_.tolist(), threshold=0.0
    )
    reference = train_stats if held_out_stats is None else held_out_stats
    distances = [novelty.distance(row) for row in np.asarray(reference)]
    return Novelty(
        mean=novelty.mean,
        precision=novelty.precision,
        threshold=round(float(np.quantile(distances, quantile)), 3),
    )


def flagged_curve(
    confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """For each threshold: the share of songs flagged and the accuracy of those not flagged."""
    rows = []
    for threshold in thresholds:
        kept = confidence >= threshold
        rows.append(
            {
                "threshold": round(float(threshold), 3),
                "flagged": round(float(1 - kept.mean()), 4),
                "accuracy_answered": round(float(correct[kept].mean()), 4) if kept.any() else 0.0,
            }
        )
    return rows


#: Thresholds tried for the "not sure" flag.
THRESHOLDS = tuple(round(0.30 + 0.01 * i, 2) for i in range(61))  # 0.30 … 0.90
#: At most this share of held-out songs of the model's own genres may be flagged.
MAX_FLAGGED = 0.2
#: Fewer held-out songs than this leave the probabilities uncalibrated (temperature 1).
MIN_CALIBRATION_SONGS = 20


def choose_threshold(
    known_confidence: np.ndarray,
    unknown_confidence: np.ndarray | None = None,
    *,
    max_flagged: float = MAX_FLAGGED,
) -> float:
    """Pick the "not sure" threshold on calibrated top probabilities of held-out songs.

    With songs of genres the model does not know (``unknown_confidence``), the threshold that
    flags most of them while flagging no more than ``max_flagged`` of the songs of its own
    genres (largest difference of the two shares); without them, one half.
    """
    if unknown_confidence is None or not len(unknown_confidence):
        return DEFAULT_UNCERTAIN_BELOW
    best, best_gain = DEFAULT_UNCERTAIN_BELOW, -1.0
    for threshold in THRESHOLDS:
        flagged_known = float(np.mean(known_confidence < threshold))
        if flagged_known > max_flagged:
            break
        gain = float(np.mean(unknown_confidence < threshold)) - flagged_known
        if gain > best_gain:
            best, best_gain = threshold, gain
    return best


def fit_answer_policy(
    mean_probabilities: np.ndarray,
    labels: Sequence[int],
    *,
    rule: str,
    fitted_on: str,
    unknown_mean_probabilities: Sequence[np.ndarray] = (),
    novelty: Novelty | None = None,
    max_flagged: float = MAX_FLAGGED,
) -> AnswerPolicy:
    """Fit the temperature and the "not sure" threshold on songs the model never saw.

    Parameters
    ----------
    mean_probabilities : np.ndarray, shape (n_songs, n_genres)
        Held-out songs' mean segment probabilities (cross-validation, or validation tracks).
    labels : sequence of int
        Their true columns.
    rule : {"mean", "vote"}
        The song rule the model will answer with.
    fitted_on : str
        Where these songs came from, in words (stored with the policy).
    unknown_mean_probabilities : sequence of np.ndarray
        Mean probabilities of songs of genres the scoring model was not trained on (each row
        over that model's genres), e.g. from leaving each genre out in turn.
    novelty : Novelty, optional
        The fitted check for strange sounds.
    max_flagged : float
        See :func:`choose_threshold`.

    Returns
    -------
    AnswerPolicy
        Temperature 1 when there are fewer than :data:`MIN_CALIBRATION_SONGS` songs. With
        ``figures``: calibration error before and after, and accuracy against the share
        of answers flagged at several thresholds.
    """
    mean_probabilities = np.asarray(mean_probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    temperature = (
        fit_temperature(mean_probabilities, labels) if len(labels) >= MIN_CALIBRATION_SONGS else 1.0
    )
    calibrated = apply_temperature(mean_probabilities, temperature)
    confidence = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == labels
    unknown = (
        np.array([apply_temperature(p, temperature).max() for p in unknown_mean_probabilities])
        if len(unknown_mean_probabilities)
        else None
    )
    threshold = choose_threshold(confidence, unknown, max_flagged=max_flagged)
    shown = sorted({0.4, 0.5, 0.6, 0.7, 0.8, threshold})
    curve = flagged_curve(confidence, correct, shown)
    if unknown is not None:
        for row in curve:
            row["unknown_flagged"] = round(float(np.mean(unknown < row["threshold"])), 4)
    figures = {
        "n_songs": len(labels),
        "n_unknown_songs": 0 if unknown is None else len(unknown),
        "ece_before": expected_calibration_error(mean_probabilities, labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "curve": curve,
    }
    return AnswerPolicy(
        rule=rule,
        temperature=temperature,
        uncertain_below=threshold,
        novelty=novelty,
        fitted_on=fitted_on,
        figures=figures,
    )
