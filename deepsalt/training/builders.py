"""Typed architecture descriptions (stored in checkpoints) ⇄ torch modules.

A checkpoint's architecture is enough to rebuild its network before loading the weights, so the
predictor and later stages never need the training config.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from deepsalt.activation import Activation
from deepsalt.config import FrozenModel
from deepsalt.models.autoencoder import SpectralEncoder, SpectralFeatures, mlp
from deepsalt.models.heads import GaussianMLP
from deepsalt.models.networks import StudentEnsemble, StudentNet, TeacherNet
from deepsalt.models.norm import BoundedStandardizer, Standardizer
from deepsalt.models.sau import SpectralAdaptationUnit
from deepsalt.models.transformer import GaussianTransformer
from deepsalt.training.config import Stage, TrainConfig


class EncoderArch(FrozenModel):
    n_inputs: int
    latent_dim: int
    hidden: tuple[int, ...]
    binning: int = 1
    derivative: bool = False
    activation: Activation = Activation.GELU
    """Also the decoder's. Checkpoints written before the setting used the exact GELU."""


class HeadArch(FrozenModel):
    kind: Literal["mlp", "transformer"]
    latent_dim: int
    n_covariates: int
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    n_layers: int = 3
    n_heads: int = 8
    d_model: int = 32
    tokens: int = 8
    ff_dim: int = 64
    activation: Activation = Activation.GELU
    """MLP heads only."""


class SAUArch(FrozenModel):
    lab: EncoderArch
    sat: EncoderArch
    dropout: float
    aligned: bool


class TeacherArch(FrozenModel):
    encoder: EncoderArch
    head: HeadArch
    linear: bool


class StudentArch(FrozenModel):
    encoder: EncoderArch | None
    """None: covariates-only student."""
    head: HeadArch
    n_covariates: int
    """0: no soil/climate covariates."""
    survey: bool
    linear: bool
    members: int
    survey_covariates: tuple[int, ...] = ()
    """Covariate columns the survey supplies: absent wherever the survey token is (positions among
    the covariates the student reads)."""
    covariate_columns: tuple[int, ...] | None = None
    """Columns of the product's covariate table the student reads (None: all of them)."""
    covariate_table: int = 0
    """Columns of the covariate table the student is given; the domain score watches all of them
    for values beyond the training range (0: only the columns it reads)."""
    domain_components: int = 0
    """Principal components of the training spectra the domain score measures residuals from (0: none)."""


Architecture = SAUArch | TeacherArch | StudentArch
"""What a checkpoint records of its network (each kind's fields are distinct, so ``meta.json`` parses
back into the one it was written from)."""


def sau_architecture(config: TrainConfig, n_lab: int, n_sat: int) -> SAUArch:
    s, latent = config.sau, config.model.latent_dim
    return SAUArch(
        lab=EncoderArch(
            n_inputs=n_lab,
            latent_dim=latent,
            hidden=s.lab_hidden,
            binning=s.lab_binning,
            derivative=s.lab_derivative,
            activation=config.model.activation,
        ),
        sat=EncoderArch(
            n_inputs=n_sat, latent_dim=latent, hidden=s.sat_hidden, activation=config.model.activation
        ),
        dropout=config.model.dropout,
        aligned=config.use_sau,
    )


def head_architecture(config: TrainConfig, stage: Stage, latent_dim: int, n_side: int) -> HeadArch:
    m = config.model
    settings = config.teacher if stage is Stage.TEACHER else config.student
    return HeadArch(
        kind=m.head,
        latent_dim=latent_dim,
        n_covariates=n_side,
        hidden=m.hidden,
        dropout=m.dropout,
        n_layers=settings.layers,
        n_heads=settings.heads,
        d_model=m.d_model,
        tokens=m.tokens if latent_dim else 1,
        ff_dim=m.ff_dim,
        activation=m.activation,
    )


def build_encoder(arch: EncoderArch, dropout: float = 0.0) -> SpectralEncoder:
    return SpectralEncoder(
        arch.n_inputs,
        arch.latent_dim,
        arch.hidden,
        dropout,
        arch.binning,
        arch.derivative,
        activation=arch.activation,
    )


def build_head(arch: HeadArch) -> nn.Module:
    if arch.kind == "mlp":
        return GaussianMLP(
            arch.latent_dim, arch.n_covariates, arch.hidden, arch.dropout, activation=arch.activation
        )
    return GaussianTransformer(
        arch.latent_dim,
        arch.n_covariates,
        n_layers=arch.n_layers,
        n_heads=arch.n_heads,
        d_model=arch.d_model,
        tokens=arch.tokens,
        ff_dim=arch.ff_dim,
        dropout=arch.dropout,
    )


def build_sau(arch: SAUArch) -> SpectralAdaptationUnit:
    return SpectralAdaptationUnit(
        arch.lab.n_inputs,
        arch.sat.n_inputs,
        arch.lab.latent_dim,
        arch.lab.hidden,
        arch.sat.hidden,
        arch.dropout,
        arch.lab.binning,
        arch.lab.derivative,
        activation=arch.lab.activation,
    )


def build_teacher(arch: TeacherArch) -> TeacherNet:
    return TeacherNet(build_encoder(arch.encoder), build_head(arch.head), arch.linear)


def sat_decoder(arch: EncoderArch) -> nn.Module:
    """A decoder shaped like the SAU's satellite one (the student keeps it for the domain score).

    It reconstructs the encoder's standardised features, which binning or a derivative make fewer
    than the input bands.
    """
    n_features = SpectralFeatures(arch.n_inputs, arch.binning, arch.derivative).n_features
    return mlp([arch.latent_dim, *reversed(arch.hidden), n_features], 0.0, arch.activation)


def build_student(arch: StudentArch) -> StudentEnsemble:
    members = [
        StudentNet(
            build_encoder(arch.encoder) if arch.encoder is not None else None,
            build_head(arch.head),
            BoundedStandardizer.empty(arch.n_covariates, arch.covariate_columns)
            if arch.n_covariates
            else None,
            Standardizer.empty(1) if arch.survey else None,
            arch.linear,
            arch.survey_covariates,
        )
        for _ in range(arch.members)
    ]
    return StudentEnsemble(
        members,
        sat_decoder(arch.encoder) if arch.encoder is not None else None,
        arch.domain_components if arch.encoder is not None else 0,
        BoundedStandardizer.empty(arch.covariate_table) if arch.covariate_table else None,
    )
