"""The core commands of ``genreflow``: train, evaluate and demo data, without a server.

Every command fails with a non-zero exit and one clear line on bad input. They are registered on
the group in :mod:`shared.cli.main`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from shared.core.nets import hparams
from shared.core.nets.recipe import RECIPES
from shared.errors import GenreflowError


def _settings() -> Any:
    from shared.store.config import Settings

    return Settings.from_env()


def _fail(exc: GenreflowError) -> click.ClickException:
    return click.ClickException(exc.detail)


def find_model_path(explicit: str | None) -> Path:
    """Pick the model a CLI command uses: ``--model`` when given, else the registry's active one.

    The registry is the service's (:func:`shared.store.registry.active_model_file`): it is
    brought up to date with ``$GENREFLOW_MODEL_DIR`` first, so a model just trained by
    ``genreflow train`` is found exactly as the service finds it.
    """
    if explicit:
        return Path(explicit)
    from shared.store.registry import active_model_file

    settings = _settings()
    try:
        path = active_model_file(settings)
    except GenreflowError as exc:
        raise _fail(exc) from exc
    if path is None:
        raise click.ClickException(
            f"No model in {settings.model_dir}. Train one with `genreflow train DATA_DIR` "
            "(GTZAN layout), or try `genreflow demo-data demo && genreflow train demo`, "
            "or pass --model PATH."
        )
    return path


def _stderr_progress() -> Any:
    """Return a ``progress(stage, fraction)`` that prints a line to stderr per 5 % or stage."""
    last: dict[str, Any] = {"stage": None, "step": -1}

    def report(stage: str, fraction: float) -> None:
        step = int(fraction * 20)
        if stage != last["stage"] or step > last["step"]:
            last.update(stage=stage, step=step)
            click.echo(f"{stage} {fraction:.0%}", err=True)

    return report


@click.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the model goes (default: $GENREFLOW_MODEL_DIR, ./var/models).",
)
@click.option("--epochs", default=hparams.EPOCHS, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=hparams.BATCH_SIZE, show_default=True, type=click.IntRange(1))
@click.option("--learning-rate", default=hparams.LEARNING_RATE, show_default=True, type=float)
@click.option(
    "--architecture",
    type=click.Choice(hparams.ARCHITECTURES),
    default=hparams.ARCHITECTURE,
    show_default=True,
    help="baseline: LSTM(64)→Dense(64)→softmax; bilstm: two bidirectional LSTM(64) + dropout.",
)
@click.option("--patience", default=hparams.PATIENCE, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=hparams.SEED, show_default=True, type=int)
@click.option(
    "--split-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Folder with *train*/*valid*/*test*.txt track lists "
    "(e.g. the artist-filtered GTZAN split).",
)
@click.option("--n-mfcc", default=13, show_default=True, type=click.IntRange(1))
@click.option("--deltas/--no-deltas", default=False, show_default=True, help="Add Δ and ΔΔ MFCCs.")
@click.option("--no-normalize", is_flag=True, help="Do not standardise MFCCs inside the model.")
@click.option(
    "--augment",
    is_flag=True,
    help="Add training segments shifted by half a segment (training tracks only).",
)
@click.option(
    "--musicnn",
    is_flag=True,
    help="Feed the pretrained musicnn network's embedding of each segment beside the MFCCs "
    "(the shipped model's recipe).",
)
@click.option(
    "--recipe",
    "recipe_name",
    type=click.Choice(list(RECIPES)),
    help="Start from a named recipe (the benchmark's variants; a service run uses the active "
    "model's); the options given beside it change it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def train(
    data_dir: Path,
    out_dir: Path | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    architecture: str,
    patience: int,
    seed: int,
    split_dir: str | None,
    n_mfcc: int,
    deltas: bool,
    no_normalize: bool,
    augment: bool,
    musicnn: bool,
    recipe_name: str | None,
    as_json: bool,
) -> None:
    """Train a model on DATA_DIR (<genre>/<audio file>) and evaluate it on held-out tracks.

    Progress goes to stderr (bars, or one line per step with --json); the report, with the
    feature and training times, to stdout.
    """
    from shared.core.learning.training import TrainOptions, recipe_features, train_from_folder

    settings = _settings()
    context = click.get_current_context()
    given = {
        name
        for name in context.params
        if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }
    recipe = RECIPES[recipe_name] if recipe_name else RECIPES["seed"]
    chosen = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "architecture": architecture,
        "patience": patience,
        "n_mfcc": n_mfcc,
        "deltas": deltas,
        "normalize": not no_normalize,
        "augment": augment,
    }
    changes = {
        field: value
        for field, value in chosen.items()
        if not recipe_name or field in given or (field == "normalize" and "no_normalize" in given)
    }
    if musicnn and not recipe.musicnn:
        changes["embedding"] = TrainOptions.embedding
    if changes:
        try:
            recipe = replace(recipe, **changes).named()
        except GenreflowError as exc:
            raise _fail(exc) from exc
    options = TrainOptions.from_recipe(
        recipe,
        seed=seed,
        split_dir=split_dir,
        cache_dir=str(settings.cache_dir),
        progress_bar=not as_json,
    )
    try:
        report = train_from_folder(
            data_dir,
            out_dir or settings.model_dir,
            options=options,
            feature_config=recipe_features(recipe),
            progress=_stderr_progress() if as_json else None,
            recipe=recipe,
        )
    except GenreflowError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(
            json.dumps(
                {
                    "version": report.version,
                    "model_path": str(report.model_path),
                    "confusion_png": str(report.confusion_png),
                    "metrics": report.metrics,
                    "skipped": report.skipped,
                    "epochs_run": report.epochs_run,
                    "timings": report.timings,
                },
                indent=2,
            )
        )
        return
    for relpath, reason in report.skipped.items():
        click.echo(f"skipped {relpath}: {reason}", err=True)
    click.echo(f"\nmodel {report.version} ({report.epochs_run} epochs) → {report.model_path}")
    click.echo(
        f"features {report.timings['features_s']:.0f} s (decoding + features; cached ones are "
        f"read), training {report.timings['training_s']:.0f} s"
    )
    click.echo(format_metrics(report.metrics))
    click.echo(f"confusion matrix → {report.confusion_png}")


@click.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "model_path", help="A .keras model (default: the registry's active one).")
@click.option(
    "--split-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Evaluate only the tracks of its *test*.txt list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(data_dir: Path, model_path: str | None, split_dir: str | None, as_json: bool) -> None:
    """Evaluate a model on every track of DATA_DIR (or the test list of --split-dir)."""
    from shared.core.learning.held_out import evaluate_folder
    from shared.core.serving.inference import load_served_model

    try:
        model = load_served_model(
            find_model_path(model_path), serving=_settings().serving_options()
        )
        metrics = evaluate_folder(
            model,
            data_dir,
            split_dir=split_dir,
            cache_dir=_settings().cache_dir,
            progress_bar=not as_json,
        )
    except GenreflowError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics))


@click.command("demo-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tracks-per-genre", default=10, show_default=True, type=click.IntRange(3))
@click.option("--seconds", default=30.0, show_default=True, type=click.FloatRange(3.0))
@click.option(
    "--format",
    "ext",
    type=click.Choice(["wav", "mp3", "flac", "ogg", "au", "m4a"]),
    default="wav",
    show_default=True,
)
def demo_data(directory: Path, tracks_per_genre: int, seconds: float, ext: str) -> None:
    """Write a small synthetic GTZAN-layout folder to DIRECTORY (not music: generated sounds)."""
    from shared.core.learning.demo_data import DEMO_GENRES, write_demo_dataset

    written = write_demo_dataset(
        directory, tracks_per_genre=tracks_per_genre, seconds=seconds, ext=f".{ext}"
    )
    click.echo(
        f"wrote {len(written)} synthetic tracks ({', '.join(DEMO_GENRES)}) to {directory}\n"
        f"next: genreflow train {directory}"
    )


def format_metrics(metrics: dict[str, Any]) -> str:
    """Render evaluation metrics as a small human table."""
    lines = [
        f"test tracks: {metrics['n_test_tracks']} ({metrics['n_test_segments']} segments)",
        f"track accuracy (vote):      {metrics['track_accuracy_vote']:.1%}",
        f"track accuracy (mean prob): {metrics['track_accuracy_mean']:.1%}",
        f"segment accuracy:           {metrics['segment_accuracy']:.1%}",
        "",
        f"{'genre':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'tracks':>8}",
    ]
    for genre, row in metrics["per_genre"].items():
        lines.append(
            f"{genre:<12}{row['precision']:>10.2f}{row['recall']:>10.2f}"
            f"{row['f1']:>10.2f}{row['support']:>8d}"
        )
    return "\n".join(lines)


#: How the table explains an uncertain answer (see shared.core.serving.predict).
UNCERTAIN_WORDS = {
    "low_confidence": "",
    "unfamiliar_sound": " (it sounds unlike the music this model knows)",
}


#: The width of a probability's bar in the table.
BAR_WIDTH = 30
#: The table's column of AudioSet's music genres (see shared.core.nets.audioset.sounds_like).
SOUNDS_LIKE_HEADER = "sounds like (AudioSet)"


def format_prediction(path: Path, result: dict[str, Any], *, with_segments: bool) -> str:
    """Render one prediction as a human table, most probable genre first."""
    answer = f"{result['genre']} ({result['confidence']:.0%})"
    if result.get("uncertain"):
        why = UNCERTAIN_WORDS.get(result.get("uncertain_reason") or "", "")
        answer = f"not sure{why} — closest: {answer}"
    lines = [f"{path}: {answer}, {result['n_segments']} segments, {result['duration_s']:.1f} s"]
    ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
    rows = [
        f"  {genre:<10}{probability:>7.1%} {result['votes'][genre]:>4} votes  "
        f"{'█' * round(probability * BAR_WIDTH):<{BAR_WIDTH}}"
        for genre, probability in ranked
    ]
    sounds = result.get("sounds_like") or []
    if sounds:  # a column beside the genres: AudioSet's words, not the model's genres
        blank = " " * len(rows[0]) if rows else ""
        lines.append(f"{blank}  {SOUNDS_LIKE_HEADER}")
        rows += [blank] * (len(sounds) - len(rows))
        rows = [
            f"{row}  {sounds[i]['name']} {sounds[i]['score']:.2f}" if i < len(sounds) else row
            for i, row in enumerate(rows)
        ]
    lines += [row.rstrip() for row in rows]
    if with_segments:
        for segment in result["segments"]:
            lines.append(
                f"  {segment['start']:>7.1f}-{segment['end']:<7.1f}{segment['genre']:<10}"
                f"{segment['probabilities'][segment['genre']]:.0%}"
            )
    return "\n".join(lines)


COMMANDS = (train, evaluate, demo_data)
