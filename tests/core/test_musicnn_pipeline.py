"""Models that read musicnn beside the MFCCs: log-mel patches, training, the shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.core.audio.features import (
    FeatureConfig,
    add_deltas,
    logmel_segments,
    mfcc_segments,
    segment_features,
)
from tests.shared_build import build_once

SR = 22_050


def test_logmel_patches_are_musicnns_input_one_per_segment():
    y = np.random.default_rng(0).standard_normal(10 * SR).astype(np.float32) * 0.1
    patches = logmel_segments(y)
    assert patches.shape == (3, 187, 96)
    assert patches.dtype == np.float32
    assert patches.min() >= 0.0  # log10(1 + 10000 x) of a power
    # each segment on its own: the second segment's patch does not depend on the first's audio
    alone = logmel_segments(y[SR * 3 : SR * 6])
    np.testing.assert_allclose(patches[1], alone[0], rtol=1e-5, atol=1e-5)


def test_segment_features_carry_every_model_input():
    y = np.random.default_rng(1).standard_normal(7 * SR).astype(np.float32)
    plain = segment_features(y, config=FeatureConfig())
    assert set(plain) == {"mfcc"}
    both = segment_features(y, config=FeatureConfig(musicnn=True))
    assert both["mfcc"].shape == (2, 130, 13)
    assert both["logmel"].shape == (2, 187, 96)
    assert FeatureConfig(musicnn=True).input_shapes() == {"mfcc": (130, 13), "logmel": (187, 96)}


def test_deltas_from_cached_mfccs_equal_deltas_computed_with_them():
    y = np.random.default_rng(2).standard_normal(6 * SR).astype(np.float32)
    np.testing.assert_allclose(
        add_deltas(mfcc_segments(y)), mfcc_segments(y, config=FeatureConfig(deltas=True)),
        rtol=1e-5, atol=1e-4,
    )  # fmt: skip


@pytest.fixture(scope="session")
def musicnn_training(tiny_dataset, tmp_path_factory):
    """Train a musicnn model on the tiny dataset, once per run (whatever the xdist workers)."""
    from shared.core.learning.training import TrainOptions, train_from_folder

    def train(out):
        stages = []
        report = train_from_folder(
            tiny_dataset,
            out,
            options=TrainOptions(
                epochs=3, valid_fraction=0.2, test_fraction=0.2, cache_dir=str(out / "cache"),
                progress_bar=False,
            ),
            feature_config=FeatureConfig(musicnn=True),
            progress=lambda stage, fraction: stages.append((stage, fraction)),
        )  # fmt: skip
        return report, stages

    return build_once(tmp_path_factory, "musicnn-model", train)


def test_training_with_musicnn_saves_one_servable_model(musicnn_training, make_audio):
    from shared.core.nets.model import load_genre_model
    from shared.core.serving.predict import predict_file

    report, stages = musicnn_training
    sidecar = json.loads(report.model_path.with_suffix(".json").read_text())
    assert sidecar["feature_config"]["musicnn"] is True
    assert sidecar["architecture"] == "musicnn_baseline"
    assert sidecar["recipe"]["name"] == "musicnn-pool"
    assert sidecar["recipe"]["embedding"] == "pool"
    assert set(sidecar["timings"]) == {"features_s", "training_s"}
    # progress went through features (MFCCs then embeddings), training and evaluation
    feature_steps = [f for s, f in stages if s == "features"]
    assert feature_steps == sorted(feature_steps)
    assert feature_steps[-1] == pytest.approx(1.0)
    assert {s for s, _ in stages} == {"features", "training", "evaluating"}

    model = load_genre_model(report.model_path)
    names = {t.name.split(":")[0] for t in model.keras_model.inputs}
    assert names == {"mfcc", "logmel"}
    prediction = predict_file(make_audio("metal", seconds=7.0), model)
    assert prediction.n_segments == 2
    assert set(prediction.probabilities) == set(report.metrics["genres"])
    # the worker serves the ONNX export of the whole model (musicnn included): same scores
    from shared.core.audio.features import segment_features
    from shared.core.serving.inference import load_served_model
    from shared.core.serving.staged import EXACT

    assert sidecar["served"]["format"] == "onnx"
    assert load_served_model(report.model_path).runtime == "staged"  # the fast path by default
    served = load_served_model(report.model_path, serving=EXACT)
    assert served.runtime == "onnx"
    y = np.random.default_rng(3).standard_normal(7 * SR).astype(np.float32) * 0.1
    inputs = segment_features(y, config=FeatureConfig(musicnn=True))
    onnx, keras = served.predict_segments(inputs), model.predict_segments(inputs)
    # float32 sums in musicnn's wide convolutions run in another order in ONNX Runtime; the
    # embedding's standardisation (by per-dimension training sd) magnifies that to ~1e-3
    np.testing.assert_allclose(onnx, keras, atol=5e-3)
    assert (onnx.argmax(axis=1) == keras.argmax(axis=1)).all()


def test_served_model_scores_like_the_head_on_cached_embeddings(musicnn_training, tiny_dataset):
    from shared.core.learning.dataset import find_tracks
    from shared.core.learning.embeddings import EmbeddingCache
    from shared.core.learning.held_out import evaluate_on_tracks
    from shared.core.nets.model import load_genre_model

    report, _ = musicnn_training
    model = load_genre_model(report.model_path)
    # evaluate_on_tracks computes log-mel patches and runs musicnn inside the served model; the
    # report's metrics came from the head on cached embeddings: the same tracks, the same answer
    again = evaluate_on_tracks(model, tiny_dataset, report.test_tracks)
    assert again["confusion_matrix"] == report.metrics["confusion_matrix"]
    track = find_tracks(tiny_dataset)[0]
    config = FeatureConfig(musicnn=True)
    cached = EmbeddingCache(None, config).embeddings(track.path)["penultimate"]
    assert cached.shape == (3, 200)


def test_musicnn_embeddings_show_progress_while_they_are_computed(tiny_dataset, capsys):
    from shared.core.learning.dataset import find_tracks
    from shared.core.learning.embeddings import EmbeddingCache
    from shared.core.learning.model_inputs import load_embeddings

    tracks = find_tracks(tiny_dataset)[:3]
    fractions: list[float] = []
    embeddings = load_embeddings(
        tracks,
        [EmbeddingCache(None, FeatureConfig(musicnn=True))],
        "penultimate",
        progress=fractions.append,
        progress_bar=True,
    )
    assert [e.shape for e in embeddings.values()] == [(3, 200)] * 3
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0])  # once per track, as it goes
    assert "musicnn: 100%" in capsys.readouterr().err  # the bar, beside the MFCCs' one
