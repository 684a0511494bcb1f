"""The whole chain on the embedded demo region: synth → train → map → baselines → map the best
baseline → score both maps against the truth.

``deepsalt demo`` is the quick start, and it answers the question a user asks first: is the
DeepSalt map better than what I could make today? So the best of the baselines (chosen by a quick
spatial-block CV, :mod:`deepsalt.evaluation`) is fitted on every measured sample and mapped
through the same pipeline, and both maps are scored against the world's truth on the same pixels.
Every stage is resumable, so a rerun reuses what is already there: regions whose manifest
matches the settings, checkpoints that match their settings and data, and map tiles with a
completion record.
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
BASELINE_PREDICTOR = "deepsalt.evaluation.baseline_predictor:BaselinePredictor"
DEEPSALT_MAP, BASELINE_MAP = "deepsalt", "best_baseline"
"""Keys of the two maps in ``map_vs_truth.json``."""

# What --quick changes.
QUICK: dict[str, dict[str, Any]] = {"synth": {"size": "small"}, "train": {"preset": "quick"}}


class DemoConfig(StageConfig):
    """Where the demo writes, and per-stage settings on top of each stage's defaults."""

    output: str = "demo_output"
    """Folder (URL) for regions, checkpoints, the map, quicklooks and reports."""
    seed: int = 0
    size: SizeName = "default"
    """Demo world size preset (small / medium / default)."""
    quick: bool = False
    """A first look in about two minutes: small world, quick training."""
    synth: dict[str, Any] = Field(default_factory=dict)
    """SynthConfig fields for both regions (``region``/``seed``/``size`` are set by the demo)."""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields (``regions``/``output`` are set by the demo)."""
    map: dict[str, Any] = Field(default_factory=dict)
    """MapConfig fields (region, grid CRS, inputs, model and output are set by the demo)."""
    evaluate: dict[str, Any] = Field(default_factory=dict)
    """EvaluateConfig fields of the demo's block CV (regions and output are set by the demo). By
    default it cross-validates the baselines only, with one seed, to choose the one to map."""

    @model_validator(mode="after")
    def _stages_valid(self, info: ValidationInfo) -> DemoConfig:
        """Validate every stage's settings now, so that a bad field fails before any work."""
        source = source_of(info)
        self.synth_config(SEEN, source)
        self.train_config(source)
        self.evaluate_config(source)
        fields = self._map_fields("http://stac.invalid", [0, 0, 1, 1], "EPSG:5070", "x", {"student_url": "y"})
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
        section = self._section("evaluate")
        fields = {
            "seeds": [self.seed],
            "fold_seed": self.seed,
            "variants": {},
            **section,
            "region": self.region_url(SEEN),
            # the demo's CV only chooses the baseline to map (by held-out-block MAE)
            "unseen_region": None,
            "output": f"{self.root}/report",
            # Cross-validation trains every variant once per fold: the quick preset keeps it short.
            "training": {"preset": "quick", **self.train, **section.get("training", {})},
        }
        return validate(EvaluateConfig, fields, source, "evaluate")

    def _map_fields(
        self,
        stac_url: str,
        bounds: list[float],
        crs: str,
        covariates_url: str,
        model: dict[str, str],
        survey_url: str | None = None,
        output: dict[str, str | None] | None = None,
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
            "model": {**extra.get("model", {}), **model},
            "output": {
                "pyramid_min_size": 128,
                **extra.get("output", {}),
                **(output or {"url": self.map_url, "quicklook_dir": f"{self.root}/quicklooks"}),
            },
        }

    def map_config(
        self, manifest: RegionManifest, stac_url: str, student_url: str, baseline: bool = False
    ) -> MapConfig:
        """The map of the student, or (``baseline``) of the baseline checkpoint at ``student_url``
        into its own store, with the same grid, inputs and mapping settings."""
        a, _, c, _, e, f = manifest.transform
        rows, cols = manifest.shape
        bounds = [c, f + e * rows, c + a * cols, f]
        covariates = manifest.href("covariates")
        survey = manifest.href(manifest.files.survey["export"])
        model = {"student_url": student_url}
        output = None
        if baseline:
            model["predictor"] = BASELINE_PREDICTOR
            output = {"url": self.baseline_map_url, "quicklook_dir": None}
        fields = self._map_fields(stac_url, bounds, manifest.crs, covariates, model, survey, output)
        return validate(MapConfig, fields, "<demo config>", "map")

    def region_url(self, region: str) -> str:
        return f"{self.root}/regions/{region}"

    @property
    def map_url(self) -> str:
        return f"{self.root}/map.zarr"

    @property
    def baseline_map_url(self) -> str:
        return f"{self.root}/baseline_map.zarr"

    @property
    def baseline_url(self) -> str:
        """The best baseline's checkpoint folder."""
        return f"{self.root}/runs/baseline"


