"""The levers that take the source shortcut away (issue 20), each through its own code path.

Per-song CMVN, channel augmentation, whole-batch MFCC-branch dropout, the AudioSet embedding
beside musicnn's and late fusion: trained on generated songs, saved, and served in stages and
whole, which must agree.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.core.audio.features import FeatureConfig, normalise_cepstra

SR = 22_050


def test_cmvn_takes_a_constant_channel_offset_away():
    rng = np.random.default_rng(0)
    mfcc = rng.standard_normal((4, 130, 13)).astype(np.float32) * 5 + 3
    coloured = mfcc + rng.standard_normal(13).astype(np.float32) * 20  # a channel's tilt
    normalised = normalise_cepstra(mfcc)
    np.testing.assert_allclose(normalised.mean(axis=(0, 1)), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(axis=(0, 1)), 1.0, atol=1e-3)
    np.testing.assert_allclose(normalise_cepstra(coloured), normalised, atol=1e-4)
    assert np.abs(coloured - mfcc).mean() > 1.0  # the raw MFCCs did differ


def test_cmvn_of_a_silent_song_stays_finite():
    assert np.isfinite(normalise_cepstra(np.zeros((1, 130, 13), np.float32))).all()


def test_channel_copy_recolours_a_song_deterministically(make_audio):
    from shared.core.audio.audio import decode_audio
    from shared.core.learning.augment import channel_copy, tilt_eq

    y = decode_audio(make_audio("metal", seconds=6.0), sr=SR)
    first = channel_copy(y, sr=SR, seed=3)
    assert first.shape == y.shape
    np.testing.assert_array_equal(first, channel_copy(y, sr=SR, seed=3))
    assert not np.allclose(first, channel_copy(y, sr=SR, seed=4))
    assert np.abs(first - y).mean() > 1e-3  # EQ, gain and codec changed the samples
    # a positive tilt raises the top of the spectrum against the bottom
    bright = tilt_eq(y, sr=SR, tilt_db=9.0)
    top = slice(len(np.fft.rfft(y)) // 2, None)
    assert np.abs(np.fft.rfft(bright))[top].sum() > np.abs(np.fft.rfft(y))[top].sum()


def test_channel_augmented_mfccs_are_cached_per_copy(make_audio, tmp_path):
    from shared.core.learning.augment import ChannelAugmentedCache

    path = make_audio("reggae", seconds=6.0)
    cache = ChannelAugmentedCache(tmp_path, FeatureConfig())
    first = cache.features(path)
    assert first.shape == (2, 130, 13)
    assert len(list(tmp_path.rglob("*~channel1+0.npy"))) == 1
    np.testing.assert_array_equal(cache.features(path), first)
    from shared.core.learning.dataset import FeatureCache

    original = FeatureCache(None, FeatureConfig()).features(path)
    assert np.abs(first - original).mean() > 0.1  # the copy's cepstrum is coloured otherwise


def test_mfcc_branch_dropout_drops_whole_batches():
    from shared.core.nets.fusion_model import build_fusion_head

    head = build_fusion_head(
        (130, 13), 8, 3, fusion="late", audioset_dim=4, lstm_units=4, mfcc_dropout=0.5
    )
    drop = head.get_layer("mfcc_branch_drop")
    ones = np.ones((16, 3), np.float32)
    outcomes = set()
    for _ in range(30):
        out = np.asarray(drop(ones, training=True))
        assert np.all(out == out[0, 0])  # one decision for every row and column
        outcomes.add(float(out[0, 0]))
    assert outcomes == {0.0, 2.0}  # dropped, or kept (scaled by 1 / (1 - 0.5))
    np.testing.assert_array_equal(np.asarray(drop(ones, training=False)), ones)


def test_late_fusion_adds_the_read_out_and_the_lstm_voice():
    from shared.core.nets.fusion_model import build_fusion_head

    head = build_fusion_head((130, 13), 8, 3, fusion="late", audioset_dim=4, lstm_units=4)
    assert [i.name for i in head.inputs] == ["mfcc", "embedding", "audioset"]
    assert head.get_layer("readout").units == 3
    assert head.get_layer("lstm_voice").units == 3
    assert head.get_layer("lstm").units == 4
    with pytest.raises(ValueError, match="fusion"):
        build_fusion_head((130, 13), 8, 3, fusion="middle")


def test_residual_head_starts_as_the_fitted_read_out():
    from shared.core.learning.readout import readout_for
    from shared.core.nets.fusion_model import build_fusion_head, floored_variance

    rng = np.random.default_rng(5)
    labels = np.eye(3, dtype=np.float32)[np.arange(60) % 3]
    embedding = rng.standard_normal((60, 8)).astype(np.float32) + labels @ rng.normal(size=(3, 8))
    audioset = rng.standard_normal((60, 4)).astype(np.float32)
    mfcc = rng.standard_normal((60, 130, 13)).astype(np.float32)
    kernel, bias = readout_for([mfcc, embedding, audioset], labels, balanced=True)
    head = build_fusion_head(
        (130, 13), 8, 3, fusion="residual", audioset_dim=4, lstm_units=4, mfcc_dropout=0.5,
        embedding_mean=embedding.mean(axis=0), embedding_var=embedding.var(axis=0),
        audioset_mean=audioset.mean(axis=0), audioset_var=audioset.var(axis=0),
        readout=(kernel, bias),
    )  # fmt: skip
    standardised = np.concatenate(
        [
            (e - e.mean(axis=0)) / np.sqrt(floored_variance(e.var(axis=0)))
            for e in (embedding, audioset)
        ],
        axis=1,
    )
    logits = standardised @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        head.predict([mfcc, embedding, audioset], verbose=0), expected, atol=1e-4
    )
    assert (expected.argmax(axis=1) == labels.argmax(axis=1)).mean() > 0.8  # a real read-out
    # training moves the LSTM's voice only: the read-out stays as fitted. The MFCC branch's
    # dropout drops whole batches (half of them): 12 batches, seeded, so some reach the voice.
    import keras

    keras.utils.set_random_seed(5)
    head.fit([mfcc, embedding, audioset], labels, epochs=1, batch_size=5, verbose=0)
    np.testing.assert_array_equal(head.get_layer("readout").get_weights()[0], kernel)
    assert np.abs(head.get_layer("lstm_voice").get_weights()[0]).sum() > 0


@pytest.fixture(scope="module")
def generalist_training(tiny_dataset, tmp_path_factory):
    from shared.core.learning.training import TrainOptions, recipe_features, train_from_folder
    from shared.core.nets.recipe import RECIPES

    recipe = RECIPES["late+cmvn+lstm32+drop+channel"]
    out = tmp_path_factory.mktemp("generalist-model")
    report = train_from_folder(
        tiny_dataset,
        out,
        options=TrainOptions.from_recipe(
            recipe,
            epochs=2,
            valid_fraction=0.2,
            test_fraction=0.2,
            cache_dir=str(out / "cache"),
            progress_bar=False,
        ),
        feature_config=recipe_features(recipe),
        recipe=recipe,
    )
    return report, recipe


@pytest.mark.slow(seconds=25)
def test_generalist_recipe_trains_and_records_every_lever(generalist_training):
    report, _ = generalist_training
    sidecar = json.loads(report.model_path.with_suffix(".json").read_text())
    config = sidecar["feature_config"]
    assert (config["musicnn"], config["cmvn"], config["audioset"]) == (True, True, True)
    written = sidecar["recipe"]
    assert written["name"] == "late+cmvn+lstm32+drop+channel"
    assert (written["fusion"], written["lstm_units"], written["mfcc_dropout"]) == ("late", 32, 0.5)
    assert written["channel_augment"] is True
    # the channel copies joined the training rows: more rows than the training songs' segments
    n_train = sidecar["training_data"]["n_tracks"]["train"]
    assert sidecar["training_data"]["n_segments_train"] > 3 * n_train


@pytest.mark.slow
def test_generalist_model_serves_in_stages_as_it_does_whole(generalist_training, make_audio):
    from shared.core.audio.audio import decode_audio
    from shared.core.audio.audioset_input import audioset_segments
    from shared.core.audio.features import segment_features
    from shared.core.nets.audioset import get_ear
    from shared.core.serving.inference import load_served_model
    from shared.core.serving.staged import EXACT, ServingOptions

    report, _ = generalist_training
    staged = load_served_model(report.model_path, serving=ServingOptions(runtime="onnxruntime"))
    whole = load_served_model(report.model_path, serving=EXACT)
    assert staged.runtime == "staged"
    assert whole.runtime == "onnx"
    config = staged.feature_config
    y = decode_audio(make_audio("metal", seconds=12.0), sr=SR)
    features = segment_features(y, config=config)
    features["audioset"] = get_ear().outputs(audioset_segments(y, config=config))["embedding"]
    assert features["audioset"].shape == (4, 384)
    np.testing.assert_allclose(
        staged.predict_segments(features), whole.predict_segments(features), atol=1e-4
    )
    # the AudioSet rows are read: other rows give other scores
    changed = dict(features, audioset=features["audioset"][::-1].copy())
    assert not np.allclose(whole.predict_segments(changed), whole.predict_segments(features))
    # every 2nd segment's embeddings, each segment taking its nearest patch's
    patches = np.array([0, 2])
    sparse = {
        "mfcc": features["mfcc"],
        "logmel": features["logmel"][patches],
        "audioset": features["audioset"][patches],
    }
    np.testing.assert_allclose(
        staged.predict_segments(sparse, patches=patches),
        whole.predict_segments(sparse, patches=patches),
        atol=1e-4,
    )
