"""Serve a musicnn model in stages, so musicnn runs on fewer segments and at lower precision.

The served ONNX graph (inputs ``mfcc`` and ``logmel``, output one softmax row per segment) is cut
where the MFCC and log-mel branches meet, without retraining or re-exporting anything:

- *trunk*: ``logmel`` → musicnn's frame features, the part before pooling over time (about 99 %
  of the model's work: the convolutions);
- *tail*: those features → pooled over time → the head's embedding branch, up to the tensors the
  MFCC branch joins (for the shipped model a 64-wide vector per segment);
- *head*: ``mfcc``, the tail's output and any other input (the AudioSet embedding, computed
  outside the graph) → softmax.

Running the three stages gives the whole graph's answer. The cut buys two levers:

- the trunk can run on OpenVINO with a bf16 inference precision where the CPU has bf16 matrix
  instructions (AVX-512 BF16 or AMX), while the tail and head stay in float32. The tail must:
  the embedding is standardised by training statistics, and a feature that never varied in
  training is multiplied by up to 1e7, so bf16 rounding there flips the answer;
- musicnn may run on every k-th segment only (:func:`patch_segments`); each segment then takes
  the embedding of its nearest patch (:func:`nearest_patches`) and keeps its own MFCC head row.

Where OpenVINO is missing, or the CPU has no bf16, each stage falls back to ONNX Runtime or to
float32. Importing this module imports neither onnx, onnxruntime nor openvino.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.core.serving.runtimes import (
    Scorer,
    bf16_supported,
    onnxruntime_stage,
    openvino_core,
    openvino_stage,
)
from shared.errors import ModelError

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

LOGMEL_INPUT = "logmel"
MFCC_INPUT = "mfcc"
#: Nodes that pool musicnn's frame features over time: where the trunk ends.
POOLING_OPS = frozenset({"ReduceMean", "ReduceMax", "GlobalAveragePool", "GlobalMaxPool"})
#: Log-mel patches per trunk call: bounds the activations held at once (as ``SCORE_CHUNK``).
#: Peak RSS of a process that loads the default model and embeds 60 patches: 327 MB in chunks
#: of 8, 301 MB of 4, 271 MB of 2, at the same CPU time (1.3 s, bf16).
TRUNK_CHUNK = 2
RUNTIMES = ("auto", "openvino", "onnxruntime")
PRECISIONS = ("auto", "bf16", "f32")
#: ``/proc/cpuinfo`` flags of the bf16 matrix instructions OpenVINO's CPU plugin uses.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class ServingOptions:
    """How a predict process scores a musicnn model.

    Attributes
    ----------
    exact : bool
        Score the whole ONNX graph on every segment with ONNX Runtime, float32 (the reference).
        When set, the other options are ignored.
    musicnn_stride : int >= 1
        Run musicnn on every k-th segment (1: every segment).
    musicnn_min_patches : int >= 1
        A song gets at least this many patches where it has the segments: a shorter song
        runs musicnn on every k'-th segment, ``k' = n_segments // musicnn_min_patches``
        (:func:`song_stride`). Short clips then keep their answer; a 3-minute song (60
        segments) keeps ``musicnn_stride``.
    runtime : {"auto", "openvino", "onnxruntime"}
        What runs musicnn's trunk; ``auto`` is OpenVINO when installed.
    precision : {"auto", "bf16", "f32"}
        The trunk's inference precision on OpenVINO; ``auto`` is bf16 where the CPU has it.
    threads : int >= 1
        Threads per stage (a predict pool process uses one).
    """

    exact: bool = False
    musicnn_stride: int = 4
    musicnn_min_patches: int = 10
    runtime: str = "auto"
    precision: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.musicnn_stride < 1:
            raise ValueError(f"musicnn_stride must be >= 1, not {self.musicnn_stride}.")
        if self.musicnn_min_patches < 1:
            raise ValueError(f"musicnn_min_patches must be >= 1, not {self.musicnn_min_patches}.")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime {self.runtime!r} is not one of {', '.join(RUNTIMES)}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}.")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, not {self.threads}.")

    @property
    def stride(self) -> int:
        """The musicnn stride actually used (1 on the exact path)."""
        return 1 if self.exact else self.musicnn_stride


#: The reference: whole graph, every segment, ONNX Runtime float32.
EXACT = ServingOptions(exact=True)
#: The default fast path (figures in docs/speed.md).
FAST = ServingOptions()


@dataclass(frozen=True)
class SplitGraph:
    """The served graph cut into its three stages (see the module docstring)."""

    trunk: onnx.ModelProto | None
    tail: onnx.ModelProto
    head: onnx.ModelProto
    trunk_outputs: tuple[str, ...]
    embedding_outputs: tuple[str, ...]
    output: str
    input_shapes: dict[str, tuple[int, ...]]
    n_outputs: int


@dataclass
class StagedScorer:
    """Compiled stages: ``embed(logmel)`` gives the head's embedding inputs, ``head`` the softmax.

    ``description`` names what runs each stage (for logs and benchmarks).
    """

    embed: Callable[[np.ndarray], dict[str, np.ndarray]]
    head: Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]
    split: SplitGraph
    description: dict[str, str] = field(default_factory=dict)
    trunk: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
    tail: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]] | None = None


def song_stride(n_segments: int, stride: int, min_patches: int) -> int:
    """Return the stride a song of ``n_segments`` gets: ``stride``, finer to keep ``min_patches``.

    ``max(1, min(stride, n_segments // min_patches))``: with k = 4 and 10 patches, a 30-s clip
    (10 segments) runs musicnn on every segment, a 60-s one on every 2nd, a song of 2 minutes
    or more on every 4th.
    """
    return max(1, min(stride, n_segments // min_patches))


def patch_segments(n_segments: int, stride: int, *, start: int = 0) -> np.ndarray:
    """Return which of segments ``start .. start + n_segments - 1`` get a musicnn patch.

    Segment ``i`` does when ``i % stride == stride // 2``: the centre of every run of
    ``stride`` segments, so no segment is more than ``stride // 2`` from a patch inside the
    song. A song of ``stride // 2`` segments or fewer has none here: :func:`song_stride` gives
    it a finer stride.

    Returns
    -------
    np.ndarray of int, ascending
        Indices relative to ``start``.
    """
    indices = np.arange(start, start + n_segments)
    return indices[indices % stride == stride // 2] - start


def nearest_patches(n_segments: int, patches: Sequence[int] | np.ndarray) -> np.ndarray:
    """For each of ``n_segments`` segments, the row of its nearest patch in ``patches``.

    Parameters
    ----------
    n_segments : int > 0
    patches : sequence of int, ascending, non-empty
        Segment indices that have a musicnn patch.

    Returns
    -------
    np.ndarray of int, shape (n_segments,)
        Row into ``patches``; a tie goes to the earlier patch.
    """
    patches = np.asarray(patches, dtype=np.int64)
    if patches.size == 0:
        raise ValueError("At least one segment needs a musicnn patch (none given).")
    segments = np.arange(n_segments)
    after = np.clip(np.searchsorted(patches, segments), 0, len(patches) - 1)
    before = np.clip(after - 1, 0, len(patches) - 1)
    take_before = np.abs(segments - patches[before]) <= np.abs(patches[after] - segments)
    return np.where(take_before, before, after)


def split_served_graph(model: onnx.ModelProto | str | Path) -> SplitGraph:
    """Cut a served musicnn graph into trunk, tail and head.

    The *embedding* boundary is every tensor computed from ``logmel`` alone that a node reading
    anything else (``mfcc``, or another input such as ``audioset``) uses. The *trunk* boundary
    is every tensor computed from ``logmel`` alone, not yet pooled over time, that a pooling
    node or a node after one uses.

    Raises
    ------
    ModelError
        The graph has no ``logmel`` and ``mfcc`` inputs, or one output is not all it returns.
    """
    import onnx
    from onnx import utils

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    names = [i.name for i in graph.input]
    if LOGMEL_INPUT not in names or MFCC_INPUT not in names or len(graph.output) != 1:
        raise ModelError(
            f"Cannot serve in stages: the graph takes {names}, not {MFCC_INPUT} and "
            f"{LOGMEL_INPUT}, with one output."
        )
    constants = {i.name for i in graph.initializer} | {""}
    sources: dict[str, frozenset[str]] = {name: frozenset({name}) for name in names}
    pooled: set[str] = set()  # tensors at or after a time pooling
    producer: dict[str, Any] = {}
    for node in graph.node:  # ONNX graphs are stored in topological order
        inputs = [i for i in node.input if i not in constants]
        origin = frozenset().union(*(sources.get(i, frozenset()) for i in inputs))
        after_pool = node.op_type in POOLING_OPS or any(i in pooled for i in inputs)
        for output in node.output:
            sources[output] = origin
            producer[output] = node
            if after_pool:
                pooled.add(output)
    logmel_only = frozenset({LOGMEL_INPUT})

    def boundary(consumer_wanted: Callable[[Any, list[str]], bool], keep: Callable[[str], bool]):
        found: list[str] = []
        for node in graph.node:
            inputs = [i for i in node.input if i not in constants]
            if not consumer_wanted(node, inputs):
                continue
            for name in inputs:
                if sources.get(name) == logmel_only and keep(name) and name not in found:
                    found.append(name)
        return tuple(found)

    embedding = boundary(
        lambda node, inputs: bool(frozenset().union(*(sources[i] for i in inputs)) - logmel_only),
        lambda name: True,
    )
    others = [name for name in names if name != LOGMEL_INPUT]
    trunk_out = boundary(
        lambda node, inputs: node.op_type in POOLING_OPS or any(i in pooled for i in inputs),
        lambda name: name not in pooled,
    )
    if not embedding:
        raise ModelError("Cannot serve in stages: the mfcc branch never meets the logmel branch.")
    output = graph.output[0].name
    extractor = utils.Extractor(inferred)
    head = extractor.extract_model([*others, *embedding], [output])
    if trunk_out and not set(trunk_out) & set(embedding):
        trunk = extractor.extract_model([LOGMEL_INPUT], list(trunk_out))
        tail = extractor.extract_model(list(trunk_out), list(embedding))
    else:  # no pooling before the embedding: one front stage, float32 only
        trunk, trunk_out = None, ()
        tail = extractor.extract_model([LOGMEL_INPUT], list(embedding))
    return SplitGraph(
        trunk,
        tail,
        head,
        trunk_out,
        embedding,
        output,
        {i.name: _shape(i)[1:] for i in graph.input},
        _shape(graph.output[0])[-1],
    )


def _shape(value: Any) -> tuple[int, ...]:
    """Return a graph value's shape, ``-1`` for a free dimension."""
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)


def build_staged_scorer(artefact: str | Path, options: ServingOptions = FAST) -> StagedScorer:
    """Split ``artefact`` and compile its stages as ``options`` ask, falling back as needed.

    Raises
    ------
    ModelError
        The graph cannot be split, or a runtime cannot load a stage.
    """
    split = split_served_graph(artefact)
    core = openvino_core() if options.runtime != "onnxruntime" else None
    if options.runtime == "openvino" and core is None:
        log.warning("openvino is not installed; musicnn runs on ONNX Runtime instead")
    precision = options.precision
    if precision == "auto":
        precision = "bf16" if core is not None and bf16_supported() else "f32"
    elif precision == "bf16" and (core is None or not bf16_supported()):
        log.warning("this CPU (or runtime) has no bf16; musicnn runs in float32 instead")
        precision = "f32"
    if split.trunk is None and precision == "bf16":
        log.warning("graph %s cannot keep its tail in float32; no bf16", Path(artefact).name)
        precision = "f32"
    runtime = "openvino" if core is not None else "onnxruntime"

    def compile_stage(proto: onnx.ModelProto, stage_precision: str) -> Scorer:
        if core is not None:
            return openvino_stage(core, proto, precision=stage_precision, threads=options.threads)
        return onnxruntime_stage(proto, threads=options.threads)

    tail = compile_stage(split.tail, "f32")
    head = compile_stage(split.head, "f32")
    trunk = compile_stage(split.trunk, precision) if split.trunk is not None else None

    def run_trunk(logmel: np.ndarray) -> dict[str, np.ndarray]:
        assert trunk is not None
        parts = [
            trunk({LOGMEL_INPUT: logmel[i : i + TRUNK_CHUNK]})
            for i in range(0, len(logmel), TRUNK_CHUNK)
        ]
        return {
            name: np.concatenate([part[k] for part in parts])
            for k, name in enumerate(split.trunk_outputs)
        }

    def run_tail(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = tail(features)
        return dict(zip(split.embedding_outputs, outputs, strict=True))

    def embed(logmel: np.ndarray) -> dict[str, np.ndarray]:
        logmel = np.ascontiguousarray(logmel, dtype=np.float32)
        if trunk is None:
            parts = [
                run_tail({LOGMEL_INPUT: logmel[i : i + TRUNK_CHUNK]})
                for i in range(0, len(logmel), TRUNK_CHUNK)
            ]
            return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        return run_tail(run_trunk(logmel))

    def score_head(mfcc: np.ndarray, embedding: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score the head; ``embedding`` holds the tail's outputs and any other input."""
        feed = {MFCC_INPUT: np.ascontiguousarray(mfcc, dtype=np.float32), **embedding}
        return head(feed)[0]

    description = {
        "trunk": f"{runtime} {precision}" if trunk is not None else "none",
        "tail": f"{runtime} f32",
        "head": f"{runtime} f32",
        "musicnn_stride": str(options.stride),
    }
    return StagedScorer(
        embed=embed,
        head=score_head,
        split=split,
        description=description,
        trunk=run_trunk if trunk is not None else None,
        tail=run_tail,
    )
