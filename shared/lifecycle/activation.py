"""Whether a newly trained model replaces the active one, decided on the same held-out tracks.

The run scores the new model as it was saved (:func:`score_saved_model`) and the active model
(:func:`score_active_model`) on the run's test tracks; :func:`decide_activation` applies
``GENREFLOW_ACTIVATE_POLICY`` and says why, in words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from shared.lifecycle.base import describe

if TYPE_CHECKING:
    from shared.store.config import Settings

log = logging.getLogger(__name__)

COMPARE_METRIC: Final = "track_accuracy_vote"


def decide_activation(
    policy: str,
    new_metrics: dict[str, Any],
    active_metrics: dict[str, Any] | None,
    *,
    compare_error: str | None = None,
    genres: Sequence[str] | None = None,
    active_genres: Sequence[str] | None = None,
) -> tuple[bool, str]:
    """Decide whether a new model replaces the active one.

    Parameters
    ----------
    policy : {"if_better", "always", "never"}
    new_metrics : dict
        The new model's metrics on the run's held-out test tracks.
    active_metrics : dict or None
        The active model's metrics on the same tracks; ``None`` when no model is active.
    compare_error : str, optional
        Why the active model could not be evaluated; under ``if_better`` the new model then
        wins (a model that cannot score the current data should not stay in service).
    genres, active_genres : sequence of str, optional
        The genres of the new and of the active model. A new model whose set of genres differs
        is never activated automatically, whatever the policy: it answers another question, so
        a score on the same tracks does not say it is the better one (a user's label may have
        brought a new genre). An admin activates it by hand if it should be.

    Returns
    -------
    (bool, str)
        Whether to activate, and why, in words.
    """
    new_set, active_set = set(genres or ()), set(active_genres or ())
    differ = genres is not None and active_genres is not None and new_set != active_set
    if policy == "never":
        return False, "GENREFLOW_ACTIVATE_POLICY is 'never'"
    if policy not in {"always", "if_better"}:
        raise ValueError(f"unknown activation policy {policy!r}")
    if differ:
        changes = [
            f"{label} {', '.join(sorted(names))}"
            for label, names in (("adds", new_set - active_set), ("lacks", active_set - new_set))
            if names
        ]
        return False, (
            f"its genres differ from the active model's (it {' and '.join(changes)}); a model "
            "of other genres is never activated automatically: an admin activates it by hand"
        )
    if policy == "always":
        return True, "GENREFLOW_ACTIVATE_POLICY is 'always'"
    if compare_error is not None:
        return True, f"the active model could not be evaluated ({compare_error})"
    if active_metrics is None:
        return True, "no model was active"
    new, old = float(new_metrics[COMPARE_METRIC]), float(active_metrics[COMPARE_METRIC])
    if new >= old:
        return True, f"{COMPARE_METRIC} {new:.3f} >= active model's {old:.3f}"
    return False, f"{COMPARE_METRIC} {new:.3f} < active model's {old:.3f}"


def score_saved_model(
    model_path: str | Path, data_dir: str, tracks: Sequence[str], settings: Settings
) -> dict[str, Any]:
    """Load a saved model and score it on ``tracks`` of ``data_dir`` (by its own features)."""
    from shared.core.learning.held_out import evaluate_on_tracks
    from shared.core.nets.model import load_genre_model

    model = load_genre_model(model_path, warm_up=False)
    return evaluate_on_tracks(model, data_dir, tracks, cache_dir=settings.cache_dir)


def score_active_model(
    active: Any, report: Any, data_dir: str, settings: Settings
) -> dict[str, Any]:
    """Score the active model (if another one) on the new model's test tracks.

    A track of a genre the active model does not know counts as wrong for it.
    """
    if active is None or active.version == report.version:
        return {}
    found: dict[str, Any] = {"version": active.version, "genres": list(active.genres)}
    try:
        metrics = score_saved_model(active.path, data_dir, report.test_tracks, settings)
    except Exception as exc:  # any failure means "cannot compare", recorded on the run
        log.warning("could not evaluate active model %s: %s", active.version, exc)
        return {**found, "error": describe(exc)}
    return {**found, "metrics": metrics}


def headline_metrics(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the few metrics a run's comparison keeps (``None`` when there are none)."""
    if not metrics:
        return None
    keys = ("segment_accuracy", "track_accuracy_vote", "track_accuracy_mean", "n_test_tracks")
    return {key: metrics[key] for key in keys if key in metrics}
