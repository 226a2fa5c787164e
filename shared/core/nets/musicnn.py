"""Our Keras 3 port of musicnn (Pons & Serra, 2019), the pretrained music tagger, used frozen.

musicnn reads a 3-s patch of a 16 kHz, 96-band log-mel spectrogram (187 frames) and was trained
to tag music on the Million Song Dataset (``MSD_musicnn``). Its layers, as in the original
``musicnn/models.py``:

- front-end: batch norm of the input; *timbral* convolutions (7 frames x 38 and x 67 mel bands,
  204 filters each) and *temporal* convolutions (128, 64 and 32 frames x 1 band, 51 filters each),
  every one max-pooled over frequency: 561 values per frame;
- mid-end: three 1-D convolutions (64 filters, 7 frames) with residual connections, stacked on
  the front-end output: 753 values per frame;
- back-end: max and mean over time (1,506 values), batch norm, dense 200 (relu) and batch norm
  (the *penultimate* layer), then 50 tag logits.

The weights are the original checkpoint's, converted once by ``scripts/convert_musicnn.py`` into
``shared/core/nets/musicnn_weights/MSD_musicnn.npz`` under the checkpoint's own variable names (ISC
licence, see ``LICENSE`` beside it). Only standard Keras layers are used (no ``Lambda``), so a
model that contains this network converts to ONNX or LiteRT. TensorFlow is imported only inside
functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.core.nets.recipe import WEIGHTS_DIR
from shared.errors import ModelError

if TYPE_CHECKING:
    import keras

SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
N_FRAMES = 187  # 3 s, as musicnn's extractor computes it
DEFAULT_WEIGHTS = WEIGHTS_DIR / "MSD_musicnn.npz"
EMBEDDINGS = {"penultimate": 200, "pool": 1506}
BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
MIDEND_FEATURES = 753
N_TAGS = 50


def load_weights(path: str | Path = DEFAULT_WEIGHTS) -> dict[str, np.ndarray]:
    """Read the converted checkpoint: ``{variable name: array}`` in the checkpoint's layout.

    Raises
    ------
    ModelError
        The file is missing: only ``MSD_musicnn`` ships; others (``MTT_musicnn``) are made by
        ``scripts/convert_musicnn.py`` from the musicnn wheel.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"No musicnn weights at {path}. Convert them from the musicnn wheel's checkpoint "
            f"with scripts/convert_musicnn.py (only {DEFAULT_WEIGHTS.name} ships)."
        )
    with np.load(path) as data:
        return {name.replace(":", "/"): data[name] for name in data.files}


def _bn(weights: dict[str, np.ndarray], index: int, order: np.ndarray | None = None) -> list:
    prefix = "batch_normalization" + (f"_{index}" if index else "")
    arrays = [weights[f"{prefix}/{p}"] for p in ("gamma", "beta", "moving_mean", "moving_variance")]
    return [a[order] for a in arrays] if order is not None else arrays


def _conv(weights: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, np.ndarray]:
    prefix = "conv2d" + (f"_{index}" if index else "")
    return weights[f"{prefix}/kernel"], weights[f"{prefix}/bias"]


def pool_order() -> np.ndarray:
    """Map our ``[max(753), mean(753)]`` pooled vector onto the checkpoint's interleaved one.

    The original concatenates max and mean on a trailing axis and flattens, so its vector is
    ``max_0, mean_0, max_1, mean_1, …``; ours is all maxima, then all means.
    """
    return np.concatenate(
        [np.arange(0, 2 * MIDEND_FEATURES, 2), np.arange(1, 2 * MIDEND_FEATURES, 2)]
    )


