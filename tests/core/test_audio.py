"""Real decoding through the wheel's ffmpeg: every format, every typed error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.core.audio.audio import SUPPORTED_EXTENSIONS, decode_audio
from shared.core.learning.demo_data import synth_track, write_audio
from shared.errors import AudioTooLong, AudioTooShort, EmptyAudio, InvalidAudio

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples"


@pytest.mark.parametrize("ext", [".wav", ".mp3", ".flac", ".ogg", ".m4a", ".au"])
def test_decodes_every_format_to_mono_22050(make_audio, ext):
    path = make_audio("disco", seconds=4.0, ext=ext, sr=44_100)
    y = decode_audio(path)
    assert y.dtype == np.float32
    assert y.ndim == 1
    # Lossy codecs pad a few ms; the duration must still be 4 s at 22,050 Hz.
    assert abs(len(y) / 22_050 - 4.0) < 0.06
    assert 0.1 < np.abs(y).max() <= 1.0


def test_resampling_keeps_the_pitch(tmp_path):
    sr_in = 48_000
    t = np.arange(sr_in * 4) / sr_in
    path = write_audio(tmp_path / "a440.flac", 0.5 * np.sin(2 * np.pi * 440 * t), sr=sr_in)
    y = decode_audio(path)
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * 22_050 / len(y)
    assert abs(peak_hz - 440) < 2


def test_stereo_is_mixed_down(tmp_path):
    import subprocess

    from shared.core.audio.audio import ffmpeg_executable

    path = tmp_path / "stereo.wav"
    subprocess.run(
        [ffmpeg_executable(), "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=300:duration=4", "-ac", "2", str(path)],
        check=True,
    )  # fmt: skip
    y = decode_audio(path)
    assert y.ndim == 1
    assert abs(len(y) - 4 * 22_050) < 100


def test_empty_file_is_empty_audio(tmp_path):
    path = tmp_path / "nothing.mp3"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudio, match="empty"):
        decode_audio(path)


def test_random_bytes_are_invalid_audio(tmp_path):
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(InvalidAudio, match="not a readable audio file") as info:
        decode_audio(path)
    assert info.value.status == 422
    assert info.value.code == "invalid_audio"


def test_text_file_is_invalid_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not a song\n" * 50)
    with pytest.raises(InvalidAudio):
        decode_audio(path)


def test_missing_file_is_invalid_audio(tmp_path):
    with pytest.raises(InvalidAudio, match="no such file"):
        decode_audio(tmp_path / "gone.mp3")


def test_shorter_than_one_segment_is_too_short(make_audio):
    with pytest.raises(AudioTooShort, match=r"lasts 2\.0 s"):
        decode_audio(make_audio("metal", seconds=2.0))


def test_longer_than_the_limit_is_too_long(make_audio):
    path = make_audio("classical", seconds=8.0)
    with pytest.raises(AudioTooLong) as info:
        decode_audio(path, max_duration_s=5.0)
    assert info.value.status == 413
    assert len(decode_audio(path, max_duration_s=8.5)) == 8 * 22_050


def test_supported_extensions_cover_the_product_formats():
    assert {".mp3", ".wav", ".flac", ".ogg", ".au", ".m4a"} <= SUPPORTED_EXTENSIONS


@pytest.mark.skipif(not SAMPLES_DIR.is_dir(), reason="team kit samples (../shared) not present")
def test_decodes_a_real_gtzan_au_clip():
    y = decode_audio(SAMPLES_DIR / "blues.00000.au")
    assert abs(len(y) / 22_050 - 30.0) < 0.1


def test_write_audio_refuses_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="Cannot write"):
        write_audio(tmp_path / "x.xyz", synth_track("disco", seconds=1))


def test_streamed_blocks_join_to_the_decoded_signal(make_audio):
    from shared.core.audio.audio import stream_audio

    path = make_audio("reggae", seconds=10.0, ext=".mp3")
    blocks = list(stream_audio(path, block_samples=66_150))
    assert [len(b) for b in blocks[:-1]] == [66_150] * (len(blocks) - 1)
    np.testing.assert_array_equal(np.concatenate(blocks), decode_audio(path))


def test_streaming_stops_an_over_long_file_early(make_audio):
    from shared.core.audio.audio import stream_audio

    path = make_audio("metal", seconds=12.0)
    received = []
    blocks = stream_audio(path, block_samples=22_050, max_duration_s=5.0)
    with pytest.raises(AudioTooLong):  # noqa: PT012 - the error must come mid-stream
        for block in blocks:
            received.append(block)
    assert 0 < sum(map(len, received)) <= 6 * 22_050


def test_errors_name_the_file_as_the_caller_asks(tmp_path):
    path = tmp_path / "3f9a0c.mp3"
    path.write_bytes(b"ID3" + bytes(4000))
    with pytest.raises(InvalidAudio, match=r"^My Song\.mp3 is not a readable audio file"):
        decode_audio(path, name="My Song.mp3")
