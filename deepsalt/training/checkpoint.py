"""Checkpoint directories at any fsspec URL: ``weights.pt`` + ``meta.json``, with lineage checks.

The checkpoint id is the SHA-256 (16 hex) of ``weights.pt``; loading recomputes it, so weights
that do not belong to their metadata are caught. ``meta.json`` is written last: a directory
without it is an unfinished checkpoint. The resume state of a running stage (model, optimiser,
early-stopping counters) lives beside it in ``resume.pt`` and is deleted once the stage is done.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import fsspec
import numpy as np
import torch
from pydantic import Field

from deepsalt import __version__
from deepsalt.config import FrozenModel
from deepsalt.errors import InputDataError, LineageError
from deepsalt.io.paths import join_url, read_bytes, read_verified, short_digest, write_bytes
from deepsalt.logs import get_logger
from deepsalt.training.builders import Architecture
from deepsalt.training.config import Stage

log = get_logger(__name__)

WEIGHTS = "weights.pt"
META = "meta.json"
RESUME = "resume.pt"
PARTIAL = ".partial"
"""Suffix of a resume state being written (see :func:`save_resume`)."""


class CheckpointMeta(FrozenModel):
    """What ``meta.json`` holds."""

    stage: Stage
    checkpoint_id: str
    config: dict[str, Any]
    config_hash: str
    stage_key: str
    """Hash of everything that determines the weights (settings, data, parents): equal key = reusable."""
    band_axis: dict[str, list[float]]
    """Input axes: ``wavelength`` (nm) of the satellite bands and/or ``wavenumber`` (cm⁻¹) of the lab grid."""
    normalisation: dict[str, Any]
    parents: dict[str, str]
    architecture: Architecture
    metrics: dict[str, float] = Field(default_factory=dict)
    created: str = ""
    software_version: str = ""


def _exists(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return fs.exists(path)


def save_checkpoint(url: str, state_dict: dict[str, torch.Tensor], **meta: Any) -> CheckpointMeta:
    """Write weights then metadata; returns the metadata with its content-derived id."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    payload = buffer.getvalue()
    full = CheckpointMeta(
        checkpoint_id=short_digest(payload),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        software_version=__version__,
        **meta,
    )
    write_bytes(join_url(url, WEIGHTS), payload)
    write_bytes(join_url(url, META), full.model_dump_json(indent=1).encode())
    log.info(
        "checkpoint written", extra={"url": url, "stage": full.stage, "checkpoint_id": full.checkpoint_id}
    )
    return full


def read_meta(url: str, stage: Stage | None = None) -> CheckpointMeta:
    """The metadata of a finished checkpoint; ``stage`` (when given) must match."""
    meta = _parse_meta(url, _read_meta_bytes(url))
    if stage is not None and meta.stage != stage:
        raise LineageError(f"{url}: is a '{meta.stage}' checkpoint, expected '{stage}'")
    return meta


def _read_meta_bytes(url: str) -> bytes:
    try:
        return read_bytes(join_url(url, META))
    except FileNotFoundError as exc:
        raise InputDataError(url, f"no checkpoint here ({META} missing)") from exc


def _parse_meta(url: str, blob: bytes) -> CheckpointMeta:
    try:
        return CheckpointMeta.model_validate_json(blob)
    except ValueError as exc:
        raise InputDataError(join_url(url, META), f"invalid checkpoint metadata: {exc}") from exc


def content_hash(url: str) -> str:
    """SHA-256 (16 hex) of ``meta.json``, once the weights' bytes match the hash it records (they
    are read, not loaded): one value that changes with the weights, the statistics or the band axis."""
    blob = _read_meta_bytes(url)  # once: the hash is of the bytes that were checked
    _verified_weights(url, _parse_meta(url, blob))
    return short_digest(blob)


def has_checkpoint(url: str) -> bool:
    return _exists(join_url(url, META))


def load_checkpoint(url: str, stage: Stage | None = None) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Weights (on CPU) and metadata; raises LineageError when the weights are not the ones recorded."""
    meta = read_meta(url, stage)
    return load_weights(url, meta), meta


def load_weights(url: str, meta: CheckpointMeta) -> dict[str, torch.Tensor]:
    """Weights (on CPU) of the checkpoint whose metadata the caller has already read; raises
    LineageError when they are not the ones ``meta`` records (replaced since it was read)."""
    payload = _verified_weights(url, meta)
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _verified_weights(url: str, meta: CheckpointMeta) -> bytes:
    return read_verified(url, WEIGHTS, META, meta.checkpoint_id)


def check_axis(
    name: str, expected: np.ndarray | list[float], actual: np.ndarray | list[float], where: str
) -> None:
    """Input axes must agree to 1e-3 (nm or cm⁻¹); a model never sees spectra on another grid."""
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if expected.shape != actual.shape or not np.allclose(expected, actual, atol=1e-3):
        raise LineageError(
            f"{where}: {name} axis mismatch: checkpoint has {expected.size} values "
            f"({_span(expected)}), data has {actual.size} ({_span(actual)})"
        )


def _span(axis: np.ndarray) -> str:
    return f"{axis[0]:.1f}–{axis[-1]:.1f}" if axis.size else "empty"


def save_resume(url: str, state: dict[str, Any]) -> None:
    """Write the resume state beside its name and move it into place: a run killed while writing
    (the reason a resume state exists) leaves the previous epoch's state readable, not a truncated
    file. A local move is a rename; an object store's copy is one whole PUT."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    partial = join_url(url, RESUME + PARTIAL)
    write_bytes(partial, buffer.getvalue())
    fs, path = fsspec.core.url_to_fs(partial)
    fs.mv(path, path.removesuffix(PARTIAL))


def load_resume(url: str) -> dict[str, Any] | None:
    """The resume state of an interrupted run, or None."""
    target = join_url(url, RESUME)
    if not _exists(target):
        return None
    return torch.load(io.BytesIO(read_bytes(target)), map_location="cpu", weights_only=False)


def clear_resume(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(join_url(url, RESUME))
    for leftover in (path, path + PARTIAL):
        if fs.exists(leftover):
            fs.rm(leftover)


def to_json_array(values: np.ndarray | torch.Tensor) -> list[float]:
    return np.asarray(values, dtype=float).round(8).tolist()


def stage_key(*parts: Any) -> str:
    """Stable hash of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
