"""The LSTM over MFCC sequences: build, save with its sidecar, load, and score segments.

This is the only module that imports TensorFlow/Keras, and only inside functions, so importing
it costs nothing and the web process never pays for TensorFlow.

A saved model is two files side by side: ``<version>.keras`` (Keras 3 format) and
``<version>.json`` (the sidecar: genres in output order, the feature config, training data
summary, metrics, created time and version id). The sidecar is what the service reads to list
models without loading TensorFlow.

Beside them, :func:`save_model` writes ``<version>.onnx``, the served artefact: the same network
as an ONNX graph that :mod:`shared.core.serving.inference` runs with ONNX Runtime, so a predict
worker never imports TensorFlow. The sidecar's ``"served"`` entry names it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.core.audio.features import FeatureConfig
from shared.core.nets.genre_model import GenreModel, assemble_model, open_sidecar
from shared.core.nets.hparams import ARCHITECTURES, LEARNING_RATE
from shared.core.nets.sidecar import model_path_for, onnx_path, write_sidecar
from shared.errors import ModelError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

SIDECAR_FORMAT = 1
#: ONNX opset of the served artefact; ONNX Runtime >= 1.14 runs it.
ONNX_OPSET = 17


def import_keras() -> Any:
    """Import Keras on the TensorFlow backend, keeping TensorFlow's C++ start-up chatter quiet.

    TensorFlow's C++ side writes its start-up lines (absl's pre-init warning, oneDNN and CPU
    feature notes) straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. They
    are caught during the import and passed to this module's logger at INFO level, so they show
    with ``genreflow -v`` (or a worker's INFO log) and stay off a quiet terminal.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    with _stderr_to_log("TensorFlow start-up"):
        import keras
        import tensorflow  # noqa: F401  (the backend, imported under the same capture)

    return keras


@contextlib.contextmanager
def _stderr_to_log(what: str) -> Iterator[None]:
    """Capture what C/C++ code writes to file descriptor 2 and log it at INFO level."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.info("%s:\n%s", what, text)


def build_model(
    input_shape: tuple[int, int],
    n_classes: int,
    *,
    architecture: str = "baseline",
    feature_mean: np.ndarray | None = None,
    feature_var: np.ndarray | None = None,
    learning_rate: float = LEARNING_RATE,
) -> keras.Model:
    """Build and compile the genre classifier.

    Parameters
    ----------
    input_shape : (n_frames, n_features)
        One segment's MFCC sequence, e.g. ``(130, 13)``.
    n_classes : int > 1
        Number of genres.
    architecture : {"baseline", "bilstm"}
        ``baseline`` is the article's LSTM(64) → Dense(64, relu) → Dense(n, softmax).
        ``bilstm`` stacks two bidirectional LSTM(64) layers with dropout before the same head.
    feature_mean, feature_var : np.ndarray, shape (n_features,), optional
        Per-coefficient statistics of the training features. When given, a ``Normalization``
        layer standardises the input inside the model, so a saved model carries its scaling.
    learning_rate : float > 0
        Adam's learning rate.

    Returns
    -------
    keras.Model
        Compiled with Adam and categorical cross-entropy.
    """
    keras = import_keras()
    layers = keras.layers

    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}; choose from {ARCHITECTURES}.")
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = inputs
    if feature_mean is not None and feature_var is not None:
        x = layers.Normalization(axis=-1, mean=feature_mean, variance=feature_var, name="norm")(x)
    if architecture == "baseline":
        x = layers.LSTM(64, name="lstm")(x)
        x = layers.Dense(64, activation="relu", name="dense")(x)
    else:
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True), name="bilstm_1")(x)
        x = layers.Dropout(0.3, name="dropout_1")(x)
        x = layers.Bidirectional(layers.LSTM(64), name="bilstm_2")(x)
        x = layers.Dropout(0.3, name="dropout_2")(x)
        x = layers.Dense(64, activation="relu", name="dense")(x)
        x = layers.Dropout(0.3, name="dropout_3")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    model = keras.Model(inputs, outputs, name=f"genreflow_{architecture}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def new_version() -> str:
    """Return a fresh, sortable model version id such as ``20261125-143000-a1b2c3``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def save_model(
    model: keras.Model,
    out_dir: str | Path,
    *,
    version: str,
    genres: list[str],
    feature_config: FeatureConfig,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` as ``<out_dir>/<version>.keras`` with its sidecar; return the model path.

    The served ONNX artefact ``<version>.onnx`` is written beside it (see :func:`export_onnx`);
    if the export fails, the sidecar has no ``"served"`` entry and serving falls back to Keras.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_path_for(out_dir, version)
    model.save(model_path)
    served = served_entry(model, model_path)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "genres": list(genres),
        "feature_config": feature_config.to_dict(),
        "architecture": model.name.removeprefix("genreflow_"),
        **({"served": served} if served else {}),
        **(extra or {}),
    }
    write_sidecar(model_path, sidecar, default=_json_default)
    return model_path


def served_entry(model: keras.Model, model_path: str | Path) -> dict[str, Any] | None:
    """Export ``model`` to ONNX beside ``model_path``; return the sidecar's ``"served"`` entry.

    Returns ``None`` (and logs why) when the export fails, so that the model is still saved and
    served through Keras.
    """
    path = onnx_path(model_path)
    try:
        export_onnx(model, path)
    except Exception as exc:  # any converter failure leaves the Keras model usable
        log.warning("could not export %s to ONNX (%s); it will be served by Keras", path, exc)
        path.unlink(missing_ok=True)
        return None
    return {"format": "onnx", "file": path.name, "opset": ONNX_OPSET}


def export_onnx(model: keras.Model, path: str | Path, *, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` as an ONNX graph that computes the same outputs in inference mode.

    Each Keras input becomes an ONNX input of the same name with a free batch dimension. The
    conversion is tf2onnx's, from a traced ``tf.function``; tensors the trace captures as
    constants (a ``Normalization`` layer's mean and variance) are stored as initializers, so the
    graph's only inputs are the model's own.

    Parameters
    ----------
    model : keras.Model
        Single- or multi-input functional model.
    path : path-like
        Where the ``.onnx`` file goes (written atomically).
    opset : int
        ONNX opset to target.

    Returns
    -------
    Path
        ``path``.
    """
    import_keras()
    import onnx
    import tensorflow as tf
    import tf2onnx
    from onnx import numpy_helper

    specs = [
        tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=_input_name(tensor))
        for tensor in model.inputs
    ]

    def call(*inputs: tf.Tensor) -> tf.Tensor:
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    function = tf.function(call, input_signature=specs)
    concrete = function.get_concrete_function()
    n_inputs = len(specs)
    captured = {
        placeholder.name: value
        for placeholder, value in zip(
            concrete.inputs[n_inputs:], concrete.captured_inputs, strict=False
        )
        if placeholder.dtype != tf.resource
    }
    proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    graph = proto.graph
    used = {name for node in graph.node for name in node.input}
    for graph_input in list(graph.input):
        if graph_input.name in captured:
            graph.input.remove(graph_input)
            if graph_input.name in used:
                array = np.asarray(captured[graph_input.name])
                graph.initializer.append(numpy_helper.from_array(array, graph_input.name))
    onnx.checker.check_model(proto)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(proto, tmp)
    os.replace(tmp, path)
    return path


def _input_name(tensor: Any) -> str:
    """Return a Keras input's layer name (``mfcc``), without any ``:0`` suffix."""
    return str(getattr(tensor, "name", "input")).split(":")[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _traced_scorer(model: keras.Model, shapes: dict[str, tuple[int, ...]]) -> Any:
    import tensorflow as tf

    if len(shapes) == 1:
        signature: Any = tf.TensorSpec(shape=(None, *shapes["mfcc"]), dtype=tf.float32)
    else:
        signature = {
            name: tf.TensorSpec(shape=(None, *shape), dtype=tf.float32, name=name)
            for name, shape in shapes.items()
        }

    order = [tensor.name.split(":")[0] for tensor in model.inputs]

    @tf.function(input_signature=[signature], reduce_retracing=True)
    def score(batch: Any) -> tf.Tensor:
        if isinstance(batch, dict):  # the model's inputs in its own order
            batch = [batch[name] for name in order]
        return model(batch, training=False)

    return score


def load_genre_model(
    path: str | Path, *, expected_features: FeatureConfig | None = None, warm_up: bool = True
) -> GenreModel:
    """Load a ``.keras`` model and its sidecar.

    Parameters
    ----------
    path : path-like
        The ``.keras`` file; its sidecar ``<stem>.json`` must sit beside it.
    expected_features : FeatureConfig, optional
        When given, the model's stored feature config must equal it.
    warm_up : bool
        Trace the scoring function now, so the first song is not slower than the rest.

    Raises
    ------
    ModelError
        The file or sidecar is missing or unreadable.
    FeatureMismatch
        The stored feature config differs from ``expected_features`` or from the network's
        input shape.
    """
    path, sidecar, config = open_sidecar(path, expected_features=expected_features)
    keras = import_keras()
    try:
        keras_model = keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ModelError(f"Cannot load model {path.name}: {exc}") from exc
    return assemble_model(
        path,
        sidecar,
        config,
        network_name=path.name,
        input_shapes={t.name.split(":")[0]: tuple(t.shape[1:]) for t in keras_model.inputs},
        n_outputs=keras_model.output_shape[-1],
        warm_up=warm_up,
        keras_model=keras_model,
        _score=_traced_scorer(keras_model, config.input_shapes()),
    )
