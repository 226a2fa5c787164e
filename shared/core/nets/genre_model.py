"""A loaded genre model, whatever scores it: its sidecar, genres, feature config and scorer.

:func:`open_sidecar` and :func:`assemble_model` are the checks every loader shares (the Keras
one in :mod:`shared.core.nets.model`, the ONNX Runtime one in :mod:`shared.core.serving.inference`).
Importing this module imports neither TensorFlow nor onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.core.audio.features import FeatureConfig, normalise_cepstra
from shared.core.nets.sidecar import read_sidecar
from shared.core.serving.calibration import AnswerPolicy
from shared.errors import FeatureMismatch, ModelError

if TYPE_CHECKING:
    import keras


@dataclass
class GenreModel:
    """A loaded model with its sidecar, ready to score segments.

    ``runtime`` says what scores: ``"onnx"`` (ONNX Runtime, see
    :mod:`shared.core.serving.inference`; no ``keras_model``) or ``"keras"``: one traced
    TensorFlow function (warmed up on load), which avoids ``Model.predict``'s per-call set-up,
    which costs more than the LSTM itself on a song.
    """

    path: Path
    version: str
    genres: list[str]
    feature_config: FeatureConfig
    metadata: dict[str, Any]
    keras_model: keras.Model | None = field(default=None, repr=False)
    runtime: str = "keras"
    _score: Any = field(default=None, repr=False)  # batch (array or dict by input) -> probabilities
    #: A musicnn model served in stages (:class:`shared.core.serving.staged.StagedScorer`), or None.
    staged: Any = field(default=None, repr=False)
    #: Run musicnn on every k-th segment only (:func:`shared.core.serving.staged.patch_segments`).
    musicnn_stride: int = 1
    #: ... but on at least this many segments where a song has them (``song_stride``).
    musicnn_min_patches: int = 1

    @cached_property
    def answer_policy(self) -> AnswerPolicy:
        """How this model turns segment scores into a song's answer (sidecar ``"answer"``).

        Read from the sidecar once per loaded model, not once per song.
        """
        return AnswerPolicy.from_dict(self.metadata.get("answer"))

    def predict_segments(
        self,
        features: np.ndarray | dict[str, np.ndarray],
        *,
        patches: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score segments.

        Parameters
        ----------
        features : np.ndarray, shape (n_segments, n_frames, n_features), or dict
            The MFCC sequences of one song; or every input by name (``mfcc``, plus ``logmel``
            for a model that reads musicnn and ``audioset`` for one that reads the AudioSet
            embedding, one row per ``logmel`` row). Inputs the model does not read are
            ignored. A model with ``cmvn`` normalises the song's MFCCs first.
        patches : np.ndarray of int, ascending, optional
            The segments the ``logmel`` (and ``audioset``) rows belong to, when musicnn ran on
            some segments only; every segment then takes the embeddings of its nearest patch.

        Returns
        -------
        np.ndarray, shape (n_segments, n_genres), float32
            Softmax probabilities, columns in :attr:`genres` order.
        """
        shapes = self.feature_config.input_shapes()
        if not isinstance(features, dict):
            features = {"mfcc": features}
        for name, expected in shapes.items():
            array = features.get(name)
            if array is None or array.ndim != 1 + len(expected) or array.shape[1:] != expected:
                got = None if array is None else array.shape[1:]
                raise FeatureMismatch(
                    f"Model {self.version} expects segments of shape {expected} "
                    f"(input {name}), got {got}."
                )
        batch = {name: np.asarray(features[name], dtype=np.float32) for name in shapes}
        if self.feature_config.cmvn:
            batch["mfcc"] = normalise_cepstra(batch["mfcc"])
        if "logmel" not in batch:
            return np.asarray(self._score(batch["mfcc"]))
        nearest = None
        if patches is not None:
            from shared.core.serving.staged import nearest_patches

            if len(patches) != len(batch["logmel"]):
                raise ValueError(f"{len(patches)} patch indices for {len(batch['logmel'])} rows.")
            nearest = nearest_patches(len(batch["mfcc"]), patches)
        if self.staged is not None:
            embedding = self.staged.embed(batch["logmel"])
            if "audioset" in batch:
                embedding["audioset"] = batch["audioset"]
            if nearest is not None:
                embedding = {name: rows[nearest] for name, rows in embedding.items()}
            return np.asarray(self.staged.head(batch["mfcc"], embedding))
        if nearest is not None:  # a single graph: same answer, no saving
            for name in ("logmel", "audioset"):
                if name in batch:
                    batch[name] = batch[name][nearest]
        return np.asarray(self._score(batch))


def open_sidecar(
    path: str | Path, *, expected_features: FeatureConfig | None = None
) -> tuple[Path, dict[str, Any], FeatureConfig]:
    """Check that a model file exists and read its sidecar, whatever will score it.

    Returns
    -------
    tuple of (Path, dict, FeatureConfig)
        The model file, its sidecar, and the feature config stored there.

    Raises
    ------
    ModelError
        The file or sidecar is missing or unreadable.
    FeatureMismatch
        The stored feature config differs from ``expected_features``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"No model file at {path}.")
    sidecar = read_sidecar(path)
    config = FeatureConfig.from_dict(sidecar["feature_config"])
    if expected_features is not None and config != expected_features:
        raise FeatureMismatch(
            f"Model {sidecar.get('version')} was trained on features {config.to_dict()}, "
            f"not {expected_features.to_dict()}."
        )
    return path, sidecar, config


def assemble_model(
    path: Path,
    sidecar: dict[str, Any],
    config: FeatureConfig,
    *,
    network_name: str,
    input_shapes: dict[str, tuple[Any, ...]],
    n_outputs: int,
    warm_up: bool,
    **scoring: Any,
) -> GenreModel:
    """Check a loaded network against its sidecar and wrap it as a :class:`GenreModel`.

    Parameters
    ----------
    path, sidecar, config
        As :func:`open_sidecar` returns them.
    network_name : str
        The file the network came from, for error messages.
    input_shapes : dict
        The network's per-segment input shapes by input name; a single input is the MFCC
        input, whatever its name.
    n_outputs : int
        The network's output width.
    warm_up : bool
        Score one zero segment now, so the first song pays no set-up.
    **scoring
        What scores: ``keras_model=`` or ``runtime=`` and ``_score=`` (see :class:`GenreModel`).

    Raises
    ------
    FeatureMismatch
        The network's inputs differ from those the sidecar's feature config describes.
    ModelError
        Its outputs do not match the sidecar's genres.
    """
    shapes = config.input_shapes()
    if len(input_shapes) == 1:
        input_shapes = {"mfcc": next(iter(input_shapes.values()))}
    if input_shapes != shapes:
        raise FeatureMismatch(
            f"Model {network_name} takes inputs {input_shapes} but its sidecar describes {shapes}."
        )
    genres = list(sidecar["genres"])
    if n_outputs != len(genres):
        raise ModelError(f"Model {network_name} has {n_outputs} outputs for {len(genres)} genres.")
    model = GenreModel(
        path=path,
        version=str(sidecar["version"]),
        genres=genres,
        feature_config=config,
        metadata=sidecar,
        **scoring,
    )
    if warm_up:
        model.predict_segments(
            {n: np.zeros((1, *shape), np.float32) for n, shape in shapes.items()}
        )
    return model
