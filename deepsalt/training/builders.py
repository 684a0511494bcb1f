"""Architecture descriptions (JSON-able dicts stored in checkpoints) ⇄ torch modules.

A checkpoint's ``architecture`` is enough to rebuild its network before loading the weights, so
the predictor and later stages never need the training config.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepsalt.models.autoencoder import SpectralEncoder
from deepsalt.models.networks import Standardizer, StudentNet, TeacherNet
from deepsalt.models.sau import SpectralAdaptationUnit
from deepsalt.models.transformer import GaussianTransformer
from deepsalt.training.config import TrainConfig


def sau_architecture(config: TrainConfig, n_lab: int, n_sat: int) -> dict[str, Any]:
    return {
        "n_lab": n_lab,
        "n_sat": n_sat,
        "latent_dim": config.model.latent_dim,
        "lab_hidden": list(config.sau.lab_hidden),
        "lab_binning": config.sau.lab_binning,
        "sat_hidden": list(config.sau.sat_hidden),
    }


def build_sau(arch: dict[str, Any]) -> SpectralAdaptationUnit:
    return SpectralAdaptationUnit(
        arch["n_lab"],
        arch["n_sat"],
        arch["latent_dim"],
        tuple(arch["lab_hidden"]),
        tuple(arch["sat_hidden"]),
        lab_binning=arch["lab_binning"],
    )


def transformer_architecture(
    config: TrainConfig, stage: str, latent_dim: int, n_covariates: int
) -> dict[str, Any]:
    settings = getattr(config, stage)
    return {
        "latent_dim": latent_dim,
        "n_covariates": n_covariates,
        "n_layers": settings.layers,
        "n_heads": settings.heads,
        "d_model": config.model.d_model,
        "tokens": config.model.tokens,
        "ff_dim": config.model.ff_dim,
        "dropout": config.model.dropout,
    }


def build_transformer(arch: dict[str, Any]) -> GaussianTransformer:
    return GaussianTransformer(**arch)


def encoder_from_sau(sau_arch: dict[str, Any], domain: str) -> SpectralEncoder:
    """An encoder shaped like the SAU's ``lab`` or ``sat`` one, without dropout (it runs frozen)."""
    if domain == "lab":
        n, hidden, binning = sau_arch["n_lab"], sau_arch["lab_hidden"], sau_arch["lab_binning"]
    else:
        n, hidden, binning = sau_arch["n_sat"], sau_arch["sat_hidden"], 1
    return SpectralEncoder(n, sau_arch["latent_dim"], tuple(hidden), dropout=0.0, binning=binning)


def standardizer(stats: dict[str, list[float]]) -> Standardizer:
    return Standardizer(torch.tensor(stats["mean"]), torch.tensor(stats["std"]))


def feature_stats(values: np.ndarray) -> dict[str, list[float]]:
    """Per-feature mean/std over finite rows (JSON-able)."""
    return {
        "mean": np.nanmean(values, axis=0).round(8).tolist(),
        "std": np.nanstd(values, axis=0).round(8).tolist(),
    }


def build_teacher(arch: dict[str, Any]) -> TeacherNet:
    return TeacherNet(
        Standardizer.empty(arch["sau"]["n_lab"]),
        encoder_from_sau(arch["sau"], "lab"),
        build_transformer(arch["transformer"]),
    )


def build_student(arch: dict[str, Any]) -> StudentNet:
    """``arch``: ``{"sau": …, "transformer": …, "use_satellite": bool, "use_covariates": bool}``."""
    sat = arch["use_satellite"]
    n_cov = arch["transformer"]["n_covariates"]
    return StudentNet(
        build_transformer(arch["transformer"]),
        encoder_from_sau(arch["sau"], "sat") if sat else None,
        Standardizer.empty(arch["sau"]["n_sat"]) if sat else None,
        Standardizer.empty(n_cov) if arch["use_covariates"] else None,
    )
