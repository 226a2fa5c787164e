"""The AudioSet ear: EfficientAT's mn04, frozen, served by ONNX Runtime; and "sounds like".

mn04 (MIT, about 1 M parameters) was trained on AudioSet's 527 classes. genreflow uses it two
ways: its 384-wide pooled embedding per 3-s segment is a second frozen feature beside musicnn's,
and its own classifier's scores for AudioSet's fifty music-genre classes give every answer a
second opinion in AudioSet's words (:func:`sounds_like`), which is not one of the model's genres.

The input is made by :mod:`shared.core.audio.audioset_input`. Importing this module imports
neither onnxruntime nor reads the weights; :class:`AudioSetEar` opens its session on first use.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import ModelError

WEIGHTS_DIR = Path(__file__).parent / "audioset_weights"
ONNX_FILE = "mn04_as_logmel.onnx"
LABELS_FILE = "class_labels_indices.csv"
NETWORK_NAME = "mn04_as"
N_CLASSES = 527
EMBEDDING_SIZE = 384
#: The ear's outputs by name, as the ONNX graph names them.
EAR_OUTPUTS = ("embedding", "logits")
#: AudioSet's "Music genre" subtree: classes 216 ("Pop music") to 265 ("Independent music").
MUSIC_GENRE_INDICES = tuple(range(216, 266))
FIRST_GENRE, LAST_GENRE = "Pop music", "Independent music"
#: Segments per ONNX Runtime call: bounds the activations' memory for a long song.
EAR_CHUNK = 8
#: OpenVINO runs the ear on a fixed batch of this many 3-s windows (300 frames), padded.
OPENVINO_BATCH = 4
OPENVINO_FRAMES = 300
#: ONNX Runtime's intra-op threads, one per predict process as for the genre model.
INTRA_OP_THREADS = 1
#: Decimals of a "sounds like" score.
SCORE_DECIMALS = 4


@cache
def audioset_labels() -> tuple[str, ...]:
    """Return AudioSet's 527 class names in the network's output order (the shipped CSV)."""
    with (WEIGHTS_DIR / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = tuple(row["display_name"] for row in rows)
    if len(names) != N_CLASSES or [int(row["index"]) for row in rows] != list(range(N_CLASSES)):
        raise ModelError(f"{LABELS_FILE} does not list {N_CLASSES} classes in order.")
    return names


@cache
def music_genres() -> tuple[str, ...]:
    """Return the names of AudioSet's fifty music-genre classes, in the ontology's order.

    Their output indices are :data:`MUSIC_GENRE_INDICES`; the names are spelled as AudioSet
    spells them ("Hip hop music", "Rhythm and blues", "A capella").
    """
    labels = audioset_labels()
    names = tuple(labels[i] for i in MUSIC_GENRE_INDICES)
    if (names[0], names[-1]) != (FIRST_GENRE, LAST_GENRE):
        raise ModelError(f"{LABELS_FILE}: the music genres do not run {FIRST_GENRE}..{LAST_GENRE}.")
    return names


def sounds_like(logits: np.ndarray, *, top: int = 3) -> list[dict[str, Any]]:
    """Name the music genres a song sounds like to the AudioSet network, best first.

    Parameters
    ----------
    logits : np.ndarray, shape (n_segments, 527) or (527,)
        The ear's logits for some of a song's segments.
    top : int > 0
        How many genres to name.

    Returns
    -------
    list of dict
        ``{"name": str, "score": float}``: the sigmoid of each segment's logits averaged over
        the segments, for the ``top`` best of AudioSet's music-genre classes only (never
        "Music" or "Speech"), rounded to :data:`SCORE_DECIMALS`. Empty for no segments.
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1, N_CLASSES)
    if len(logits) == 0:
        return []
    scores = (1.0 / (1.0 + np.exp(-logits[:, MUSIC_GENRE_INDICES]))).mean(axis=0)
    order = np.argsort(-scores, kind="stable")[:top]
    names = music_genres()
    return [{"name": names[i], "score": round(float(scores[i]), SCORE_DECIMALS)} for i in order]


