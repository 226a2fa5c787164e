"""Every prediction says what it sounds like in AudioSet's words, from the ear's patch segments."""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.audio.audio import decode_audio
from shared.core.audio.audioset_input import audioset_segments
from shared.core.nets.audioset import AudioSetEar, music_genres, sounds_like
from shared.core.nets.genre_model import GenreModel
from shared.core.nets.model import load_genre_model
from shared.core.serving.predict import (
    AUDIOSET,
    SEGMENTS_PER_BLOCK,
    predict_audio,
    predict_file,
)
from shared.core.serving.staged import patch_segments


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_genre_model(tiny_model_path)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record what the model is asked to score (the real model still scores it)."""
    calls: list[dict] = []
    original = GenreModel.predict_segments

    def predict_segments(self, features, *, patches=None):
        calls.append({"features": dict(features), "patches": patches})
        return original(self, features, patches=patches)

    monkeypatch.setattr(GenreModel, "predict_segments", predict_segments)
    return calls


def test_a_prediction_names_three_audioset_music_genres(model, make_audio):
    assert not model.feature_config.musicnn  # the ear runs whatever the model reads
    result = predict_file(make_audio("metal", seconds=10.0), model).to_dict()
    sounds = result["sounds_like"]
    assert len(sounds) == 3
    assert {item["name"] for item in sounds} <= set(music_genres())
    scores = [item["score"] for item in sounds]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)


def test_the_ear_hears_every_kth_segment_and_hands_its_embedding_to_the_model(
    model, make_audio, seen
):
    seconds = 3.0 * 43 + 1.0  # 43 segments: past 4 x 10, so the song keeps stride 4
    path = make_audio("reggae", seconds=seconds, ext=".flac")
    prediction = predict_file(path, model)
    (call,) = seen
    expected_rows = patch_segments(43, 4)  # 2, 6, ..., 42
    np.testing.assert_array_equal(call["patches"], expected_rows)
    y = decode_audio(path)
    heard = AudioSetEar().outputs(
        audioset_segments(y, config=model.feature_config, segments=expected_rows)
    )
    assert call["features"][AUDIOSET].shape == (11, 384)
    np.testing.assert_allclose(call["features"][AUDIOSET], heard["embedding"], atol=1e-4)
    assert prediction.sounds_like == sounds_like(heard["logits"])
    assert prediction.n_segments == 43  # the timeline still has every segment


def test_a_short_song_gets_a_finer_stride_and_streaming_hears_what_the_whole_does(
    model, make_audio, seen
):
    seconds = 3.0 * (SEGMENTS_PER_BLOCK + 2) + 1.0  # 12 segments: every segment heard
    path = make_audio("disco", seconds=seconds, ext=".flac")
    streamed = predict_file(path, model)
    whole = predict_audio(decode_audio(path), model)
    assert [len(call["features"][AUDIOSET]) for call in seen] == [12, 12]
    assert [item["name"] for item in streamed.sounds_like] == [
        item["name"] for item in whole.sounds_like
    ]
    for a, b in zip(streamed.sounds_like, whole.sounds_like, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=2e-3)
