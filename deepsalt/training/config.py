"""Training settings: one validated model for the whole chain (SAU → teacher → student).

The variant switches (``use_sau``, ``distill``, ``use_covariates``, ``use_survey``,
``use_satellite``, ``model.head``) are how the ablations are trained. ``preset: quick`` fills every
epoch count, patience and the pixel-pool size that the YAML/CLI leave unset with small values, for
tests and smoke runs; explicit values always win.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from deepsalt.activation import Activation
from deepsalt.config import FrozenModel, StageConfig
from deepsalt.inputs import TrainingInputs
from deepsalt.io.paths import AbsolutePath


class Stage(StrEnum):
    """The training stages, in the order they depend on each other."""

    SAU = "sau"
    TEACHER = "teacher"
    STUDENT = "student"


STAGES: tuple[Stage, ...] = tuple(Stage)

QUICK: dict[str, dict[str, Any]] = {
    "data": {"pool_size": 6000},
    Stage.SAU: {"epochs": 6, "patience": 3},
    Stage.TEACHER: {"epochs": 40, "patience": 8},
    Stage.STUDENT: {"epochs": 10, "patience": 4},
}
"""Settings sections ``preset: quick`` fills (a stage's section is named by its :class:`Stage`)."""


class DataSettings(FrozenModel):
    pool_size: PositiveInt = 20000
    """Clear pixels drawn from the scenes: unlabelled spectra for the autoencoders and the survey's
    map-unit labels for the student (bounds memory and epoch length)."""
    pair_radius_km: PositiveFloat = 0.045
    """Largest lab-sample ↔ pixel-centre distance accepted as a geo-pair (1.5 EnMAP pixels)."""
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    """Share of the samples held out inside each stage for early stopping and calibration."""


class ModelSettings(FrozenModel):
    latent_dim: PositiveInt = 32
    """Shared latent of the lab and satellite autoencoders."""
    head: Literal["mlp", "transformer"] = "mlp"
    """Teacher and student heads: residual MLP, or the paper's encoder-only transformer over latent tokens."""
    hidden: tuple[PositiveInt, ...] = (128, 64)
    """MLP head widths (one block per width); the feature term aligns teacher and student block by block."""
    dropout: float = Field(0.3, ge=0, lt=1)
    linear: bool = True
    """A linear path from the standardised inputs to the mean, beside the head."""
    target_transform: Literal["log1p", "none"] = "log1p"
    d_model: PositiveInt = 32
    """Transformer heads only: token width."""
    tokens: PositiveInt = 8
    """Transformer heads only: latent chunks fed to attention as a sequence."""
    ff_dim: PositiveInt = 64
    """Transformer heads only."""
    activation: Activation = Activation.GELU
    """Between the hidden layers of the autoencoders and the MLP heads (deepsalt/activation.py)."""


class LoopSettings(FrozenModel):
    epochs: PositiveInt = 200
    batch_size: PositiveInt = 64
    """Global batch: each of N Ray workers takes batch_size / N, so results do not depend on N."""
    lr: PositiveFloat = 2e-3
    weight_decay: float = Field(1e-4, ge=0)
    patience: PositiveInt = 25
    """Epochs without a validation improvement before stopping (best weights are kept)."""


class SAUSettings(LoopSettings):
    """An SAU epoch is one pass over the pixel pool; every step also draws library rows and geo-pairs."""

    epochs: PositiveInt = 15
    patience: PositiveInt = 5
    batch_size: PositiveInt = 256
    pair_batch: PositiveInt = 64
    """Geo-pairs and library rows drawn with each pool batch."""
    reconstruction_weight: PositiveFloat = 1.0
    align_weight: float = Field(1.0, ge=0)
    nce_weight: float = Field(0.0, ge=0)
    """In-batch negatives (InfoNCE); off by default: with a few hundred pairs it memorises the pairs."""
    target_weight: float = Field(0.5, ge=0)
    """Shared linear salinity read-out on both latents, taught by the library and the measured pairs."""
    survey_target_weight: float = Field(0.1, ge=0)
    """The same read-out taught by the survey's map-unit ECe on the pool (coarse, so weighted low)."""
    temperature: PositiveFloat = 0.1
    mask_fraction: float = Field(0.3, ge=0, lt=1)
    """Share of a pixel's bands hidden from the satellite encoder in pretraining (masked-band reconstruction)."""
    lab_hidden: tuple[PositiveInt, ...] = (256, 128)
    lab_binning: PositiveInt = 8
    """Adjacent lab spectral points averaged before the lab encoder (1765 → 220)."""
    lab_derivative: bool = True
    """First derivative of the binned lab spectrum: keeps the absorption bands, drops baseline and scatter."""
    sat_hidden: tuple[PositiveInt, ...] = (128,)


class TeacherSettings(LoopSettings):
    epochs: PositiveInt = 120
    patience: PositiveInt = 15
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    weight_decay: float = Field(1e-3, ge=0)
    layers: PositiveInt = 3
    """Transformer heads only (the MLP head has one block per ``model.hidden`` width)."""
    heads: PositiveInt = 8
    nll_weight: float = Field(0.5, ge=0)
    freeze_encoder: bool = False
    """Keep the SAU's lab encoder fixed; fine-tuning it lets the teacher keep what the latent lost."""
    spike: PositiveInt = 1
    """Weight (repeats) of each of the region's measured samples among the library's rows (spiking)."""


class StudentSettings(LoopSettings):
    """A student epoch is one pass over the survey-labelled pool plus the samples, repeated to a third of it."""

    epochs: PositiveInt = 60
    patience: PositiveInt = 5
    """Used only without ``fixed_schedule``."""
    fixed_schedule: bool = True
    """Run every epoch and keep the last weights, instead of stopping at the best epoch on the
    held-out samples: those are a few dozen measured samples per fit, too few to choose an epoch by
    (the chosen epoch fell anywhere from the first to the last), and students stopped early were
    underfit (results/demo/NOTES.md)."""
    batch_size: PositiveInt = 256
    lr: PositiveFloat = 2e-3
    weight_decay: float = Field(1e-3, ge=0)
    layers: PositiveInt = 4
    """Transformer heads only."""
    heads: PositiveInt = 8
    alpha: float = Field(1.0, ge=0)
    beta: float = Field(0.10, ge=0)
    gamma: float = Field(1.0, ge=0)
    nll_weight: float = Field(0.5, ge=0)
    survey_weight: float = Field(0.3, ge=0)
    """Weight of a survey-labelled pixel's task term relative to a point sample's."""
    nll_mean: bool = True
    """The NLL moves the mean too, so each labelled row pulls on it in proportion to its precision,
    1 / (the student's spread² + its source's learned noise²), on top of the Huber term: rows the
    student is unsure of, and a source that learns a larger noise, pull less, where otherwise the
    fixed ``survey_weight`` alone decided. Paired over seeds it raised R² of log1p on held-out
    blocks and on the map (results/demo/NOTES.md, which also gives the noises learned)."""
    unit_departure: float = Field(0.0, ge=0, le=1)
    """Share of a pool pixel's departure from its map unit's mean prediction that its survey label
    keeps. 0: every pixel of a unit is labelled with the unit's ECe. 1: the unit's ECe labels only
    the mean of the student's predictions over the unit's pool pixels, and the spectra and the
    point samples alone decide where the salt lies inside it. The unit's mean is pulled alike
    whatever the share; what changes is how hard each pixel is shrunk towards it (refreshed every
    epoch from each member's own predictions). On the demo worlds the shrinkage paid: 1 halved the
    map's under-prediction of saline pixels but lost more R² of log1p to noise inside the units,
    and 0.5 did not beat 0 (results/demo/NOTES.md), so 0 stays the default."""
    covariates: tuple[str, ...] = ("sand", "clay")
    """Covariates the student reads (with ``use_covariates``); the rest of the covariate table is
    ignored. Climate is left out by default: inside one training region it varies little and
    smoothly, so a student learns it as a stand-in for place, which does not carry to another
    climate (there it extrapolates; see results/demo/NOTES.md). Add ``tmin`` … ``pmean`` when the
    training regions span different climates."""
    survey_covariates: tuple[str, ...] = ("sand", "clay")
    """Covariates that come from the survey: hidden with the survey token (on rows the survey labels,
    and with ``survey_dropout``), so the survey's labels cannot be read off its own texture."""
    survey_dropout: float = Field(0.2, ge=0, le=1)
    """Share of sample rows whose survey input is hidden, so the student also predicts without it."""
    members: PositiveInt = 3
    """Students in the ensemble (different seeds): accuracy and the spread of their disagreement."""
    freeze_encoder: bool = False
    """Keep the SAU's satellite encoder as aligned (True) or fine-tune it with the student."""
    domain_quantile: float = Field(0.95, gt=0, lt=1)
    """Held-out distance quantile that maps to domain_score = 1."""
    domain_components: int = Field(20, ge=0)
    """Principal components of the training pixels' spectra; a spectrum's residual off them is one of
    the domain score's two distances (0: the network's features alone)."""
    interval_level: float = Field(0.95, gt=0.5, lt=1)
    """Interval whose coverage on held-out samples calibrates the predictive spread."""


class RaySettings(FrozenModel):
    num_workers: int = Field(0, ge=0)
    """0 = run in this process without Ray; N ≥ 1 = Ray Train TorchTrainer with N workers."""
    use_gpu: bool = False
    cpus_per_worker: PositiveFloat = 0.5
    max_failures: int = Field(0, ge=0)
    """Worker-group restarts Ray Train attempts; each restart resumes from the last epoch."""


class TrainConfig(StageConfig):
    regions: list[AbsolutePath] = Field(default_factory=list)
    """Demo region folder URLs (deepsalt.synth layout) whose data are trained on together."""
    inputs: TrainingInputs | None = None
    """A user's own data (lab tables, STAC API or scene files, covariates, SSURGO export) instead of regions."""
    output: AbsolutePath = "runs/deepsalt"
    """Checkpoint root URL: <output>/sau, <output>/teacher, <output>/student."""
    seed: int = 0
    preset: Literal["default", "quick"] = "default"
    threads: PositiveInt = 1
    """torch CPU threads per worker: the networks are small, so more threads mostly add overhead."""
    use_sau: bool = True
    """False: the autoencoders train without alignment or read-out (the unaligned ablation)."""
    distill: bool = True
    """False: the student learns from measured samples and the survey only (no teacher stage)."""
    use_covariates: bool = True
    """Soil texture and climate covariates as student inputs."""
    use_survey: bool = True
    """The survey's map-unit ECe as a student input and as coarse labels on the pool."""
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
                given = dict(data.get(str(section)) or {})
                data[str(section)] = {**values, **given}
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if not (self.use_satellite or self.use_covariates):
            raise ValueError("the student needs the satellite pixel or the covariates as input")
        if self.regions and self.inputs is not None:
            raise ValueError("give regions (demo regions) or inputs (your own data), not both")
        if self.model.head == "transformer":
            if self.model.latent_dim % self.model.tokens:
                raise ValueError(
                    f"model.tokens ({self.model.tokens}) must divide model.latent_dim ({self.model.latent_dim})"
                )
            for name, settings in ((Stage.TEACHER, self.teacher), (Stage.STUDENT, self.student)):
                if self.model.d_model % settings.heads:
                    raise ValueError(f"{name}.heads must divide model.d_model ({self.model.d_model})")
        return self

    def stage_url(self, stage: Stage) -> str:
        return f"{self.output.rstrip('/')}/{Stage(stage).value}"

    def settings(self, stage: Stage) -> LoopSettings:
        """The loop settings of ``stage``."""
        return {Stage.SAU: self.sau, Stage.TEACHER: self.teacher, Stage.STUDENT: self.student}[Stage(stage)]
