"""The served ONNX artefact scores exactly like the Keras model it was exported from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.core.audio.features import FeatureConfig
from shared.core.nets.model import (
    build_model,
    export_onnx,
    import_keras,
    load_genre_model,
    save_model,
)
from shared.core.serving.inference import _onnx_scorer, load_served_model
from shared.errors import FeatureMismatch

# float32 LSTMs in two runtimes agree to a few ulps of a probability
ATOL = 1e-5

CONFIG = FeatureConfig()
SEGMENT = (CONFIG.n_frames, CONFIG.n_features)


def mfcc_like(n_segments: int, *, seed: int) -> np.ndarray:
    """Return MFCC-scaled random segments (coefficients of tens to hundreds)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(200.0, 5.0, CONFIG.n_features, dtype=np.float32)
    return (rng.normal(size=(n_segments, *SEGMENT)) * scale).astype(np.float32)


@pytest.mark.parametrize("architecture", ["baseline", "bilstm"])
def test_onnx_equals_keras_on_the_same_segments(architecture: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    keras_model = build_model(
        SEGMENT,
        10,
        architecture=architecture,
        feature_mean=rng.normal(size=CONFIG.n_features) * 50,
        feature_var=rng.uniform(10, 5000, size=CONFIG.n_features),
    )
    model_path = save_model(
        keras_model, tmp_path, version="v1", genres=[f"g{i}" for i in range(10)],
        feature_config=CONFIG,
    )  # fmt: skip
    sidecar = json.loads(model_path.with_suffix(".json").read_text())
    assert sidecar["served"] == {"format": "onnx", "file": "v1.onnx", "opset": 17}

    served = load_served_model(model_path)
    assert served.runtime == "onnx"
    assert served.keras_model is None
    for n_segments in (1, 7, 60):  # a free batch dimension
        features = mfcc_like(n_segments, seed=n_segments)
        expected = np.asarray(keras_model(features, training=False))
        got = served.predict_segments(features)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_trained_model_serves_without_tensorflow(tiny_model_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from shared.core.serving.inference import load_served_model\n"
        f"model = load_served_model({str(tiny_model_path)!r})\n"
        f"p = model.predict_segments(np.zeros((2, {SEGMENT[0]}, {SEGMENT[1]}), np.float32))\n"
        "print(model.runtime, p.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split("\n")[0] == "onnx (2, 3) False False"

    features = mfcc_like(12, seed=1)
    keras_scores = load_genre_model(tiny_model_path).predict_segments(features)
    np.testing.assert_allclose(
        load_served_model(tiny_model_path).predict_segments(features), keras_scores, atol=ATOL
    )


def test_model_without_artefact_falls_back_to_keras(tiny_model_path: Path, tmp_path: Path) -> None:
    for suffix in (".keras", ".json"):
        shutil.copy(tiny_model_path.with_suffix(suffix), tmp_path / f"old{suffix}")
    sidecar = json.loads((tmp_path / "old.json").read_text())
    sidecar.pop("served")
    (tmp_path / "old.json").write_text(json.dumps(sidecar))

    model = load_served_model(tmp_path / "old.keras")
    assert model.runtime == "keras"
    assert model.predict_segments(mfcc_like(2, seed=0)).shape == (2, 3)


def test_served_model_checks_its_features(tiny_model_path: Path) -> None:
    with pytest.raises(FeatureMismatch, match="trained on features"):
        load_served_model(tiny_model_path, expected_features=FeatureConfig(n_mfcc=20))
    model = load_served_model(tiny_model_path)
    with pytest.raises(FeatureMismatch, match="expects segments"):
        model.predict_segments(np.zeros((1, 10, 13), np.float32))


def test_two_input_model_with_a_conv_front_end_converts(tmp_path: Path) -> None:
    """MFCC frames plus a mel patch through Conv2D/BatchNorm/pooling, as a pretrained front end."""
    keras = import_keras()
    layers = keras.layers
    mfcc = keras.Input(shape=SEGMENT, name="mfcc")
    logmel = keras.Input(shape=(187, 96), name="logmel")
    x = layers.Reshape((187, 96, 1))(logmel)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(8, (7, 38), activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D((1, 59))(x)
    x = layers.Reshape((181, 8))(x)
    x = layers.Conv1D(8, 7, padding="same", activation="relu")(x)
    pooled = layers.Concatenate()(
        [layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)]
    )
    y = layers.LSTM(16)(layers.Normalization(mean=3.0, variance=40.0)(mfcc))
    merged = layers.Concatenate()([pooled, y])
    out = layers.Dense(4, activation="softmax")(layers.Dense(16, activation="relu")(merged))
    model = keras.Model([mfcc, logmel], out)
    rng = np.random.default_rng(5)
    for layer in model.layers:  # non-trivial batch-norm statistics
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [gamma * 1.5, beta + 0.1, mean + rng.normal(size=mean.shape), var * 2.0]
            )

    path = export_onnx(model, tmp_path / "two.onnx")
    score, input_shapes, n_outputs = _onnx_scorer(path, threads=1)
    assert (input_shapes, n_outputs) == ({"mfcc": SEGMENT, "logmel": (187, 96)}, 4)
    batch = {
        "mfcc": mfcc_like(5, seed=2),
        "logmel": rng.uniform(0, 4, size=(5, 187, 96)).astype(np.float32),
    }
    expected = np.asarray(model([batch["mfcc"], batch["logmel"]], training=False))
    np.testing.assert_allclose(score(batch), expected, rtol=0, atol=ATOL)
    with pytest.raises(FeatureMismatch, match="logmel"):
        score(batch["mfcc"])
