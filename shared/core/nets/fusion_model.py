"""Genre models that read a musicnn embedding (and AudioSet's) beside the MFCC sequence.

Training uses a *head*: inputs ``mfcc`` ``(130, n_features)``, ``embedding`` ``(D,)`` (the
musicnn output cached per segment, :mod:`shared.core.learning.embeddings`) and, when the recipe
asks for it, ``audioset`` ``(384,)`` (the AudioSet network's embedding). The MFCCs always go
through an LSTM. Two ways to meet:

- *early* fusion: the embeddings through a dense layer, concatenated with the LSTM's output
  before a dense layer and the classifier;
- *late* fusion: a linear read-out of the embeddings gives genre logits, the LSTM gives its
  own, and the two are added before the softmax: the LSTM is one voice beside the read-out;
- *residual* fusion: the same, but the read-out is a logistic regression fitted first
  (:mod:`shared.core.learning.readout`) and frozen, and the LSTM's voice starts silent: it is
  trained on top of the baseline it must beat, and early stopping on the validation songs keeps
  only what helps there.
  Dropping the LSTM's voice for whole batches while training (``mfcc_dropout``) keeps the
  read-out able to answer on its own, so the head cannot lean on what the MFCCs say about a
  recording's source.

The served model wraps the head around the frozen musicnn network (:func:`compose_served_model`):
inputs ``mfcc``, ``logmel`` ``(187, 96)`` and ``audioset`` if the head reads it, output one
softmax row per segment, standard layers only. TensorFlow is imported only inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

EMBEDDING_UNITS = 64
EMBEDDING_DROPOUT = 0.5
LSTM_DROPOUT = 0.5
HEAD_DROPOUT = 0.3
L2 = 1e-3  # weight decay of the dense layers: a few hundred songs overfit quickly
#: Smallest variance an embedding feature is standardised by, as a share of the mean variance.
VARIANCE_FLOOR = 1e-3


def build_fusion_head(
    mfcc_shape: tuple[int, int],
    embedding_dim: int,
    n_classes: int,
    *,
    architecture: str = "baseline",
    mfcc_mean: np.ndarray | None = None,
    mfcc_var: np.ndarray | None = None,
    embedding_mean: np.ndarray | None = None,
    embedding_var: np.ndarray | None = None,
    learning_rate: float = 1e-3,
    l2: float = L2,
    embedding_dropout: float = EMBEDDING_DROPOUT,
    audioset_dim: int = 0,
    audioset_mean: np.ndarray | None = None,
    audioset_var: np.ndarray | None = None,
    fusion: str = "early",
    lstm_units: int = 64,
    mfcc_dropout: float = 0.0,
    readout: tuple[np.ndarray, np.ndarray] | None = None,
) -> keras.Model:
    """Build and compile the trainable head.

    Parameters
    ----------
    mfcc_shape : (n_frames, n_features)
        One segment's MFCC sequence, e.g. ``(130, 13)``.
    embedding_dim : int
        Length of the musicnn embedding (200 for ``penultimate``, 1,506 for ``pool``).
    n_classes : int > 1
    architecture : {"baseline", "bilstm"}
        ``baseline``: one LSTM(64) over the MFCCs; ``bilstm``: a bidirectional LSTM(64).
    mfcc_mean, mfcc_var, embedding_mean, embedding_var : np.ndarray, optional
        Training statistics; when given, ``Normalization`` layers standardise inside the model.
    learning_rate : float > 0
        Adam's learning rate.
    l2 : float >= 0
        Weight decay of the dense layers.
    embedding_dropout : float in [0, 1)
        Dropout on the (standardised) embedding before its dense layer.
    audioset_dim : int >= 0
        Width of a third input ``audioset`` (0: none).
    audioset_mean, audioset_var : np.ndarray, optional
        Its training statistics, as for the embedding.
    fusion : {"early", "late", "residual"}
        How the branches meet (see the module docstring).
    lstm_units : int > 0
        Width of the LSTM.
    mfcc_dropout : float in [0, 1)
        Probability of dropping the MFCC branch's contribution for a whole batch in training.
    readout : (kernel, bias), optional
        ``residual`` fusion: the fitted linear read-out
        (:func:`shared.core.learning.readout.fit_linear_readout`), frozen in the model.

    Returns
    -------
    keras.Model
        Inputs ``mfcc``, ``embedding`` (and ``audioset``); compiled with Adam and categorical
        cross-entropy.
    """
    from shared.core.nets.model import import_keras

    keras = import_keras()
    layers = keras.layers
    mfcc = keras.Input(shape=mfcc_shape, name="mfcc")
    embedding = keras.Input(shape=(embedding_dim,), name="embedding")
    inputs = [mfcc, embedding]
    x = mfcc
    if mfcc_mean is not None and mfcc_var is not None:
        x = layers.Normalization(axis=-1, mean=mfcc_mean, variance=mfcc_var, name="norm")(x)
    if architecture == "baseline":
        x = layers.LSTM(lstm_units, name="lstm")(x)
    elif architecture == "bilstm":
        x = layers.Bidirectional(layers.LSTM(lstm_units), name="bilstm")(x)
    else:
        raise ValueError(f"Unknown architecture {architecture!r}; choose baseline or bilstm.")
    x = layers.Dropout(LSTM_DROPOUT, name="lstm_dropout")(x)
    decay = keras.regularizers.L2(l2)
    e = _standardised(layers, embedding, embedding_mean, embedding_var, "embedding_norm")
    if audioset_dim:
        audioset = keras.Input(shape=(audioset_dim,), name="audioset")
        inputs.append(audioset)
        a = _standardised(layers, audioset, audioset_mean, audioset_var, "audioset_norm")
        e = layers.Concatenate(name="embeddings")([e, a])
    if fusion == "residual":
        if readout is None:
            raise ValueError("Residual fusion needs the fitted read-out (kernel, bias).")
        frozen = layers.Dense(n_classes, trainable=False, name="readout")
        logits = frozen(e)
        frozen.set_weights([np.asarray(readout[0]), np.asarray(readout[1])])
        # the LSTM's voice starts silent: the model begins as the read-out
        voice = layers.Dense(
            n_classes, kernel_initializer="zeros", kernel_regularizer=decay, name="lstm_voice"
        )(x)
        if mfcc_dropout:
            voice = layers.Dropout(mfcc_dropout, noise_shape=(1, 1), name="mfcc_branch_drop")(voice)
        outputs = layers.Activation("softmax", name="genre")(
            layers.Add(name="fuse")([logits, voice])
        )
    elif fusion == "late":
        e = layers.Dropout(embedding_dropout, name="embedding_dropout")(e)
        readout_logits = layers.Dense(n_classes, kernel_regularizer=decay, name="readout")(e)
        voice = layers.Dense(n_classes, kernel_regularizer=decay, name="lstm_voice")(x)
        if mfcc_dropout:
            # one mask for the whole batch: the read-out must answer alone in those batches
            voice = layers.Dropout(mfcc_dropout, noise_shape=(1, 1), name="mfcc_branch_drop")(voice)
        logits = layers.Add(name="fuse")([readout_logits, voice])
        outputs = layers.Activation("softmax", name="genre")(logits)
    elif fusion == "early":
        e = layers.Dropout(embedding_dropout, name="embedding_dropout")(e)
        if mfcc_dropout:
            x = layers.Dropout(mfcc_dropout, noise_shape=(1, 1), name="mfcc_branch_drop")(x)
        e = layers.Dense(
            EMBEDDING_UNITS, activation="relu", kernel_regularizer=decay, name="embedding_dense"
        )(e)
        x = layers.Concatenate(name="fuse")([x, e])
        x = layers.Dropout(HEAD_DROPOUT, name="fuse_dropout")(x)
        x = layers.Dense(64, activation="relu", kernel_regularizer=decay, name="dense")(x)
        outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    else:
        raise ValueError(f"Unknown fusion {fusion!r}; choose early, late or residual.")
    model = keras.Model(inputs, outputs, name=f"genreflow_musicnn_{architecture}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def floored_variance(var: np.ndarray) -> np.ndarray:
    """Floor a feature's variance at :data:`VARIANCE_FLOOR` of the mean variance."""
    var = np.asarray(var, dtype=np.float64)
    return np.maximum(var, VARIANCE_FLOOR * float(np.mean(var)))


