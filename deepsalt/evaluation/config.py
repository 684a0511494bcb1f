"""Settings of ``deepsalt evaluate``: regions, spatial blocks, seeds, the models compared, the report folder."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from deepsalt.config import StageConfig, validate
from deepsalt.evaluation.baselines import BaselineName
from deepsalt.training.config import TrainConfig

FULL_MODEL = "DeepSalt"
# The ablations: TrainConfig switches that remove one part of the method each.
ABLATIONS: dict[str, dict[str, Any]] = {
    "without SAU": {"use_sau": False},
    "without distillation": {"distill": False},
    "without covariates": {"use_covariates": False},
    "without the survey input": {"use_survey": False},
    "transformer head (paper)": {"model": {"head": "transformer"}},
}
PARTS = ("without SAU", "without distillation", "without covariates")
"""The ablations whose part must earn its place (a target each: removing it must cost MAE)."""
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {FULL_MODEL: {}, **ABLATIONS}


class EvaluateConfig(StageConfig):
    region: str
    """Seen region folder URL (deepsalt.synth layout): cross-validated over spatial blocks."""
    unseen_region: str | None = None
    """Region never trained on: models fitted on the whole seen region predict its samples."""
    output: str = "results/demo"
    """Report folder URL: report.md, the PNG plots, predictions.csv, metrics.json."""
    work_dir: str | None = None
    """Checkpoint root for the trained variants; default ``<output>/runs``."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Training seeds of DeepSalt and of the stochastic baselines: every model is fitted once per seed
    on every fold; the report gives the mean and the spread over seeds."""
    fold_seed: int = 0
    """Fixes the folds and the pixel pool drawn from the scenes (the same for every seed)."""
    threads: int = Field(1, ge=1)
    """CPU threads for the scikit-learn baselines (the variants use ``training.threads``)."""
    block_size_km: PositiveFloat = 3.0
    """Side of the square spatial blocks; whole blocks are held out."""
    n_folds: int = Field(5, ge=2)
    crs: str | None = None
    """Projected CRS of the block grid; default the seen region's CRS."""
    inner_folds: int = Field(5, ge=2)
    """Inner, block-grouped CV folds of the baselines (PLSR components, the residual spread)."""
    plsr_max_components: PositiveInt = 20
    baselines: tuple[BaselineName, ...] = ("survey_map", "plsr", "random_forest", "gradient_boosting")
    reference: bool = True
    """Also score each sample's true 30 m pixel ECe (regions with a truth raster, e.g. deepsalt synth):
    the ceiling of any pixel-based model, beside the targets."""
    map_scores: str | None = None
    """``map_vs_truth.json`` of ``deepsalt demo`` on the same region: adds the map targets to the report."""
    variants: dict[str, dict[str, Any]] = Field(default_factory=lambda: dict(DEFAULT_VARIANTS))
    """Name → TrainConfig fields overriding ``training`` for that DeepSalt variant."""
    training: dict[str, Any] = Field(default_factory=lambda: {"preset": "quick"})
    """TrainConfig fields shared by every variant (``regions``, ``output`` and ``seed`` are set per fit)."""

    @field_validator("variants")
    @classmethod
    def _variants_known(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in value.items():
            if {"regions", "output", "seed"} & set(overrides):
                raise ValueError(f"variant '{name}': 'regions', 'output' and 'seed' are set by the evaluator")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value

    @model_validator(mode="after")
    def _variants_valid(self) -> EvaluateConfig:
        if self.variants and FULL_MODEL not in self.variants:
            raise ValueError(f"variants must include '{FULL_MODEL}' (the targets are about it)")
        if "seed" in self.training:
            raise ValueError("training.seed is set by the evaluator: list the seeds in 'seeds'")
        for name in self.variants:  # fail before any work when a variant's training settings are bad
            self.train_config(name, "memory://check", self.seeds[0])
        return self

    def train_config(self, variant: str, output: str, seed: int) -> TrainConfig:
        """The validated TrainConfig of ``variant`` (shared settings alone when unknown) trained with
        ``seed``, writing its checkpoints under ``output``."""
        merged = _deep_merge(self.training, self.variants.get(variant, {}))
        merged.update(regions=[], output=output, seed=seed)
        return validate(TrainConfig, merged, f"<evaluate config: variants.{variant}>")

    def checkpoints(self) -> str:
        return (self.work_dir or f"{self.output.rstrip('/')}/runs").rstrip("/")


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out
