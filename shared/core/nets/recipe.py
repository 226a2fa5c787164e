"""A model's recipe: how it was trained, so that the service can train the same kind again.

A :class:`Recipe` names what :func:`shared.core.learning.training.train_from_folder` needs besides
the data: the network (LSTM or BiLSTM, with or without musicnn beside it), the MFCC inputs, the
augmentation and the training schedule. Training writes it into the model's sidecar under
``"recipe"``; a training run of the service (API or schedule) reads the active model's, or takes
one named in the request. Sidecars written before recipes were recorded get one derived from
their ``options``, ``feature_config`` and ``architecture`` (:func:`recipe_from_sidecar`).

Standard library only: the web process validates recipes and reads sidecars without numpy or
TensorFlow. The named recipes (:data:`RECIPES`) are also the variants ``benchmarks/accuracy.py``
cross-validates, so a benchmark row and a service run mean the same thing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from shared.core.nets import hparams
from shared.errors import InvalidRecipe, RecipeUnavailable

#: The sidecar's member that holds the recipe.
RECIPE_KEY: Final = "recipe"
#: musicnn outputs a head can read beside the MFCCs (see ``shared/core/learning/embeddings.py``).
EMBEDDINGS: Final = ("penultimate", "pool")
#: Pretrained musicnn weights a recipe may name; ``<name>.npz`` in :data:`WEIGHTS_DIR`. Only
#: ``MSD_musicnn`` ships; ``scripts/convert_musicnn.py`` makes the others.
NETWORKS: Final = ("MSD_musicnn", "MTT_musicnn")
WEIGHTS_DIR: Final = Path(__file__).resolve().parent / "musicnn_weights"
#: The fields that decide what kind of model comes out (the rest is the training schedule).
MODEL_FIELDS: Final = (
    "architecture",
    "n_mfcc",
    "deltas",
    "augment",
    "normalize",
    "embedding",
    "loudness_db",
    "cmvn",
    "audioset",
    "fusion",
    "lstm_units",
    "mfcc_dropout",
    "channel_augment",
)
INTEGER_FIELDS: Final = ("n_mfcc", "epochs", "batch_size", "patience", "lstm_units")
#: How the MFCC branch meets the embeddings (``shared/core/nets/fusion_model.py``).
FUSIONS: Final = ("early", "late", "residual")
MAX_LSTM_UNITS: Final = 1024
MAX_EPOCHS: Final = 10_000
MAX_BATCH_SIZE: Final = 4096
MAX_N_MFCC: Final = 128
MAX_NAME_CHARS: Final = 64
#: Loudness normalisation targets a recipe may name, in dBFS RMS.
LOUDNESS_RANGE: Final = (-60.0, 0.0)


@dataclass(frozen=True)
class Recipe:
    """How to train a model; validated when built (:class:`~shared.errors.InvalidRecipe`).

    Parameters
    ----------
    name : str
        A name from :data:`RECIPES`, or ``custom``.
    architecture : {"baseline", "bilstm"}
        The recurrent layer over the MFCCs: LSTM(64), or a bidirectional LSTM(64).
    n_mfcc : int > 0
    deltas : bool
        Add first and second MFCC deltas.
    augment : bool
        Add half-segment-shifted segments of the training tracks.
    normalize : bool
        Standardise the MFCCs inside the model.
    embedding : {"penultimate", "pool"} or None
        The musicnn output read beside the MFCCs; ``None``: MFCCs only.
    networks : tuple of str
        The musicnn weights whose embeddings, concatenated, feed the head (when ``embedding``).
    epochs : int > 0
        At most this many epochs; early stopping on the validation tracks ends sooner.
    batch_size : int > 0
    learning_rate : float in (0, 1)
    patience : int > 0
        Epochs without a better validation loss before training stops.
    balanced : bool
        Weight every genre equally in the loss, however many segments it has.
    loudness_db : float in [-60, 0] or None
        Scale every 3-s segment to this RMS level before its features; ``None``: as decoded.
    l2 : float in [0, 1) or None
        The musicnn head's weight decay; ``None``: its default.
    embedding_dropout : float in [0, 1) or None
        Dropout on the musicnn embedding; ``None``: the head's default.
    cmvn : bool
        Per-song cepstral mean and variance normalisation of the MFCCs (takes a recording's
        channel and codec colouring away from the LSTM).
    audioset : bool
        Read the AudioSet network's (EfficientAT mn04) embedding beside musicnn's; needs
        ``embedding``.
    fusion : {"early", "late", "residual"}
        ``early``: the LSTM's and the embeddings' dense layers meet before one classifier.
        ``late``: a linear read-out of the embeddings and the LSTM each give genre logits,
        added before the softmax (the LSTM is one voice beside the read-out); ``residual``:
        the read-out is a logistic regression fitted first and frozen, the LSTM's voice is
        trained on top of it. Both need ``embedding``.
    lstm_units : int > 0
        Width of the LSTM over the MFCCs (64 in the seed recipe).
    mfcc_dropout : float in [0, 1)
        Drop the MFCC branch for whole batches with this probability while training, so the
        head cannot lean on it alone (musicnn models only).
    channel_augment : bool
        Add copies of the training tracks with a random EQ tilt and gain, re-encoded at another
        bitrate (their MFCCs only; ``shared/core/learning/augment.py``).
    """

    name: str = "custom"
    architecture: str = hparams.ARCHITECTURE
    n_mfcc: int = 13
    deltas: bool = False
    augment: bool = False
    normalize: bool = True
    embedding: str | None = None
    networks: tuple[str, ...] = ("MSD_musicnn",)
    epochs: int = hparams.EPOCHS
    batch_size: int = hparams.BATCH_SIZE
    learning_rate: float = hparams.LEARNING_RATE
    patience: int = hparams.PATIENCE
    balanced: bool = False
    loudness_db: float | None = None
    l2: float | None = None
    embedding_dropout: float | None = None
    cmvn: bool = False
    audioset: bool = False
    fusion: str = "early"
    lstm_units: int = 64
    mfcc_dropout: float = 0.0
    channel_augment: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_choice("architecture", self.architecture, hparams.ARCHITECTURES)
        if self.embedding is not None:
            _check_choice("embedding", self.embedding, EMBEDDINGS)
        _check_choice("fusion", self.fusion, FUSIONS)
        for name in ("deltas", "augment", "normalize", "balanced", "cmvn", "audioset",
                     "channel_augment"):  # fmt: skip
            if not isinstance(getattr(self, name), bool):
                raise InvalidRecipe(f"Recipe field {name!r} must be true or false.")
        _check_int("n_mfcc", self.n_mfcc, MAX_N_MFCC)
        _check_int("epochs", self.epochs, MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, MAX_BATCH_SIZE)
        _check_int("patience", self.patience, MAX_EPOCHS)
        _check_int("lstm_units", self.lstm_units, MAX_LSTM_UNITS)
        _check_number("mfcc_dropout", self.mfcc_dropout, 0.0, 1.0)
        beside = self.audioset or self.fusion != "early" or self.mfcc_dropout
        if self.embedding is None and beside:
            raise InvalidRecipe(
                "Recipe fields 'audioset', 'fusion' other than 'early' and 'mfcc_dropout' need a "
                "musicnn "
                "'embedding' beside the MFCCs."
            )
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1:
            raise InvalidRecipe(f"Recipe field 'learning_rate' must be in (0, 1), got {rate!r}.")
        _check_number("loudness_db", self.loudness_db, *LOUDNESS_RANGE, top_open=False)
        _check_number("l2", self.l2, 0.0, 1.0)
        _check_number("embedding_dropout", self.embedding_dropout, 0.0, 1.0)
        networks = self.networks
        if (
            not isinstance(networks, tuple)
            or not networks
            or len(set(networks)) != len(networks)
            or not all(isinstance(n, str) and n in NETWORKS for n in networks)
        ):
            raise InvalidRecipe(
                f"Recipe field 'networks' must list distinct musicnn weights out of "
                f"{', '.join(NETWORKS)}, got {networks!r}."
            )

    @property
    def musicnn(self) -> bool:
        """Whether the model reads a musicnn embedding beside the MFCCs."""
        return self.embedding is not None

    def describe(self) -> str:
        """One line in words, e.g. for a benchmark table's legend."""
        parts = [
            f"LSTM({self.lstm_units})" if self.architecture == "baseline" else "BiLSTM",
            f"{self.n_mfcc} MFCC + Δ + ΔΔ" if self.deltas else f"{self.n_mfcc} MFCC",
        ]
        if self.cmvn:
            parts.append("per-song CMVN")
        if self.channel_augment:
            parts.append("EQ/gain/re-encoding augmentation")
        if self.augment:
            parts.append("half-segment augmentation")
        if self.embedding:
            nets = " + ".join(n.removesuffix("_musicnn") for n in self.networks)
            parts.append(f"musicnn ({nets}) {self.embedding} embedding beside the LSTM")
            if self.audioset:
                parts.append("AudioSet (mn04) embedding too")
            if self.fusion == "late":
                parts.append("late fusion: linear read-out + LSTM voice")
            if self.fusion == "residual":
                parts.append("residual: fitted read-out (frozen) + LSTM voice trained on top")
            if self.mfcc_dropout:
                parts.append(f"MFCC branch dropped for {self.mfcc_dropout:.0%} of batches")
        if self.balanced:
            parts.append("genres weighted equally")
        if self.loudness_db is not None:
            parts.append(f"segments normalised to {self.loudness_db:g} dBFS RMS")
        if self.l2 is not None or self.embedding_dropout is not None:
            parts.append(f"head L2 {self.l2}, embedding dropout {self.embedding_dropout}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON-ready dict (``networks`` as a list)."""
        data = asdict(self)
        data["networks"] = list(self.networks)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        """Build a recipe from a JSON object; absent fields take the defaults.

        Without a ``name``, the recipe is named after the preset it equals (else ``custom``).

        Raises
        ------
        InvalidRecipe
            ``data`` is not an object, has unknown members, or a value is invalid.
        """
        if not isinstance(data, dict):
            raise InvalidRecipe(f"A recipe must be a name or a JSON object, got {data!r}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in set(data) - known)
        if unknown:
            raise InvalidRecipe(
                f"Unknown recipe field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        values = dict(data)
        if isinstance(values.get("networks"), list):
            values["networks"] = tuple(values["networks"])
        for name in INTEGER_FIELDS:  # JSON's 70.0 is the integer 70
            value = values.get(name)
            if isinstance(value, float) and value.is_integer():
                values[name] = int(value)
        recipe = cls(**values)
        return recipe if "name" in values else recipe.named()

    def same_model_as(self, other: Recipe) -> bool:
        """Whether both recipes make the same kind of model (the schedule aside)."""
        return all(getattr(self, f) == getattr(other, f) for f in MODEL_FIELDS) and (
            not self.musicnn or self.networks == other.networks
        )

    def named(self) -> Recipe:
        """Return this recipe named after the preset it matches.

        That is the preset equal to it but for the schedule (epochs, batch size, learning rate,
        patience), else the first preset that makes the same kind of model.
        """
        schedule = {"name", "epochs", "batch_size", "learning_rate", "patience"}

        def recipe_part(recipe: Recipe) -> dict[str, Any]:
            return {k: v for k, v in asdict(recipe).items() if k not in schedule}

        for name, preset in RECIPES.items():
            if recipe_part(preset) == recipe_part(self):
                return replace(self, name=name)
        for name, preset in RECIPES.items():
            if preset.same_model_as(self):
                return replace(self, name=name)
        return replace(self, name="custom")


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not re.search(r"\S", name) or len(name) > MAX_NAME_CHARS:
        raise InvalidRecipe(
            f"Recipe field 'name' must be 1 to {MAX_NAME_CHARS} characters, got {name!r}."
        )


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidRecipe(
            f"Recipe field {field!r} must be one of {', '.join(choices)}, got {value!r}."
        )


def _check_number(
    field: str, value: Any, low: float, high: float, *, top_open: bool = True
) -> None:
    """Check an optional number: ``None``, or ``low <= value < high`` (``<= high`` if closed)."""
    if value is None:
        return
    inside = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and low <= value
        and (value < high if top_open else value <= high)
    )
    if not inside:
        bound = ")" if top_open else "]"
        raise InvalidRecipe(
            f"Recipe field {field!r} must be null or in [{low:g}, {high:g}{bound}, got {value!r}."
        )


def _check_int(field: str, value: Any, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidRecipe(f"Recipe field {field!r} must be an integer 1 to {most}: {value!r}.")


def _ladder() -> tuple[Recipe, ...]:
    """Each lever of issue 20 on top of the previous rung (their figures: docs/accuracy.md)."""
    base = Recipe(
        "fusion+audioset",
        embedding="pool",
        balanced=True,
        loudness_db=-20.0,
        audioset=True,
        batch_size=128,  # 4x fewer steps an epoch than the seed's 32: the ladder trains faster
    )
    late = replace(base, name="late", fusion="late")
    cmvn = replace(late, name="late+cmvn", cmvn=True)
    small = replace(cmvn, name="late+cmvn+lstm32", lstm_units=32)
    dropped = replace(small, name="late+cmvn+lstm32+drop", mfcc_dropout=0.5)
    channel = replace(dropped, name="late+cmvn+lstm32+drop+channel", channel_augment=True)
    residual = replace(dropped, name="residual+cmvn+lstm32+drop", fusion="residual")
    return base, late, cmvn, small, dropped, channel, residual


#: The named recipes: the seed recipe first, then the variants the benchmark tried.
RECIPES: Final[dict[str, Recipe]] = {
    r.name: r
    for r in (
        Recipe("seed"),
        Recipe("bilstm+deltas+augment", architecture="bilstm", deltas=True, augment=True),
        Recipe("musicnn", embedding="penultimate"),
        Recipe("musicnn-pool", embedding="pool"),
        Recipe(
            "musicnn+bilstm+deltas", architecture="bilstm", deltas=True, embedding="penultimate"
        ),
        Recipe("musicnn-mtt", embedding="penultimate", networks=("MTT_musicnn",)),
        Recipe("musicnn-msd+mtt", embedding="penultimate", networks=("MSD_musicnn", "MTT_musicnn")),
        Recipe("musicnn-pool+balanced", embedding="pool", balanced=True),
        Recipe(
            "musicnn-pool+balanced+loudness", embedding="pool", balanced=True, loudness_db=-20.0
        ),
        Recipe(
            "musicnn-pool+balanced+loudness+l2",
            embedding="pool",
            balanced=True,
            loudness_db=-20.0,
            l2=1e-2,
            embedding_dropout=0.7,
        ),
        # issue 20: a second pretrained ear, then the levers that take the source shortcut
        # away from the MFCC branch, one at a time
        *_ladder(),
    )
}
#: What a service training run uses when nothing else names a recipe (no model to copy).
FALLBACK_RECIPE: Final = "seed"


def parse_recipe(value: Any) -> Recipe:
    """Return the recipe a request names: a name from :data:`RECIPES` or a recipe object.

    Raises
    ------
    InvalidRecipe
        An unknown name, or an invalid object.
    RecipeUnavailable
        It reads musicnn weights that this installation does not have.
    """
    if isinstance(value, str):
        try:
            recipe = RECIPES[value]
        except KeyError:
            raise InvalidRecipe(
                f"Unknown recipe {value[:80]!r}; choose one of {', '.join(RECIPES)}, "
                "or send a recipe object."
            ) from None
    else:
        recipe = Recipe.from_dict(value)
    missing = [n for n in recipe.networks if not (WEIGHTS_DIR / f"{n}.npz").is_file()]
    if recipe.musicnn and missing:
        raise RecipeUnavailable(
            f"The musicnn weights {', '.join(missing)} are not installed in {WEIGHTS_DIR} "
            "(convert them with scripts/convert_musicnn.py)."
        )
    return recipe