@dataclass
class DemoSummary:
    """Where everything went and how good both maps are; ``seconds`` per stage."""

    map_url: str
    baseline_map_url: str
    baseline: str
    """The best baseline's name (lowest MAE on held-out blocks in the demo's block CV)."""
    quicklook_dir: str
    report_url: str
    map_scores: dict[str, dict[str, Any]]
    """``map_vs_truth.json``: ``deepsalt`` and ``best_baseline`` scored on the same pixels."""
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
    """Run the whole chain; returns where the outputs are and the accuracy of both maps."""
    from deepsalt.errors import ConfigError
    from deepsalt.evaluation import run_evaluation
    from deepsalt.evaluation.baseline_predictor import fit_baseline_checkpoint
    from deepsalt.evaluation.baselines import baseline_key
    from deepsalt.evaluation.blocks import block_ids
    from deepsalt.evaluation.map_accuracy import score_maps
    from deepsalt.evaluation.models import baseline_settings
    from deepsalt.io.stac_server import serve_stac
    from deepsalt.mapping import run_map
    from deepsalt.training.pipeline import PAIRING_REPORT, load_training_data, run_training

    evaluate = config.evaluate_config()
    if not evaluate.baselines:
        raise ConfigError(
            "<demo config>", "evaluate.baselines", "the demo maps the best baseline: list at least one"
        )
    seconds: dict[str, float] = {}

    def timed(stage: str, started: float) -> None:
        seconds[stage] = round(time.perf_counter() - started, 1)
        log.info("demo stage done", extra={"stage": stage, "seconds": seconds[stage]})

    t = time.perf_counter()
    seen, _unseen = _region(config, SEEN), _region(config, UNSEEN)
    timed("synth", t)

    t = time.perf_counter()
    train_config = config.train_config()
    data, pairing = load_training_data(train_config)
    pairing.write(f"{train_config.output.rstrip('/')}/{PAIRING_REPORT}")
    timed("training data", t)

    t = time.perf_counter()
    student_url = run_training(train_config, data=data)["student"]
    timed("train", t)

    t = time.perf_counter()
    evaluation = run_evaluation(evaluate, seen=data)
    assert evaluation.best_baseline is not None  # evaluate.baselines is not empty (checked above)
    timed("baselines (block CV)", t)

    t = time.perf_counter()
    key = baseline_key(evaluation.best_baseline)
    blocks = block_ids(data.lat, data.lon, evaluate.crs or seen.crs, evaluate.block_size_km)
    fit_baseline_checkpoint(config.baseline_url, key, data, blocks, baseline_settings(evaluate), config.seed)
    timed("fit best baseline", t)

    with serve_stac(seen.href(seen.files.stac_collection), seen.href(seen.files.stac_items)) as stac_url:
        t = time.perf_counter()
        # restart: the demo owns its output, so a retrained model replaces its old map
        summary = run_map(config.map_config(seen, stac_url, student_url), restart=True)
        timed("map", t)
        t = time.perf_counter()
        baseline_summary = run_map(
            config.map_config(seen, stac_url, config.baseline_url, baseline=True), restart=True
        )
        timed("map best baseline", t)

    t = time.perf_counter()
    # every lab sample's pixel was trained on (DeepSalt uses the MIR-only samples too): none is scored
    scores = score_maps(
        {DEEPSALT_MAP: summary.store_url, BASELINE_MAP: baseline_summary.store_url},
        seen.truth_url,
        data.lat,
        data.lon,
    )
    scores[BASELINE_MAP] = {"model": evaluation.best_baseline, **scores[BASELINE_MAP]}
    with fsspec.open(f"{config.root}/map_vs_truth.json", "w") as fh:
        json.dump(scores, fh, indent=1)
    timed("score maps", t)

    return DemoSummary(
        map_url=summary.store_url,
        baseline_map_url=baseline_summary.store_url,
        baseline=evaluation.best_baseline,
        quicklook_dir=f"{config.root}/quicklooks",
        report_url=evaluation.report_url,
        map_scores=scores,
        map_ok=summary.ok and baseline_summary.ok,
        seconds=seconds,
    )
