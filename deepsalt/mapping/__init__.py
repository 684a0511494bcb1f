"""Distributed mapping: grid + tile plan → Ray Data actor pool → sharded Zarr v3 salinity map.

The names below are imported on first use (:mod:`deepsalt.lazy`): an actor imports
``deepsalt.mapping.worker``, which runs this file first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepsalt.lazy import lazy_names

if TYPE_CHECKING:
    from deepsalt.mapping.config import MapConfig
    from deepsalt.mapping.predictor import ModelCard, Predictor
    from deepsalt.mapping.run import MapSummary, run_map

__all__ = ["MapConfig", "MapSummary", "ModelCard", "Predictor", "run_map"]
__getattr__ = lazy_names(
    __name__,
    {
        "MapConfig": "deepsalt.mapping.config",
        "MapSummary": "deepsalt.mapping.run",
        "ModelCard": "deepsalt.mapping.predictor",
        "Predictor": "deepsalt.mapping.predictor",
        "run_map": "deepsalt.mapping.run",
    },
)
