"""The shipped default model: its genres, its answer policy, its answer for sounds not music.

Accuracy on music is measured by benchmarks/accuracy.py, never here; these tests check what the
answer *means* on inputs whose right answer is known without a model: a steady tone or noise is
none of its genres, so the answer must come back ``uncertain``.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.learning.demo_data import write_audio
from shared.core.serving.inference import load_served_model
from shared.core.serving.predict import predict_file
from shared.store.registry import DEFAULT_MODEL_DIR

ELEVEN_GENRES = [
    "blues",
    "classical",
    "country",
    "electronic",
    "hiphop",
    "jazz",
    "latin",
    "pop",
    "reggae",
    "rnb",
    "rock",
]  # fmt: skip  (the kit's: Emotify's four and 4Q's eight, electronic in both)
SR = 22_050


@pytest.fixture(scope="module")
def shipped():
    return load_served_model(next(DEFAULT_MODEL_DIR.glob("*.keras")))


def test_shipped_model_knows_eleven_genres_and_carries_a_fitted_answer_policy(shipped):
    assert shipped.genres == ELEVEN_GENRES
    policy = shipped.answer_policy
    assert policy.rule in {"mean", "vote"}
    assert policy.temperature > 0
    assert 0.3 <= policy.uncertain_below <= 0.9
    assert policy.novelty is not None
    assert policy.figures["ece_after"] <= policy.figures["ece_before"]
    assert policy.figures["n_unknown_songs"] > 0  # threshold set on genres left out


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * np.sin(2 * np.pi * 440.0 * t)


def _noise(seconds: float) -> np.ndarray:
    return 0.2 * np.random.default_rng(0).standard_normal(int(seconds * SR))


def _beeps(seconds: float) -> np.ndarray:
    """Return a test-signal sweep: one second per frequency, octaves apart."""
    t = np.arange(SR) / SR
    parts = [0.3 * np.sin(2 * np.pi * f * t) for f in (125, 250, 500, 1000, 2000, 4000, 8000)]
    return np.concatenate(parts * int(np.ceil(seconds / len(parts))))[: int(seconds * SR)]


@pytest.mark.parametrize("make", [_tone, _noise, _beeps], ids=["tone", "noise", "sweep"])
def test_shipped_model_is_not_sure_of_sounds_that_are_no_music(shipped, tmp_path, make):
    path = write_audio(tmp_path / f"{make.__name__}.wav", make(12.0).astype(np.float32), sr=SR)
    result = predict_file(path, shipped).to_dict()
    assert result["uncertain"] is True
    assert result["uncertain_reason"] in {"unfamiliar_sound", "low_confidence"}
    assert result["genre"] in ELEVEN_GENRES  # the closest genre is still named
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
