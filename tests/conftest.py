"""Fixtures every test folder shares: synthetic audio and a tiny trained model.

The audio is generated (tones, beats, distorted chords), so the suite runs on any machine and
never needs GTZAN. The tiny model is trained once per test session on such audio: it proves the
training + voting path, not accuracy on music.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.core.demo_data import synth_track, write_audio, write_demo_dataset

TINY_GENRES = ("classical", "disco", "metal")

# TensorFlow's C++ start-up logging drowns pytest's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """Return ``make(style="disco", seconds=9.0, ext=".wav", seed=0, name=None) -> Path``."""

    def make(
        style: str = "disco",
        *,
        seconds: float = 9.0,
        ext: str = ".wav",
        seed: int = 0,
        sr: int = 22_050,
        name: str | None = None,
    ) -> Path:
        y = synth_track(style, seconds=seconds, sr=sr, seed=seed)
        return write_audio(tmp_path / (name or f"{style}-{seed}-{seconds:g}s{ext}"), y, sr=sr)

    return make


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a GTZAN-layout folder: 3 synthetic genres x 5 tracks x 9 s (3 segments each)."""
    root = tmp_path_factory.mktemp("tiny-dataset")
    write_demo_dataset(root, genres=TINY_GENRES, tracks_per_genre=5, seconds=9.0, seed=7)
    return root


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """Train the baseline LSTM on :func:`tiny_dataset` once; return the TrainingReport."""
    from shared.core.training import TrainOptions, train_from_folder

    out = tmp_path_factory.mktemp("tiny-model")
    options = TrainOptions(
        epochs=25,
        patience=25,
        valid_fraction=0.2,
        test_fraction=0.2,
        cache_dir=str(out / "cache"),
        progress_bar=False,
    )
    return train_from_folder(tiny_dataset, out, options=options)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_training) -> Path:
    """Path of a small trained ``.keras`` model (genres classical, disco, metal)."""
    return tiny_training.model_path