def _standardised(
    layers: Any, tensor: Any, mean: np.ndarray | None, var: np.ndarray | None, name: str
) -> Any:
    """Standardise by training statistics inside the model, when they are given.

    A feature that hardly varied in training would be multiplied by up to 1e7 (one over
    Keras' epsilon): the variance is floored at :data:`VARIANCE_FLOOR` of the mean variance, so
    a rounding difference in the frozen network (staged serving, another runtime) is not
    blown up into another answer.
    """
    if mean is None or var is None:
        return tensor
    var = floored_variance(var)
    return layers.Normalization(axis=-1, mean=mean, variance=var, name=name)(tensor)


def compose_served_model(
    head: keras.Model,
    *,
    embedding: str = "penultimate",
    networks: tuple[str, ...] = ("MSD_musicnn",),
) -> keras.Model:
    """Put the frozen musicnn network(s) in front of a trained head: one model to serve.

    Parameters
    ----------
    head : keras.Model
        From :func:`build_fusion_head`, trained on the same embeddings.
    embedding : {"penultimate", "pool"}
        The musicnn output the head was trained on.
    networks : tuple of str
        Names of the musicnn weights (``shared/core/nets/musicnn_weights/<name>.npz``) whose
        embeddings, concatenated in this order, make the head's ``embedding`` input.

    Returns
    -------
    keras.Model
        Inputs ``mfcc`` ``(130, n_features)``, ``logmel`` ``(187, 96)`` and, when the head
        reads it, ``audioset`` (the AudioSet embedding, computed outside the graph); output the
        head's softmax. It keeps the head's name, from which the sidecar's architecture is taken.
    """
    from shared.core.nets.model import import_keras
    from shared.core.nets.musicnn import WEIGHTS_DIR, build_musicnn, load_weights

    keras = import_keras()
    logmel = keras.Input(shape=(187, 96), name="logmel")
    mfcc = keras.Input(shape=tuple(head.inputs[0].shape[1:]), name="mfcc")
    parts = [
        build_musicnn(
            load_weights(WEIGHTS_DIR / f"{network}.npz"),
            outputs=(embedding,),
            name=network.lower(),
        )(logmel)
        for network in networks
    ]
    embedded = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="musicnn")(parts)
    # an uncompiled copy, so the served file carries no optimiser state
    plain = keras.models.clone_model(head)
    plain.set_weights(head.get_weights())
    if len(head.inputs) == 3:
        audioset = keras.Input(shape=tuple(head.inputs[2].shape[1:]), name="audioset")
        return keras.Model(
            [mfcc, logmel, audioset], plain([mfcc, embedded, audioset]), name=head.name
        )
    return keras.Model([mfcc, logmel], plain([mfcc, embedded]), name=head.name)