def build_musicnn(
    weights: dict[str, np.ndarray] | None = None,
    *,
    outputs: tuple[str, ...] = ("penultimate",),
    name: str = "musicnn",
) -> keras.Model:
    """Build the frozen musicnn network with the pretrained weights.

    Parameters
    ----------
    weights : dict, optional
        From :func:`load_weights`; the shipped ``MSD_musicnn`` weights by default.
    outputs : tuple of {"penultimate", "pool", "midend", "taggram"}
        What the model returns, in this order: ``penultimate`` (200), ``pool`` (max then mean
        over time of the mid-end features, 1,506), ``midend`` (187 x 753 frame features),
        ``taggram`` (50 tag probabilities).
    name : str
        The Keras model's name.

    Returns
    -------
    keras.Model
        Input ``logmel`` of shape ``(187, 96)`` (frames x mel bands, ``log10(1 + 10000 mel)``);
        not trainable; inference-mode batch norm.
    """
    from shared.core.nets.model import import_keras

    keras = import_keras()
    layers = keras.layers
    weights = load_weights() if weights is None else weights
    setters: list[tuple[Any, list[np.ndarray]]] = []

    def bn(tag: str, index: int, order: np.ndarray | None = None, axis: int = -1) -> Any:
        layer = layers.BatchNormalization(axis=axis, epsilon=BN_EPSILON, name=f"{name}_{tag}")
        setters.append((layer, _bn(weights, index, order)))
        return layer

    inputs = keras.Input(shape=(N_FRAMES, N_MELS), name="logmel")
    x = layers.Reshape((N_FRAMES, N_MELS, 1), name=f"{name}_expand")(inputs)
    x = bn("bn_input", 0)(x)
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name=f"{name}_pad_timbral")(x)
    front = []
    # timbral: conv2d (7x38), conv2d_1 (7x67); temporal: conv2d_2..4 (128, 64, 32 x 1)
    for index, source, padding in (
        (0, padded, "valid"),
        (1, padded, "valid"),
        (2, x, "same"),
        (3, x, "same"),
        (4, x, "same"),
    ):
        kernel, bias = _conv(weights, index)
        conv = layers.Conv2D(
            kernel.shape[-1],
            kernel.shape[:2],
            padding=padding,
            activation="relu",
            name=f"{name}_front_conv{index}",
        )
        setters.append((conv, [kernel, bias]))
        y = bn(f"front_bn{index}", index + 1)(conv(source))
        width = N_MELS - kernel.shape[1] + 1 if padding == "valid" else N_MELS
        y = layers.MaxPooling2D((1, width), name=f"{name}_front_pool{index}")(y)
        front.append(layers.Reshape((N_FRAMES, kernel.shape[-1]), name=f"{name}_front{index}")(y))
    frontend = layers.Concatenate(name=f"{name}_frontend")(front)  # (187, 561)

    midend = [frontend]
    previous = frontend
    for step, index in enumerate((5, 6, 7)):
        kernel, bias = _conv(weights, index)  # (7, width, 1, 64) → Conv1D (7, width, 64)
        conv = layers.Conv1D(
            kernel.shape[-1], 7, padding="same", activation="relu", name=f"{name}_mid_conv{step}"
        )
        setters.append((conv, [kernel[:, :, 0, :], bias]))
        y = bn(f"mid_bn{step}", index + 1)(conv(previous))
        if step > 0:
            y = layers.Add(name=f"{name}_mid_res{step}")([y, previous])
        midend.append(y)
        previous = y
    features = layers.Concatenate(name=f"{name}_midend")(midend)  # (187, 753)

    pooled = layers.Concatenate(name=f"{name}_pool")(
        [
            layers.GlobalMaxPooling1D(name=f"{name}_max_pool")(features),
            layers.GlobalAveragePooling1D(name=f"{name}_mean_pool")(features),
        ]
    )
    order = pool_order()
    x = bn("back_bn_pool", 9, order)(pooled)
    dense = layers.Dense(200, activation="relu", name=f"{name}_dense")
    setters.append((dense, [weights["dense/kernel"][order], weights["dense/bias"]]))
    penultimate = bn("penultimate", 10)(dense(x))
    tags = layers.Dense(N_TAGS, activation="sigmoid", name=f"{name}_tags")
    setters.append((tags, [weights["dense_1/kernel"], weights["dense_1/bias"]]))
    available = {
        "penultimate": penultimate,
        "pool": pooled,
        "midend": features,
        "taggram": tags(penultimate),
    }
    unknown = set(outputs) - set(available)
    if unknown or not outputs:
        raise ValueError(
            f"Unknown musicnn outputs {sorted(unknown)}; choose from {sorted(available)}."
        )
    chosen = [available[o] for o in outputs]
    model = keras.Model(inputs, chosen[0] if len(chosen) == 1 else chosen, name=name)
    for layer, arrays in setters:
        layer.set_weights(arrays)
    model.trainable = False
    return model
