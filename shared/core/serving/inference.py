"""Serve a trained model without TensorFlow: its ONNX artefact, scored by ONNX Runtime.

Training writes ``<version>.onnx`` beside ``<version>.keras``
(:func:`shared.core.nets.model.export_onnx`) and names it in the sidecar's ``"served"`` entry.
:func:`load_served_model` loads that graph into an ``onnxruntime.InferenceSession``, so a predict
worker or ``genreflow predict`` needs onnxruntime, numpy and librosa, and never imports TensorFlow
(about 120 MB of resident memory instead of 800+). A model without the artefact (trained before it
existed) is loaded through Keras instead, which is slower to start and heavier, and says so in the
log.

Importing this module imports neither onnxruntime nor TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.features import FeatureConfig
from shared.core.nets.genre_model import GenreModel, assemble_model, open_sidecar
from shared.core.nets.sidecar import onnx_path, read_sidecar
from shared.core.serving.staged import FAST, ServingOptions
from shared.errors import FeatureMismatch, ModelError

log = logging.getLogger(__name__)

#: Threads one ONNX Runtime session may use. The predict pool runs one process per core, so
#: each process scoring on one thread keeps the cores busy without oversubscribing them.
INTRA_OP_THREADS = 1
#: The ONNX input that takes MFCC segments (the Keras ``Input`` name). A model with more inputs
#: (say a mel patch for a pretrained front end) is fed a ``{input name: batch}`` mapping.
MFCC_INPUT = "mfcc"
#: Segments per ONNX Runtime call. Scoring a whole song at once keeps every segment's
#: activations alive together: with the musicnn front end (187 x 96 x 204 floats per segment in
#: its first layer) a 3-minute song held 2.4 GB in a predict process; in chunks of 4, 0.43 GB at
#: the same speed (the work per segment is the same).
SCORE_CHUNK = 4


def use_one_math_thread() -> None:
    """Limit this process's BLAS and OpenMP thread pools to one thread (``threadpoolctl``).

    A predict pool process shares the cores with its siblings and its own ffmpeg. NumPy's
    OpenBLAS otherwise starts a thread per core for the MFCCs' matrix products, and those
    threads spin while they wait: on two cores that tripled the CPU time of a 3-minute song
    (0.6 s instead of 0.2 s, ffmpeg aside) and made it slower, not faster.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def served_artefact(model_path: str | Path, sidecar: dict[str, Any] | None = None) -> Path | None:
    """Return the ONNX file that serves ``model_path``, or ``None`` when it has none.

    The sidecar's ``"served"`` entry names it; a ``<stem>.onnx`` beside the model counts too
    (a model converted after training).
    """
    sidecar = read_sidecar(model_path) if sidecar is None else sidecar
    served = sidecar.get("served") or {}
    if served.get("format") == "onnx" and served.get("file"):
        candidate = Path(model_path).parent / str(served["file"])
        if candidate.is_file():
            return candidate
    candidate = onnx_path(model_path)
    return candidate if candidate.is_file() else None


def load_served_model(
    path: str | Path,
    *,
    expected_features: FeatureConfig | None = None,
    warm_up: bool = True,
    threads: int = INTRA_OP_THREADS,
    serving: ServingOptions | None = None,
) -> GenreModel:
    """Load a model for scoring: its ONNX artefact when it has one, else the Keras file.

    Parameters
    ----------
    path : path-like
        The model's ``.keras`` file (sidecar ``<stem>.json`` beside it).
    expected_features : FeatureConfig, optional
        When given, the model's stored feature config must equal it.
    warm_up : bool
        Score one zero segment now, so the first song pays no set-up.
    threads : int > 0
        ONNX Runtime's intra-op threads.
    serving : ServingOptions, optional
        How a musicnn model is scored: in stages, musicnn on every k-th segment, bf16 where the
        CPU has it (:data:`shared.core.serving.staged.FAST`, the default), or the whole graph on
        every segment (:data:`shared.core.serving.staged.EXACT`). A model without musicnn
        ignores it.

    Returns
    -------
    GenreModel
        ``runtime`` is ``"onnx"``, ``"staged"`` (a musicnn model served in stages) or
        ``"keras"``.

    Raises
    ------
    ModelError
        The model or its sidecar is missing or unreadable, or its outputs do not match its
        genres.
    FeatureMismatch
        The stored feature config differs from ``expected_features`` or from the graph's input.
    """
    path, sidecar, config = open_sidecar(path, expected_features=expected_features)
    artefact = served_artefact(path, sidecar)
    if artefact is None:
        from shared.core.nets.model import load_genre_model

        log.warning(
            "model %s has no ONNX artefact beside it; loading it with Keras (TensorFlow)",
            path.name,
        )
        return load_genre_model(path, expected_features=expected_features, warm_up=warm_up)
    serving = FAST if serving is None else serving
    if config.musicnn and not serving.exact:
        from shared.core.serving.staged import build_staged_scorer

        staged = build_staged_scorer(artefact, serving)
        log.info("model %s served in stages: %s", path.name, staged.description)
        return assemble_model(
            path,
            sidecar,
            config,
            network_name=artefact.name,
            input_shapes=staged.split.input_shapes,
            n_outputs=staged.split.n_outputs,
            warm_up=warm_up,
            runtime="staged",
            staged=staged,
            musicnn_stride=serving.stride,
            musicnn_min_patches=serving.musicnn_min_patches,
        )
    score, input_shapes, n_outputs = _onnx_scorer(artefact, threads=threads)
    return assemble_model(
        path,
        sidecar,
        config,
        network_name=artefact.name,
        input_shapes=input_shapes,
        n_outputs=n_outputs,
        warm_up=warm_up,
        runtime="onnx",
        _score=score,
    )


def _onnx_scorer(
    artefact: Path, *, threads: int
) -> tuple[Callable[..., np.ndarray], dict[str, tuple[int, ...]], int]:
    """Open an ONNX Runtime session; return its scorer, input shapes by name and output width."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no initializer-pruning notes on stderr
    try:
        session = ort.InferenceSession(
            str(artefact), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"Cannot load model {artefact.name}: {exc}") from exc
    inputs = {i.name: i for i in session.get_inputs()}
    first = inputs.get(MFCC_INPUT) or next(iter(inputs.values()))
    input_shapes = {
        name: tuple(int(d) if isinstance(d, int) else -1 for d in node.shape[1:])
        for name, node in inputs.items()
    }
    n_outputs = session.get_outputs()[0].shape[-1]

    def score(batch: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        feed = dict(batch) if isinstance(batch, Mapping) else {first.name: batch}
        missing = set(inputs) - set(feed)
        if missing:
            raise FeatureMismatch(
                f"Model {artefact.name} also needs inputs {', '.join(sorted(missing))}."
            )
        n_segments = len(next(iter(feed.values())))
        if n_segments <= SCORE_CHUNK:
            return session.run(None, feed)[0]
        return np.concatenate(
            [
                session.run(
                    None, {name: batch[i : i + SCORE_CHUNK] for name, batch in feed.items()}
                )[0]
                for i in range(0, n_segments, SCORE_CHUNK)
            ]
        )

    return score, input_shapes, int(n_outputs) if isinstance(n_outputs, int) else -1
