"""The whole chain on the embedded demo region: synth → train → map → score → evaluate.

``deepsalt demo`` is the quick start. Every stage is resumable, so a rerun reuses what is
already there: regions whose manifest matches the settings, checkpoints that match their
settings and data, and map tiles with a completion record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import fsspec
from pydantic import Field, ValidationInfo, model_validator

from deepsalt.config import StageConfig, source_of, validate
from deepsalt.evaluation.config import EvaluateConfig
from deepsalt.logs import get_logger
from deepsalt.mapping.config import MapConfig
from deepsalt.synth.config import SizeName, SynthConfig
from deepsalt.synth.manifest import RegionManifest
from deepsalt.training.config import TrainConfig

log = get_logger(__name__)

SEEN, UNSEEN = "demo", "demo_unseen"

# What --quick changes besides skipping the cross-validated evaluation.
QUICK: dict[str, dict[str, Any]] = {"synth": {"size": "small"}, "train": {"preset": "quick"}}


class DemoConfig(StageConfig):
    """Where the demo writes, and per-stage settings on top of each stage's defaults."""

    output: str = "demo_output"
    """Folder (URL) for regions, checkpoints, the map, quicklooks and reports."""
    seed: int = 0
    size: SizeName = "default"
    """Demo world size preset (small / medium / default)."""
    quick: bool = False
    """A first look in about two minutes: small world, quick training, the map scored against the
    truth but no cross-validated evaluation (that trains every model once per fold)."""
    synth: dict[str, Any] = Field(default_factory=dict)
    """SynthConfig fields for both regions (``region``/``seed``/``size`` are set by the demo)."""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields (``regions``/``output`` are set by the demo)."""
    map: dict[str, Any] = Field(default_factory=dict)
    """MapConfig fields (region, grid CRS, inputs, model and output are set by the demo)."""
    evaluate: dict[str, Any] = Field(default_factory=dict)
    """EvaluateConfig fields (regions and output are set by the demo)."""

    @model_validator(mode="after")
    def _stages_valid(self, info: ValidationInfo) -> DemoConfig:
        """Validate every stage's settings now, so that a bad field fails before any work."""
        source = source_of(info)
        self.synth_config(SEEN, source)
        self.train_config(source)
        self.evaluate_config(source)
        fields = self._map_fields("http://stac.invalid", [0, 0, 1, 1], "EPSG:5070", "x", "y")
        validate(MapConfig, fields, source, "map")
        return self

    def _section(self, name: str) -> dict[str, Any]:
        quick = QUICK.get(name, {}) if self.quick else {}
        return {**quick, **getattr(self, name)}

    @property
    def root(self) -> str:
        return self.output.rstrip("/")

    def synth_config(self, region: str, source: str = "<demo config>") -> SynthConfig:
        fields = {"size": self.size, **self._section("synth"), "region": region, "seed": self.seed}
        return validate(SynthConfig, fields, source, "synth")

    def train_config(self, source: str = "<demo config>") -> TrainConfig:
        fields = {**self._section("train"), "regions": [self.region_url(SEEN)], "output": f"{self.root}/runs"}
        return validate(TrainConfig, {"seed": self.seed, **fields}, source, "train")

    def evaluate_config(self, source: str = "<demo config>") -> EvaluateConfig:
        fields = {
            **self._section("evaluate"),
            "region": self.region_url(SEEN),
            "unseen_region": self.region_url(UNSEEN),
            "output": f"{self.root}/report",
            # Cross-validation trains every variant once per fold: the quick preset keeps it short.
            "training": {"preset": "quick", **self.train, **self._section("evaluate").get("training", {})},
        }
        return validate(EvaluateConfig, {"seed": self.seed, **fields}, source, "evaluate")

    def _map_fields(
        self,
        stac_url: str,
        bounds: list[float],
        crs: str,
        covariates_url: str,
        student_url: str,
        survey_url: str | None = None,
    ) -> dict[str, Any]:
        extra = self._section("map")
        return {
            **extra,
            "region": {"bounds": bounds},
            "grid": {"chunk": 256, "shard": 512, **extra.get("grid", {}), "crs": crs},
            "inputs": {
                **extra.get("inputs", {}),
                "stac_url": stac_url,
                "covariates_url": covariates_url,
                "survey_url": survey_url,
            },
            "model": {**extra.get("model", {}), "student_url": student_url},
            "output": {
                "pyramid_min_size": 128,
                **extra.get("output", {}),
                "url": self.map_url,
                "quicklook_dir": f"{self.root}/quicklooks",
            },
        }

    def map_config(self, manifest: RegionManifest, stac_url: str, student_url: str) -> MapConfig:
        a, _, c, _, e, f = manifest.transform
        rows, cols = manifest.shape
        bounds = [c, f + e * rows, c + a * cols, f]
        covariates = manifest.href("covariates")
        survey = manifest.href(manifest.files.survey["export"])
        fields = self._map_fields(stac_url, bounds, manifest.crs, covariates, student_url, survey)
        return validate(MapConfig, fields, "<demo config>", "map")

    def region_url(self, region: str) -> str:
        return f"{self.root}/regions/{region}"

    @property
    def map_url(self) -> str:
        return f"{self.root}/map.zarr"


