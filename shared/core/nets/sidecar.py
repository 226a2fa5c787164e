"""A model's card: the ``<version>.json`` sidecar beside ``<version>.keras``, without TensorFlow.

The sidecar holds ``version``, ``genres`` (in output order), ``feature_config``, ``metrics``,
``data_fingerprint`` and ``created_at``. This module imports only the standard library, so the
web process and the registry can read model cards without numpy or TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from shared.errors import ModelError

MODEL_SUFFIX: Final = ".keras"
SIDECAR_SUFFIX: Final = ".json"
CONFUSION_SUFFIX: Final = ".confusion.png"
#: The served artefact beside the ``.keras`` file: the same network as an ONNX graph.
ONNX_SUFFIX: Final = ".onnx"


def model_path_for(out_dir: str | Path, version: str) -> Path:
    """Return where model ``version`` is saved in ``out_dir`` (``<version>.keras``)."""
    return Path(out_dir) / f"{version}{MODEL_SUFFIX}"


def sidecar_path(model_path: str | Path) -> Path:
    """Return the sidecar JSON path that belongs to a ``.keras`` file."""
    return Path(model_path).with_suffix(SIDECAR_SUFFIX)


def onnx_path(model_path: str | Path) -> Path:
    """Return the path of the served ONNX artefact that belongs to a ``.keras`` file."""
    return Path(model_path).with_suffix(ONNX_SUFFIX)


def confusion_png_path(model_path: str | Path) -> Path:
    """Return where training writes the confusion matrix of a model (``<stem>.confusion.png``)."""
    path = Path(model_path)
    return path.with_name(path.stem + CONFUSION_SUFFIX)


def model_card_path(model_path: str | Path) -> Path | None:
    """Return the model card (Markdown) named by a model's sidecar, if it has one on disk.

    The sidecar's ``card`` is a file name in the model's folder (the shipped model's
    ``MODEL_CARD.md``). A missing or unreadable sidecar, or no ``card``, gives ``None``.
    """
    path = Path(model_path)
    try:
        name = json.loads(sidecar_path(path).read_text(encoding="utf-8")).get("card")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or "/" in name or "\\" in name:
        return None
    card = path.parent / name
    return card if card.is_file() else None


def read_sidecar(model_path: str | Path) -> dict[str, Any]:
    """Read and check the sidecar JSON of a ``.keras`` model file.

    Parameters
    ----------
    model_path : str or Path
        The ``.keras`` file; its sidecar is ``<stem>.json`` in the same folder.

    Returns
    -------
    dict
        The sidecar, with at least ``version`` (str; the file's stem when the card has none)
        and ``genres`` (non-empty list of str).

    Raises
    ------
    ModelError
        If the model file or its sidecar is missing, or the sidecar is not valid.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist.")
    sidecar = sidecar_path(path)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"Model sidecar {sidecar.name} is missing beside {path.name}.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"Model sidecar {sidecar.name} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ModelError(f"Model sidecar {sidecar.name} is not a JSON object.")
    version = data.get("version") or path.stem
    genres = data.get("genres")
    if not isinstance(version, str) or not version.strip() or "/" in version:
        raise ModelError(f"Model sidecar {sidecar.name} has an invalid version {version!r}.")
    if not isinstance(genres, list) or not genres or not all(isinstance(g, str) for g in genres):
        raise ModelError(f"Model sidecar {sidecar.name} must list the model's genres.")
    data["version"] = version
    return data


def write_sidecar(model_path: str | Path, card: dict[str, Any], *, default: Any = None) -> Path:
    """Write ``card`` as the sidecar of ``model_path``; return the sidecar's path.

    Parameters
    ----------
    model_path : str or Path
        The ``.keras`` file the card describes.
    card : dict
        JSON-serialisable (with ``default`` converting what is not).
    default : callable, optional
        ``json.dumps``'s ``default`` (e.g. numpy scalars to Python numbers).
    """
    path = sidecar_path(model_path)
    path.write_text(json.dumps(card, indent=2, default=default), encoding="utf-8")
    return path
