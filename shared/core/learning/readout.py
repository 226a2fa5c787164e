"""The linear read-out of the pretrained embeddings, fitted as a logistic regression.

A *residual* head (``fusion="residual"``, :mod:`shared.core.nets.fusion_model`) starts from
this read-out, frozen, and trains only the LSTM's voice on top of it: the model begins where the
baseline it must beat ends, and the LSTM can only move it where the validation songs say it
helps.
"""

from __future__ import annotations

import numpy as np

#: Inverse regularisation of the read-out (``benchmarks/linear_probe.py``'s best on musicnn).
READOUT_C = 0.01
READOUT_MAX_ITER = 500


def fit_linear_readout(
    embeddings: list[np.ndarray],
    statistics: list[tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    *,
    balanced: bool,
    c: float = READOUT_C,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a multinomial logistic regression on standardised embeddings.

    Parameters
    ----------
    embeddings : list of np.ndarray, each (n_rows, width)
        The head's embedding inputs in order (musicnn's, then AudioSet's).
    statistics : list of (mean, variance)
        The standardisation the head applies to each (floored variances, as the head has them).
    labels : np.ndarray, shape (n_rows, n_classes)
        One-hot genres; every class must occur.
    balanced : bool
        Weight every genre equally.
    c : float > 0
        Inverse regularisation strength.

    Returns
    -------
    kernel : np.ndarray, shape (sum of widths, n_classes), float32
    bias : np.ndarray, shape (n_classes,), float32
        Logits of the read-out: standardised inputs @ kernel + bias.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate(
        [(e - m) / np.sqrt(v) for e, (m, v) in zip(embeddings, statistics, strict=True)], axis=1
    )
    y = labels.argmax(axis=1)
    if len(np.unique(y)) != labels.shape[1]:
        raise ValueError("Every genre needs training rows to fit the read-out.")
    model = LogisticRegression(
        C=c, max_iter=READOUT_MAX_ITER, class_weight="balanced" if balanced else None
    )
    model.fit(x.astype(np.float32), y)
    return model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32)


def readout_for(
    train_inputs: list[np.ndarray], labels: np.ndarray, *, balanced: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the read-out of a head's training rows ``[mfcc, embedding (, audioset)]``.

    The embeddings are standardised exactly as the head will standardise them (training mean,
    floored variance: :func:`shared.core.nets.fusion_model.floored_variance`).
    """
    from shared.core.nets.fusion_model import floored_variance

    embeddings = train_inputs[1:]
    statistics = [(e.mean(axis=0), floored_variance(e.var(axis=0))) for e in embeddings]
    return fit_linear_readout(embeddings, statistics, labels, balanced=balanced)
