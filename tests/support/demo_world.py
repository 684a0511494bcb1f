"""The small demo world as ``deepsalt demo --quick`` makes it, built once per test session.

The small demo region (real EnMAP L2A layout, lab table, covariate COGs, STAC catalogue) and the
chain the quick preset trains on it (``demo_world`` in ``tests/conftest.py``): the tests that use
it are about the way through the system (errors, the cluster, secrets), not about the model's skill.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsalt.synth.manifest import RegionManifest


@dataclass(frozen=True)
class DemoWorld:
    root: Path
    region: RegionManifest
    checkpoints: dict[str, str]

    @property
    def student(self) -> str:
        return self.checkpoints["student"]

    def stac_inputs(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The region's STAC collection and items, to serve from a STAC API."""
        region = Path(self.region.url)
        collection = json.loads((region / self.region.files.stac_collection).read_text())
        lines = (region / self.region.files.stac_items).read_text().splitlines()
        return collection, [json.loads(line) for line in lines]

    def map_settings(self, stac_url: str, store_url: str) -> dict[str, Any]:
        """A map config (as YAML-able dict) of the whole region: 2 × 2 tiles of 128 px."""
        a, _, c, _, e, f = self.region.transform
        rows, cols = self.region.shape
        return {
            "region": {"bounds": [c, f + e * rows, c + a * cols, f]},
            "grid": {"crs": self.region.crs, "resolution": a, "chunk": 64, "shard": 128},
            "inputs": {"stac_url": stac_url, "covariates_url": str(Path(self.region.url) / "covariates")},
            "model": {"student_url": self.student, "block": 128},
            "output": {"url": store_url, "pyramid_min_size": 64},
            "ray": {"num_actors": 1, "num_cpus": 0.5, "retries": 0},
        }