@dataclass
class DemoSummary:
    """Where everything went and how good the map is; ``seconds`` per stage."""

    map_url: str
    quicklook_dir: str
    report_url: str | None
    map_scores: dict[str, float]
    map_ok: bool
    seconds: dict[str, float] = field(default_factory=dict)


def _region(config: DemoConfig, region: str) -> RegionManifest:
    """The demo region, generated unless a matching one is already there."""
    from deepsalt.errors import InputDataError
    from deepsalt.synth import generate_region, load_region

    synth = config.synth_config(region)
    try:
        existing = load_region(config.region_url(region))
        if existing.config_hash == synth.config_hash():
            log.info("region reused", extra={"region": region, "url": existing.url})
            return existing
    except InputDataError:
        pass
    return generate_region(synth, f"{config.root}/regions")


def run_demo(config: DemoConfig) -> DemoSummary:
    """Run the whole chain; returns where the outputs are and the map's accuracy."""
    from deepsalt.evaluation import run_evaluation
    from deepsalt.evaluation.map_accuracy import score_map
    from deepsalt.io import read_lab_spectra
    from deepsalt.io.stac_server import serve_stac
    from deepsalt.mapping import run_map
    from deepsalt.training.pipeline import run_training

    seconds: dict[str, float] = {}

    def timed(stage: str, started: float) -> None:
        seconds[stage] = round(time.perf_counter() - started, 1)
        log.info("demo stage done", extra={"stage": stage, "seconds": seconds[stage]})

    t = time.perf_counter()
    seen, _unseen = _region(config, SEEN), _region(config, UNSEEN)
    timed("synth", t)

    t = time.perf_counter()
    student_url = run_training(config.train_config())["student"]
    timed("train", t)

    t = time.perf_counter()
    with serve_stac(seen.href(seen.files.stac_collection), seen.href(seen.files.stac_items)) as stac_url:
        # restart: the demo owns its output, so a retrained student replaces the old map
        summary = run_map(config.map_config(seen, stac_url, student_url), restart=True)
    timed("map", t)

    t = time.perf_counter()
    samples = read_lab_spectra([seen.lab_url])
    scores = score_map(summary.store_url, seen.truth_url, samples["lat"].values, samples["lon"].values)
    with fsspec.open(f"{config.root}/map_vs_truth.json", "w") as fh:
        json.dump(scores, fh, indent=1)
    timed("score map", t)

    report_url = None
    if not config.quick:
        t = time.perf_counter()
        report_url = run_evaluation(config.evaluate_config()).report_url
        timed("evaluate", t)

    return DemoSummary(
        map_url=summary.store_url,
        quicklook_dir=f"{config.root}/quicklooks",
        report_url=report_url,
        map_scores=scores,
        map_ok=summary.ok,
        seconds=seconds,
    )
