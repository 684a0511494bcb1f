"""Training settings: one validated model for the whole chain (SAU → teacher → student).

The variant switches (``use_sau``, ``distill``, ``use_covariates``, ``use_satellite``,
``model.tokens``) are how the ablations are trained. ``preset: quick`` fills every epoch count,
patience and the pixel-pool size that the YAML/CLI leave unset with small values, for tests and
smoke runs; explicit values always win.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from deepsalt.config import StageConfig

STAGES = ("sau", "teacher", "student")

QUICK = {
    "data": {"pool_size": 2000},
    "sau": {"epochs": 12, "patience": 4},
    "teacher": {"epochs": 40, "patience": 10},
    "student": {"epochs": 40, "patience": 10},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    pool_size: PositiveInt = 4000
    """Unlabelled clear pixels drawn for autoencoder pretraining (bounds memory)."""
    pair_radius_km: PositiveFloat = 0.045
    """Largest lab-sample ↔ pixel-centre distance accepted as a geo-pair (1.5 EnMAP pixels)."""
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    """Share of the samples held out inside each stage for early stopping and calibration."""


class ModelSettings(_Section):
    latent_dim: PositiveInt = 64
    d_model: PositiveInt = 32
    """Token width; small because the student runs on millions of pixels (cost ∝ tokens · d_model²)."""
    tokens: PositiveInt = 8
    """Latent chunks fed to attention as a sequence; 1 = the degenerate one-token variant."""
    ff_dim: PositiveInt = 64
    dropout: float = Field(0.1, ge=0, lt=1)
    target_transform: Literal["log1p", "none"] = "log1p"


class LoopSettings(_Section):
    epochs: PositiveInt = 200
    batch_size: PositiveInt = 64
    """Global batch: each of N Ray workers takes batch_size / N, so results do not depend on N."""
    lr: PositiveFloat = 2e-3
    weight_decay: float = Field(1e-4, ge=0)
    patience: PositiveInt = 25
    """Epochs without a validation improvement before stopping (best weights are kept)."""


class SAUSettings(LoopSettings):
    """An SAU epoch is one pass over the unlabelled pixel pool; every step also draws a batch of pairs."""

    epochs: PositiveInt = 20
    patience: PositiveInt = 6
    reconstruction_weight: PositiveFloat = 1.0
    align_weight: float = Field(1.0, ge=0)
    nce_weight: float = Field(0.0, ge=0)
    """In-batch negatives (InfoNCE); off by default: with a few hundred pairs it memorises the pairs
    (train cosine → 1, held-out cosine ≈ 0 on the demo region) instead of aligning the domains."""
    target_weight: float = Field(0.5, ge=0)
    """Shared linear salinity read-out on both latents (keeps salt in the latent; see models.sau)."""
    temperature: PositiveFloat = 0.1
    lab_hidden: tuple[PositiveInt, ...] = (128, 128)
    lab_binning: PositiveInt = 8
    """Adjacent lab spectral points averaged before the lab encoder (see models.autoencoder)."""
    sat_hidden: tuple[PositiveInt, ...] = (128, 128)


class TeacherSettings(LoopSettings):
    batch_size: PositiveInt = 32
    layers: PositiveInt = 3
    heads: PositiveInt = 8
    nll_weight: float = Field(0.5, ge=0)


class StudentSettings(LoopSettings):
    batch_size: PositiveInt = 32
    layers: PositiveInt = 4
    heads: PositiveInt = 8
    alpha: float = Field(0.07, ge=0)
    beta: float = Field(0.90, ge=0)
    gamma: float = Field(0.10, ge=0)
    nll_weight: float = Field(0.5, ge=0)
    freeze_encoder: bool = True
    """Keep the SAU's satellite encoder as aligned (True) or fine-tune it with the student."""
    domain_quantile: float = Field(0.95, gt=0, lt=1)
    """Held-out distance quantile that maps to domain_score = 1."""


class RaySettings(_Section):
    num_workers: int = Field(0, ge=0)
    """0 = run in this process without Ray; N ≥ 1 = Ray Train TorchTrainer with N workers."""
    use_gpu: bool = False
    cpus_per_worker: PositiveFloat = 0.5
    max_failures: int = Field(0, ge=0)
    """Worker-group restarts Ray Train attempts; each restart resumes from the last epoch."""


class TrainConfig(StageConfig):
    regions: list[str] = Field(default_factory=list)
    """Demo region folder URLs (deepsalt.synth layout) whose samples are trained on together."""
    output: str = "runs/deepsalt"
    """Checkpoint root URL: <output>/sau, <output>/teacher, <output>/student."""
    seed: int = 0
    preset: Literal["default", "quick"] = "default"
    threads: PositiveInt = 1
    """torch CPU threads per worker: the networks are small, so more threads mostly add overhead."""
    use_sau: bool = True
    """False: the autoencoders train without alignment (the unaligned ablation)."""
    distill: bool = True
    """False: the student learns from the task loss only (no teacher stage needed)."""
    use_covariates: bool = True
    use_satellite: bool = True
    """False: covariates-only student (no satellite latent)."""
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    sau: SAUSettings = SAUSettings()
    teacher: TeacherSettings = TeacherSettings()
    student: StudentSettings = StudentSettings()
    ray: RaySettings = RaySettings()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "quick":
            data = dict(data)
            for section, values in QUICK.items():
                given = dict(data.get(section) or {})
                data[section] = {**values, **given}
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if not (self.use_satellite or self.use_covariates):
            raise ValueError("use_satellite and use_covariates cannot both be false")
        if self.model.latent_dim % self.model.tokens:
            raise ValueError(
                f"model.tokens ({self.model.tokens}) must divide model.latent_dim ({self.model.latent_dim})"
            )
        for name in ("teacher", "student"):
            if self.model.d_model % getattr(self, name).heads:
                raise ValueError(f"{name}.heads must divide model.d_model ({self.model.d_model})")
        return self

    def stage_url(self, stage: str) -> str:
        return f"{self.output.rstrip('/')}/{stage}"
