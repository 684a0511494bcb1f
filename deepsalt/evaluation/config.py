"""Settings of ``deepsalt evaluate``: regions, spatial blocks, the models compared, the report folder."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from deepsalt.config import StageConfig, validate
from deepsalt.training.config import TrainConfig

BaselineName = Literal["plsr", "random_forest", "gradient_boosting"]

# TrainConfig switches of each DeepSalt variant (the rows of the Table-III-style ablation).
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "DeepSalt": {},
    "DeepSalt, one token": {"model": {"tokens": 1}},
    "without SAU (unaligned encoders)": {"use_sau": False},
    "satellite + covariates, no distillation": {"distill": False},
    "satellite-only student": {"distill": False, "use_covariates": False},
    "covariates-only": {"distill": False, "use_satellite": False},
}
FULL_MODEL = "DeepSalt"
SATELLITE_ONLY = "satellite-only student"


class EvaluateConfig(StageConfig):
    region: str
    """Seen region folder URL (deepsalt.synth layout): cross-validated over spatial blocks."""
    unseen_region: str | None = None
    """Region never trained on: models fitted on the whole seen region predict its samples."""
    output: str = "results/demo"
    """Report folder URL: report.md, the PNG plots, predictions.csv, metrics.json."""
    work_dir: str | None = None
    """Checkpoint root for the trained variants; default ``<output>/runs``."""
    seed: int = 0
    threads: int = Field(1, ge=1)
    """CPU threads for the scikit-learn baselines (the variants use ``training.threads``)."""
    block_size_km: PositiveFloat = 3.0
    """Side of the square spatial blocks; whole blocks are held out."""
    n_folds: int = Field(5, ge=2)
    crs: str | None = None
    """Projected CRS of the block grid; default the seen region's CRS."""
    inner_folds: int = Field(5, ge=2)
    """Inner, block-grouped CV folds for tuning the baselines (PLSR components)."""
    plsr_max_components: PositiveInt = 20
    baselines: tuple[BaselineName, ...] = ("plsr", "random_forest", "gradient_boosting")
    reference: bool = True
    """Also score each sample's true 30 m pixel ECe (regions with a truth raster, e.g. deepsalt synth):
    the ceiling of any pixel-based model, beside the targets."""
    variants: dict[str, dict[str, Any]] = Field(default_factory=lambda: dict(DEFAULT_VARIANTS))
    """Name → TrainConfig fields overriding ``training`` for that DeepSalt variant."""
    training: dict[str, Any] = Field(default_factory=lambda: {"preset": "quick"})
    """TrainConfig fields shared by every variant (``regions`` and ``output`` are set per fold)."""

    @field_validator("variants")
    @classmethod
    def _variants_known(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in value.items():
            if {"regions", "output"} & set(overrides):
                raise ValueError(f"variant '{name}': 'regions' and 'output' are set by the evaluator")
        return value

    @model_validator(mode="after")
    def _variants_valid(self) -> EvaluateConfig:
        if self.variants and FULL_MODEL not in self.variants:
            raise ValueError(f"variants must include '{FULL_MODEL}' (the targets are about it)")
        for name in self.variants:  # fail before any work when a variant's training settings are bad
            self.train_config(name, "memory://check")
        return self

    def train_config(self, variant: str, output: str) -> TrainConfig:
        """The validated TrainConfig of ``variant`` (shared settings alone when unknown) writing its checkpoints under ``output``."""
        merged = _deep_merge(self.training, self.variants.get(variant, {}))
        merged.update(regions=[], output=output, seed=merged.get("seed", self.seed))
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
