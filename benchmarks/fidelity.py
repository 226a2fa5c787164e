"""Fidelity of the fast serving paths to the exact one, on the team kit's real songs.

::

    python benchmarks/fidelity.py [MODEL] [--data ../shared/data/emotify ../shared/data/4q]
        [--per-genre N] [--out fidelity.json]

For every song (``<genre>/<file>`` folders) it decodes once, takes every segment's MFCCs and
log-mel patch, and scores

- the exact path: the whole ONNX graph on every segment, ONNX Runtime float32 (the reference);
- musicnn's embeddings of every segment by ONNX Runtime f32, OpenVINO f32 and OpenVINO bf16
  (:mod:`shared.core.serving.staged`); a stride-k variant keeps the patches ``predict_file``
  would take and gives each segment its nearest one, exactly as served.

Per variant it prints how many songs get the same top genre as the exact path, the largest
change of a song's probability (max over songs and genres of ``|Δp|`` of the song's mean
probabilities), the largest change of one segment's, and the accuracy against the folder
labels where the folder is one of the model's genres.

Read it for what it is: the shipped default model was trained on emotify, so these figures
measure how closely a fast path reproduces the exact answer (fidelity), not accuracy on unseen
songs; 4q's genres are not the model's, so there it is fidelity only. A song's accuracy can move
by no more than the share of songs whose top genre changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KIT_DATA = PROJECT_ROOT.parent / "shared" / "data"
STRIDES = (1, 2, 4, 6, 8)
#: the default's stride rule (shared.core.serving.staged.FAST), as predict_cost names it
DEFAULT_ROW = "k=4 (>= 10 patches)"


def list_songs(
    folders: list[Path], per_genre: int | None, *, join: int = 1
) -> list[tuple[list[Path], str]]:
    """Return ``(files, folder genre)`` per song under ``<genre>/`` subfolders.

    ``join`` > 1 makes each song of that many consecutive files of one genre, joined (three
    60-s Emotify excerpts make a 3-minute song, as ``benchmarks/load.py`` makes them).
    """
    songs = []
    for folder in folders:
        for genre_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(f for f in genre_dir.iterdir() if f.is_file())[:per_genre]
            songs += [
                (files[i : i + join], genre_dir.name) for i in range(0, len(files) - join + 1, join)
            ]
    return songs


def song_probabilities(probabilities: np.ndarray, genres: list[str]) -> tuple[int, np.ndarray]:
    """Return the voted genre's column and the mean probabilities of a song's segments."""
    from shared.core.serving.predict import vote_genre

    winner, _, mean = vote_genre(probabilities, genres)
    return winner, mean


def main() -> None:
    """Score every song every way and print (and optionally write) the fidelity table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help=".keras file or folder")
    parser.add_argument(
        "--data", nargs="+", type=Path, default=[KIT_DATA / "emotify", KIT_DATA / "4q"]
    )
    parser.add_argument("--per-genre", type=int, help="first N files of each genre folder")
    parser.add_argument("--join", type=int, default=1, help="files joined into one song")
    parser.add_argument("--out", type=Path, help="write the figures as JSON (for predict_cost)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from predict_cost import find_model
    from tqdm import tqdm

    from shared.core.audio.audio import decode_audio
    from shared.core.audio.features import segment_features
    from shared.core.serving.inference import load_served_model, use_one_math_thread
    from shared.core.serving.staged import (
        EXACT,
        FAST,
        ServingOptions,
        nearest_patches,
        patch_segments,
        song_stride,
    )
    from shared.errors import GenreflowError

    use_one_math_thread()
    folders = [f for f in args.data if f.is_dir()]
    if not folders:
        sys.exit(f"none of {', '.join(map(str, args.data))} is a folder")
    model_path = find_model(args.model)
    exact = load_served_model(model_path, serving=EXACT)
    embedders = {
        "ONNX Runtime f32": load_served_model(
            model_path, serving=ServingOptions(runtime="onnxruntime", musicnn_stride=1)
        ).staged,
        "OpenVINO f32": load_served_model(
            model_path, serving=ServingOptions(precision="f32", musicnn_stride=1)
        ).staged,
        "OpenVINO bf16": load_served_model(
            model_path, serving=ServingOptions(precision="bf16", musicnn_stride=1)
        ).staged,
    }
    head = embedders["ONNX Runtime f32"].head
    genres = exact.genres
    songs = list_songs(folders, args.per_genre, join=args.join)
    stats: dict[str, dict[str, Any]] = {}
    n_scored, n_labelled, exact_right = 0, 0, 0
    for paths, label in tqdm(songs, desc="songs", unit="song", file=sys.stderr):
        try:
            y = np.concatenate(
                [decode_audio(p, sr=exact.feature_config.sample_rate) for p in paths]
            )
            features = segment_features(y, config=exact.feature_config)
        except GenreflowError as exc:
            print(f"skipped {paths[0].name}: {exc}", file=sys.stderr)
            continue
        n = len(features["mfcc"])
        reference = exact.predict_segments(features)
        winner, mean = song_probabilities(reference, genres)
        n_scored += 1
        labelled = label in genres
        n_labelled += labelled
        exact_right += labelled and genres[winner] == label
        rows = {"exact: whole graph, ONNX Runtime f32, k=1": reference}
        for runtime, staged in embedders.items():
            embedding = staged.embed(features["logmel"])
            strides = {f"k={k}": k for k in STRIDES}
            strides[DEFAULT_ROW] = song_stride(n, FAST.musicnn_stride, FAST.musicnn_min_patches)
            for stride_name, k in strides.items():
                patches = patch_segments(n, k)
                if patches.size == 0:
                    patches = np.array([n - 1])
                nearest = patches[nearest_patches(n, patches)]
                chosen = {name: rows_[nearest] for name, rows_ in embedding.items()}
                rows[f"staged {runtime}, {stride_name}"] = head(features["mfcc"], chosen)
        for name, probabilities in rows.items():
            top, song_mean = song_probabilities(probabilities, genres)
            entry = stats.setdefault(
                name, {"same_top": 0, "max_abs_dp": 0.0, "max_segment_dp": 0.0, "right": 0}
            )
            entry["same_top"] += int(top == winner)
            entry["max_abs_dp"] = max(entry["max_abs_dp"], float(np.abs(song_mean - mean).max()))
            entry["max_segment_dp"] = max(
                entry["max_segment_dp"], float(np.abs(probabilities - reference).max())
            )
            entry["right"] += int(labelled and genres[top] == label)
    for entry in stats.values():
        entry["top_agreement"] = entry["same_top"] / n_scored
        entry["accuracy"] = entry["right"] / n_labelled if n_labelled else float("nan")
    print(
        f"model: {model_path.name}; {n_scored} songs"
        + (f" of {args.join} files joined" if args.join > 1 else "")
        + f" from {', '.join(f.name for f in folders)}, "
        f"{n_labelled} labelled with the model's genres (in-sample: the model trained on them)"
    )
    print(f"exact path accuracy on those: {exact_right / max(n_labelled, 1):.1%}\n")
    print("| variant | same top genre (songs) | max abs Δp (song) | max abs Δp (segment) | acc. |")
    print("|---|---|---|---|---|")
    for name, entry in stats.items():
        print(
            f"| {name} | {entry['top_agreement']:.1%} | {entry['max_abs_dp']:.3f} | "
            f"{entry['max_segment_dp']:.3f} | {entry['accuracy']:.1%} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps({"n_songs": n_scored, "n_labelled": n_labelled, "variants": stats}, indent=1)
        )


if __name__ == "__main__":
    main()