class AudioSetEar:
    """EfficientAT mn04: log-mel batches in, embeddings and logits out.

    It runs on OpenVINO (float32) where OpenVINO is installed, as musicnn's stages do, so a
    predict process loads one inference runtime, not two (about 40 MB less); else on ONNX
    Runtime. Both agree with the reference to 1e-4 (``tests/core/test_audioset.py``).

    Parameters
    ----------
    path : path-like, optional
        The ONNX file; the shipped :data:`ONNX_FILE` by default.
    threads : int > 0
        The runtime's threads.
    chunk : int > 0
        Segments per call.
    runtime : {"auto", "openvino", "onnxruntime"}
        ``auto``: OpenVINO when installed.

    Examples
    --------
    >>> from shared.core.audio.audioset_input import audioset_segments
    >>> ear = AudioSetEar()
    >>> out = ear.outputs(audioset_segments(y))  # doctest: +SKIP
    >>> out["embedding"].shape, out["logits"].shape  # doctest: +SKIP
    ((n, 384), (n, 527))
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        threads: int = INTRA_OP_THREADS,
        chunk: int = EAR_CHUNK,
        runtime: str = "auto",
    ) -> None:
        self.path = Path(path) if path is not None else WEIGHTS_DIR / ONNX_FILE
        self.threads = threads
        self.chunk = chunk
        self.runtime = runtime
        self._session: Any = None
        self._run: Any = None

    @property
    def run(self) -> Any:
        """``run(logmel chunk) -> [embedding, logits]`` on the chosen runtime, built once."""
        if self._run is None:
            from shared.core.serving.runtimes import openvino_core

            core = openvino_core() if self.runtime != "onnxruntime" else None
            if core is not None:
                self._run = self._openvino(core)
            else:
                session = self.session
                self._run = lambda chunk: session.run(list(EAR_OUTPUTS), {"logmel": chunk})
        return self._run

    def _openvino(self, core: Any) -> Any:
        config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            "ENABLE_CPU_PINNING": False,
        }
        try:
            model = core.read_model(str(self.path))
            # the graph squeezes a batch of one away: OpenVINO's CPU plug-in needs a static
            # rank for that, so it gets a fixed batch of OPENVINO_BATCH 3-s windows (padded)
            model.reshape({"logmel": [OPENVINO_BATCH, 1, 128, OPENVINO_FRAMES]})
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError subclasses of its own
            raise ModelError(f"Cannot load the AudioSet ear {self.path.name}: {exc}") from exc
        request = compiled.create_infer_request()
        ports = [compiled.output(name) for name in EAR_OUTPUTS]

        def run(chunk: np.ndarray) -> list[np.ndarray]:
            n = len(chunk)
            if chunk.shape[-1] != OPENVINO_FRAMES or n > OPENVINO_BATCH:
                return self.session.run(list(EAR_OUTPUTS), {"logmel": chunk})
            padded = np.zeros((OPENVINO_BATCH, *chunk.shape[1:]), np.float32)
            padded[:n] = chunk
            results = request.infer({"logmel": padded})
            return [np.array(results[port])[:n] for port in ports]

        self.chunk = min(self.chunk, OPENVINO_BATCH)
        return run

    @property
    def session(self) -> Any:
        """The ONNX Runtime session, opened on first use."""
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"Cannot load the AudioSet ear {self.path.name}: {exc}") from exc
        return self._session

    def outputs(self, logmel: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on log-mel patches.

        Parameters
        ----------
        logmel : np.ndarray, shape (n, 1, 128, n_frames), float32
            From :func:`shared.core.audio.audioset_input.audioset_segments`.

        Returns
        -------
        dict
            ``"embedding"`` (n, 384) and ``"logits"`` (n, 527), float32.
        """
        logmel = np.asarray(logmel, dtype=np.float32)
        if logmel.ndim != 4 or logmel.shape[1:3] != (1, 128):
            raise ValueError(f"logmel must be (n, 1, 128, frames), not {logmel.shape}")
        widths = {"embedding": EMBEDDING_SIZE, "logits": N_CLASSES}
        parts: dict[str, list[np.ndarray]] = {name: [] for name in EAR_OUTPUTS}
        run = self.run  # built first: OpenVINO's fixed batch sets the chunk
        for start in range(0, len(logmel), self.chunk):
            values = run(np.ascontiguousarray(logmel[start : start + self.chunk]))
            for name, value in zip(EAR_OUTPUTS, values, strict=True):
                # a batch of one comes back without its batch axis
                parts[name].append(np.asarray(value, dtype=np.float32).reshape(-1, widths[name]))
        return {
            name: np.concatenate(part) if part else np.zeros((0, widths[name]), np.float32)
            for name, part in parts.items()
        }


@cache
def get_ear() -> AudioSetEar:
    """Return this process's shared ear (its session opens on first use, after any fork)."""
    return AudioSetEar()
