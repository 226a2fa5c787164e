"""Our Keras musicnn port against a reference written with raw TensorFlow ops.

The reference follows the original ``musicnn/models.py`` graph literally (4-D tensors, explicit
time padding, transposes, the interleaved max/mean flatten) on the checkpoint's own weights,
so it shares no layer code with the port.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.nets.musicnn import DEFAULT_WEIGHTS, N_FRAMES, N_MELS, build_musicnn, load_weights

EPS = 1e-3


def _reference(w: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    def bn(t, i):
        p = "batch_normalization" + (f"_{i}" if i else "")
        return tf.nn.batch_normalization(
            t, w[f"{p}/moving_mean"], w[f"{p}/moving_variance"], w[f"{p}/beta"],
            w[f"{p}/gamma"], EPS,
        )  # fmt: skip

    def conv(t, i, padding):
        p = "conv2d" + (f"_{i}" if i else "")
        return tf.nn.relu(tf.nn.conv2d(t, w[f"{p}/kernel"], 1, padding) + w[f"{p}/bias"])

    def pool_freq(t):
        return tf.squeeze(tf.reduce_max(t, axis=2, keepdims=True), [2])

    def pad_time(t):
        return tf.pad(t, [[0, 0], [3, 3], [0, 0], [0, 0]])

    inp = bn(tf.expand_dims(tf.constant(x), 3), 0)
    front = [pool_freq(bn(conv(pad_time(inp), i, "VALID"), i + 1)) for i in (0, 1)]
    front += [pool_freq(bn(conv(inp, i, "SAME"), i + 1)) for i in (2, 3, 4)]
    front_out = tf.expand_dims(tf.concat(front, 2), 3)
    bn1 = tf.transpose(bn(conv(pad_time(front_out), 5, "VALID"), 6), [0, 1, 3, 2])
    res2 = tf.transpose(bn(conv(pad_time(bn1), 6, "VALID"), 7), [0, 1, 3, 2]) + bn1
    res3 = tf.transpose(bn(conv(pad_time(res2), 7, "VALID"), 8), [0, 1, 3, 2]) + res2
    midend = tf.concat([front_out, bn1, res2, res3], 2)
    max_pool = tf.reduce_max(midend, axis=1)
    mean_pool = tf.reduce_mean(midend, axis=1)
    flat = tf.reshape(tf.concat([max_pool, mean_pool], 2), [x.shape[0], -1])
    dense = tf.nn.relu(tf.matmul(bn(flat, 9), w["dense/kernel"]) + w["dense/bias"])
    penultimate = bn(dense, 10)
    logits = tf.matmul(penultimate, w["dense_1/kernel"]) + w["dense_1/bias"]
    return {
        "midend": tf.squeeze(midend, [3]).numpy(),
        "max_pool": tf.squeeze(max_pool, [2]).numpy(),
        "mean_pool": tf.squeeze(mean_pool, [2]).numpy(),
        "penultimate": penultimate.numpy(),
        "taggram": tf.sigmoid(logits).numpy(),
    }


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return load_weights(DEFAULT_WEIGHTS)


def test_port_matches_reference_on_the_shipped_weights(weights):
    rng = np.random.default_rng(0)
    # log10(1 + 10000 mel) of real music lies roughly in 0..4
    x = rng.uniform(0.0, 4.0, size=(2, N_FRAMES, N_MELS)).astype(np.float32)
    model = build_musicnn(weights, outputs=("penultimate", "pool", "midend", "taggram"))
    penultimate, pool, midend, taggram = (np.asarray(a) for a in model(x, training=False))
    ref = _reference(weights, x)
    np.testing.assert_allclose(midend, ref["midend"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pool[:, :753], ref["max_pool"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pool[:, 753:], ref["mean_pool"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(penultimate, ref["penultimate"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(taggram, ref["taggram"], rtol=1e-4, atol=1e-5)


def test_port_is_frozen_and_rejects_unknown_outputs(weights):
    model = build_musicnn(weights)
    assert model.trainable_weights == []
    assert tuple(model.output.shape) == (None, 200)
    with pytest.raises(ValueError, match="Unknown musicnn outputs"):
        build_musicnn(weights, outputs=("logits",))
