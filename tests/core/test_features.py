"""Segmentation and batched MFCCs: shapes, values, config round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.audio.features import FeatureConfig, mfcc_segments, segment_audio
from shared.errors import AudioTooShort, FeatureMismatch

SR = 22_050


def test_defaults_match_the_article():
    config = FeatureConfig()
    assert config.samples_per_segment == 66_150
    assert config.n_frames == 130
    assert config.n_features == 13
    assert FeatureConfig(deltas=True).n_features == 39


def test_thirty_seconds_give_ten_segments_of_130_by_13():
    y = np.random.default_rng(0).standard_normal(30 * SR).astype(np.float32)
    features = mfcc_segments(y)
    assert features.shape == (10, 130, 13)
    assert features.dtype == np.float32


def test_short_clip_and_long_song_use_every_full_segment():
    rng = np.random.default_rng(1)
    assert mfcc_segments(rng.standard_normal(7 * SR)).shape[0] == 2
    assert mfcc_segments(rng.standard_normal(3 * 60 * SR + 100)).shape[0] == 60


def test_less_than_one_segment_is_too_short():
    with pytest.raises(AudioTooShort):
        segment_audio(np.zeros(SR * 2, dtype=np.float32))


def test_segments_are_consecutive_slices():
    y = np.arange(2 * 66_150 + 10, dtype=np.float32)
    segments = segment_audio(y)
    assert segments.shape == (2, 66_150)
    assert segments[1, 0] == 66_150


def test_batched_mfcc_equals_librosa_on_each_segment():
    import librosa

    y = np.random.default_rng(2).standard_normal(9 * SR).astype(np.float32)
    batched = mfcc_segments(y)
    for i, segment in enumerate(segment_audio(y)):
        single = librosa.feature.mfcc(y=segment, sr=SR, n_mfcc=13, n_fft=2048, hop_length=512)
        np.testing.assert_allclose(batched[i], single.T, rtol=1e-4, atol=1e-3)


def test_mfccs_tell_a_low_tone_from_a_high_tone():
    t = np.arange(3 * SR) / SR
    low = mfcc_segments(np.sin(2 * np.pi * 110 * t).astype(np.float32))
    high = mfcc_segments(np.sin(2 * np.pi * 3_520 * t).astype(np.float32))
    assert np.abs(low.mean(axis=1) - high.mean(axis=1)).max() > 10


def test_deltas_add_two_blocks():
    y = np.random.default_rng(3).standard_normal(3 * SR).astype(np.float32)
    assert mfcc_segments(y, config=FeatureConfig(deltas=True)).shape == (1, 130, 39)


def test_config_round_trip_and_digest():
    config = FeatureConfig(n_mfcc=20)
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert config.digest() != FeatureConfig().digest()
    with pytest.raises(FeatureMismatch, match="Unknown feature settings"):
        FeatureConfig.from_dict({**config.to_dict(), "window": "hann"})
