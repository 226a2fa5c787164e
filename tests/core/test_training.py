"""End to end on synthetic genres: split by track, train, evaluate, save, reload, vote."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from shared.core.audio.features import FeatureConfig
from shared.core.learning.dataset import (
    Track,
    dataset_fingerprint,
    find_tracks,
    split_from_lists,
    split_tracks,
)
from shared.core.nets.model import build_model, load_genre_model
from shared.core.nets.recipe import RECIPES
from shared.core.nets.sidecar import read_sidecar
from shared.core.serving.predict import predict_file
from shared.errors import DatasetError, FeatureMismatch, ModelError
from tests.conftest import TINY_GENRES

pytestmark = pytest.mark.slow


def test_split_is_by_track_stratified_and_reproducible(tiny_dataset):
    tracks = find_tracks(tiny_dataset)
    parts = split_tracks(tracks, valid_fraction=0.2, test_fraction=0.2, seed=3)
    again = split_tracks(tracks, valid_fraction=0.2, test_fraction=0.2, seed=3)
    assert parts == again
    names = [set(t.relpath for t in parts[p]) for p in ("train", "valid", "test")]
    assert not names[0] & names[1]
    assert not names[0] & names[2]
    assert not names[1] & names[2]
    assert sum(map(len, names)) == len(tracks)
    for part in parts.values():
        assert {t.genre for t in part} == set(TINY_GENRES)


def test_split_needs_three_tracks_per_genre(tmp_path):
    tracks = [Track(path=tmp_path / f"x{i}.wav", genre="jazz") for i in range(2)]
    with pytest.raises(DatasetError, match="at least 3"):
        split_tracks(tracks, valid_fraction=0.2, test_fraction=0.2, seed=0)


def test_split_from_lists_uses_ids_without_extension(tiny_dataset, tmp_path):
    tracks = find_tracks(tiny_dataset)
    ids = [t.track_id for t in tracks]
    (tmp_path / "artist_filtered_train.txt").write_text("\n".join(ids[:9]))
    (tmp_path / "artist_filtered_valid.txt").write_text("\n".join(ids[9:12]))
    (tmp_path / "artist_filtered_test.txt").write_text("\n".join([*ids[12:], "blues/blues.00099"]))
    parts = split_from_lists(tracks, tmp_path)
    assert [len(parts[p]) for p in ("train", "valid", "test")] == [9, 3, 3]


def test_bad_folders_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        find_tracks(tmp_path / "missing")
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / "readme.txt").write_text("no audio")
    with pytest.raises(DatasetError, match="GTZAN layout"):
        find_tracks(tmp_path)


def test_fingerprint_changes_when_a_track_changes(tiny_dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    before = dataset_fingerprint(copy)
    assert dataset_fingerprint(copy) == before
    (copy / "disco" / "disco.00000.wav").unlink()
    assert dataset_fingerprint(copy) != before


def test_baseline_architecture_is_the_articles():
    model = build_model((130, 13), 10)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "LSTM", "Dense", "Dense"]
    assert model.get_layer("lstm").units == 64
    assert model.get_layer("dense").units == 64
    assert model.output_shape == (None, 10)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_bilstm_variant_builds():
    model = build_model((130, 39), 10, architecture="bilstm")
    assert model.output_shape == (None, 10)


def test_training_writes_model_sidecar_and_evaluation(tiny_training):
    report = tiny_training
    assert report.model_path.is_file()
    assert report.model_path.suffix == ".keras"
    assert report.confusion_png.read_bytes().startswith(b"\x89PNG")
    sidecar = read_sidecar(report.model_path)
    assert sidecar["version"] == report.version
    assert sidecar["genres"] == sorted(TINY_GENRES)
    assert sidecar["feature_config"] == FeatureConfig().to_dict()
    assert sidecar["training_data"]["n_tracks"] == {"train": 9, "valid": 3, "test": 3}
    assert set(sidecar["test_tracks"]) == set(report.test_tracks)
    metrics = sidecar["metrics"]
    for key in ("segment_accuracy", "track_accuracy_vote", "track_accuracy_mean"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_genre"]) == set(TINY_GENRES)
    assert np.asarray(metrics["confusion_matrix"]).sum() == 3
    # the recipe that made it, for a service run to make the same kind again
    assert sidecar["recipe"] == replace(RECIPES["seed"], epochs=25, patience=25).to_dict()


@pytest.mark.parametrize("name", list(RECIPES))
def test_a_recipe_gives_the_options_and_features_that_give_it_back(name):
    from shared.core.learning.training import TrainOptions, recipe_features, recipe_of

    recipe = RECIPES[name]
    options = TrainOptions.from_recipe(recipe, epochs=3, cache_dir="/tmp/cache")
    config = recipe_features(recipe)
    assert (options.epochs, options.cache_dir) == (3, "/tmp/cache")
    assert config.musicnn is recipe.musicnn
    assert config.deltas is recipe.deltas
    assert recipe_of(options, config) == replace(recipe, epochs=3)


def test_trained_model_answers_held_out_synthetic_tracks_with_its_genres(
    tiny_model_path, make_audio
):
    # How many it names right is benchmarks/demo_accuracy.py's figure; here, that it answers.
    model = load_genre_model(tiny_model_path)
    for genre in TINY_GENRES:
        path = make_audio(genre, seconds=12.0, seed=101, ext=".mp3")
        answer = predict_file(path, model)
        assert answer.genre in TINY_GENRES
        assert len(answer.segments) == 4  # 12 s: four 3-s segments, each voted
        assert sum(answer.votes.values()) == 4
        assert sum(answer.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_retraining_reuses_the_feature_cache(tiny_dataset, tiny_training, tmp_path):
    cache_dir = tiny_training.model_path.parent / "cache"
    cached = sorted(p.name for p in cache_dir.rglob("*.npy"))
    assert len(cached) == len(find_tracks(tiny_dataset))
    mtimes = {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*.npy")}
    from shared.core.learning.dataset import FeatureCache, load_features

    features, skipped = load_features(
        find_tracks(tiny_dataset), FeatureCache(cache_dir, FeatureConfig()), progress_bar=False
    )
    assert not skipped
    assert len(features) == len(cached)
    assert {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*.npy")} == mtimes


def test_loading_checks_the_feature_config(tiny_model_path, tmp_path):
    with pytest.raises(FeatureMismatch, match="trained on features"):
        load_genre_model(tiny_model_path, expected_features=FeatureConfig(n_mfcc=20))
    broken = tmp_path / tiny_model_path.name
    broken.write_bytes(tiny_model_path.read_bytes())
    sidecar = json.loads(tiny_model_path.with_suffix(".json").read_text())
    sidecar["feature_config"]["n_mfcc"] = 20
    broken.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(FeatureMismatch, match="takes inputs"):
        load_genre_model(broken)


def test_missing_model_or_sidecar_is_a_model_error(tiny_model_path, tmp_path):
    with pytest.raises(ModelError, match="No model file"):
        load_genre_model(tmp_path / "absent.keras")
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(tiny_model_path.read_bytes())
    with pytest.raises(ModelError, match="sidecar"):
        load_genre_model(lonely)


def test_evaluate_on_tracks_matches_training_report(tiny_training, tiny_dataset):
    from shared.core.learning.held_out import evaluate_on_tracks

    model = load_genre_model(tiny_training.model_path)
    metrics = evaluate_on_tracks(model, tiny_dataset, tiny_training.test_tracks)
    assert metrics["n_test_tracks"] == 3
    assert metrics["track_accuracy_vote"] == tiny_training.metrics["track_accuracy_vote"]


def test_augmentation_adds_shifted_segments_of_training_tracks_only(tiny_dataset, tmp_path):
    from shared.core.learning.training import TrainOptions, train_from_folder

    common = {"epochs": 1, "valid_fraction": 0.2, "test_fraction": 0.2, "progress_bar": False}
    cache = str(tmp_path / "cache")
    plain = train_from_folder(tiny_dataset, tmp_path / "plain", options=TrainOptions(**common))
    augmented = train_from_folder(
        tiny_dataset,
        tmp_path / "aug",
        options=TrainOptions(augment=True, cache_dir=cache, **common),
    )
    n_plain = read_sidecar(plain.model_path)["training_data"]["n_segments_train"]
    n_aug = read_sidecar(augmented.model_path)["training_data"]["n_segments_train"]
    # 9 training tracks of 9 s: 3 segments each, plus 2 shifted ones (1.5 s .. 7.5 s).
    assert (n_plain, n_aug) == (27, 27 + 18)
    recipe = read_sidecar(augmented.model_path)["recipe"]
    assert (recipe["name"], recipe["augment"]) == ("custom", True)
    assert augmented.metrics["n_test_tracks"] == plain.metrics["n_test_tracks"] == 3
    assert len(list((tmp_path / "cache").rglob("*+33075.npy"))) == 9
