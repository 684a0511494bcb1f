"""Distributed mapping: grid + tile plan → Ray Data actor pool → sharded Zarr v3 salinity map."""

from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.predictor import ModelCard, Predictor
from deepsalt.mapping.run import MapSummary, run_map

__all__ = ["MapConfig", "MapSummary", "ModelCard", "Predictor", "run_map"]
