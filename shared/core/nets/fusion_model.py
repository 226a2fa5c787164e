"""Genre models that read a musicnn embedding beside the MFCC sequence.

Training uses a *head*: inputs ``mfcc`` ``(130, n_features)`` and ``embedding`` ``(D,)``, the
musicnn output cached per segment (:mod:`shared.embeddings`). The MFCCs still go through an
LSTM; the embedding through a dense layer; both meet before the classifier. The served model
wraps the head around the frozen musicnn network (:func:`compose_served_model`): inputs
``mfcc`` and ``logmel`` ``(187, 96)``, output one softmax row per segment, standard layers only.
TensorFlow is imported only inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

EMBEDDING_UNITS = 64
EMBEDDING_DROPOUT = 0.5
LSTM_DROPOUT = 0.5
HEAD_DROPOUT = 0.3
L2 = 1e-3  # weight decay of the dense layers: a few hundred songs overfit quickly


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

    Returns
    -------
    keras.Model
        Inputs ``mfcc`` and ``embedding``; compiled with Adam and categorical cross-entropy.
    """
    from shared.core.nets.model import import_keras

    keras = import_keras()
    layers = keras.layers
    mfcc = keras.Input(shape=mfcc_shape, name="mfcc")
    embedding = keras.Input(shape=(embedding_dim,), name="embedding")
    x = mfcc
    if mfcc_mean is not None and mfcc_var is not None:
        x = layers.Normalization(axis=-1, mean=mfcc_mean, variance=mfcc_var, name="norm")(x)
    if architecture == "baseline":
        x = layers.LSTM(64, name="lstm")(x)
    elif architecture == "bilstm":
        x = layers.Bidirectional(layers.LSTM(64), name="bilstm")(x)
    else:
        raise ValueError(f"Unknown architecture {architecture!r}; choose baseline or bilstm.")
    x = layers.Dropout(LSTM_DROPOUT, name="lstm_dropout")(x)
    decay = keras.regularizers.L2(l2)
    e = embedding
    if embedding_mean is not None and embedding_var is not None:
        e = layers.Normalization(
            axis=-1, mean=embedding_mean, variance=embedding_var, name="embedding_norm"
        )(e)
    e = layers.Dropout(embedding_dropout, name="embedding_dropout")(e)
    e = layers.Dense(
        EMBEDDING_UNITS, activation="relu", kernel_regularizer=decay, name="embedding_dense"
    )(e)
    x = layers.Concatenate(name="fuse")([x, e])
    x = layers.Dropout(HEAD_DROPOUT, name="fuse_dropout")(x)
    x = layers.Dense(64, activation="relu", kernel_regularizer=decay, name="dense")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    model = keras.Model([mfcc, embedding], outputs, name=f"genreflow_musicnn_{architecture}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


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
        Inputs ``mfcc`` ``(130, n_features)`` and ``logmel`` ``(187, 96)``; output the head's
        softmax. It keeps the head's name, from which the sidecar's architecture is taken.
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
    outputs = plain([mfcc, embedded])
    return keras.Model([mfcc, logmel], outputs, name=head.name)
