"""Distributed mapping: grid + tile plan → Ray Data actor pool → sharded Zarr v3 salinity map.

The names below are imported on first use (PEP 562): a mapping actor imports
``deepsalt.mapping.worker``, which runs this file first, and must not pay for the driver's side
(xarray, dask, the pyramid) on every start.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepsalt.mapping.config import MapConfig
    from deepsalt.mapping.predictor import ModelCard, Predictor
    from deepsalt.mapping.run import MapSummary, run_map

_HOME = {
    "MapConfig": "deepsalt.mapping.config",
    "MapSummary": "deepsalt.mapping.run",
    "ModelCard": "deepsalt.mapping.predictor",
    "Predictor": "deepsalt.mapping.predictor",
    "run_map": "deepsalt.mapping.run",
}
__all__ = ["MapConfig", "MapSummary", "ModelCard", "Predictor", "run_map"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)
