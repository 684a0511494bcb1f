"""The small demo world as ``deepsalt demo --quick`` makes it, built once per test session.

The small demo region (real EnMAP L2A layout, lab table, covariate COGs, STAC catalogue) and a
student trained on it for a few epochs: the tests that use it are about the way through the
system (errors, the cluster, secrets), not about the model's skill.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsalt.synth.manifest import RegionManifest

FEW_EPOCHS = {"epochs": 4, "patience": 2}


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


def build_demo_world(root: Path, region: RegionManifest) -> DemoWorld:
    """A student trained for a few epochs on ``region`` (the small demo region), under ``root``."""
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import run_training

    config = TrainConfig(
        regions=[region.url],
        output=str(root / "runs"),
        preset="quick",
        data={"pool_size": 500},
        sau=FEW_EPOCHS,
        teacher=FEW_EPOCHS,
        student=FEW_EPOCHS,
    )
    return DemoWorld(root, region, run_training(config))
