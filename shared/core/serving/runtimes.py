"""The inference runtimes a served model's stages run on: OpenVINO or ONNX Runtime.

OpenVINO runs bf16 where the CPU has it. Importing this module imports neither runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.errors import ModelError

if TYPE_CHECKING:
    import onnx

Scorer = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]


def cpu_flags() -> frozenset[str]:
    """Return this CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@cache
def openvino_core() -> Any | None:
    """Return an ``openvino.Core``, or ``None`` when OpenVINO is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.Core()


def bf16_supported() -> bool:
    """Whether OpenVINO can run bf16 on this CPU (it says so in its capabilities)."""
    core = openvino_core()
    if core is None:
        return False
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_stage(core: Any, proto: onnx.ModelProto, *, precision: str, threads: int) -> Scorer:
    """Compile one stage on OpenVINO's CPU plugin; return a scorer of ``{input: array}``."""
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
        # a predict pool runs one process per core: pinning would stack them on the same cores
        "ENABLE_CPU_PINNING": False,
    }
    try:
        compiled = core.compile_model(core.read_model(proto.SerializeToString()), "CPU", config)
    except Exception as exc:  # openvino raises RuntimeError subclasses of its own
        raise ModelError(f"OpenVINO cannot compile a model stage: {exc}") from exc
    request = compiled.create_infer_request()
    names = [port.get_any_name() for port in compiled.inputs]

    def score(feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        results = request.infer({name: feed[name] for name in names})
        return [np.array(results[port]) for port in compiled.outputs]

    return score


def onnxruntime_stage(proto: onnx.ModelProto, *, threads: int) -> Scorer:
    """Open one stage in ONNX Runtime; return a scorer of ``{input: array}``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            proto.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"ONNX Runtime cannot load a model stage: {exc}") from exc
    names = [i.name for i in session.get_inputs()]

    def score(feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(None, {name: feed[name] for name in names})

    return score
