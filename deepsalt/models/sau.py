"""The Spectral Adaptation Unit: the lab and satellite autoencoders trained together.

Each step sees three kinds of rows:

- **unlabelled pixels** (the pool): masked-band reconstruction of the satellite autoencoder, and
  the survey's map-unit ECe as a weak salinity label for the shared read-out;
- **the lab library**: reconstruction of the lab autoencoder and its measured ECe for the read-out;
- **geo-pairs** (a lab sample and its pixel): both reconstructions, ``align`` · (1 − cos(z_lab,
  z_sat)), optional symmetric InfoNCE (``nce``) with in-batch negatives, and the read-out where
  the sample's ECe was measured.

The shared linear salinity read-out is our addition to the paper's SAU: salt is a small-variance
part of both spectra, so reconstruction alone compresses it away; one linear direction, the same
in both domains and taught by every labelled row of either domain, keeps it in both latents, and
the alignment then maps each pixel near its lab sample along that direction. With the alignment
and read-out weights at zero the two autoencoders train independently: the "without SAU" ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from deepsalt.activation import Activation
from deepsalt.models.autoencoder import SpectralAutoencoder


@dataclass(frozen=True)
class SAULossWeights:
    reconstruction: float = 1.0
    align: float = 1.0
    nce: float = 0.0
    target: float = 0.5
    survey_target: float = 0.1
    temperature: float = 0.1


@dataclass
class SAUBatch:
    """Standardised salinity targets are NaN where a row has none."""

    pool: torch.Tensor  # (p, n_sat) reflectance
    pool_mask: torch.Tensor  # (p, n_sat features) bool: masked features
    pool_y: torch.Tensor  # (p,) survey salinity target
    library: torch.Tensor  # (l, n_lab) absorbance
    library_y: torch.Tensor  # (l,)
    pair_lab: torch.Tensor  # (q, n_lab)
    pair_sat: torch.Tensor  # (q, n_sat)
    pair_y: torch.Tensor  # (q,)


class SpectralAdaptationUnit(nn.Module):
    """Holds the lab and satellite autoencoders that share one latent space, and the read-out."""

    def __init__(
        self,
        n_lab: int,
        n_sat: int,
        latent_dim: int = 32,
        lab_hidden: tuple[int, ...] = (256, 128),
        sat_hidden: tuple[int, ...] = (128,),
        dropout: float = 0.1,
        lab_binning: int = 8,
        lab_derivative: bool = True,
        *,
        activation: Activation = Activation.GELU,
    ):
        super().__init__()
        self.lab = SpectralAutoencoder(
            n_lab, latent_dim, tuple(lab_hidden), dropout, lab_binning, lab_derivative, activation=activation
        )
        self.sat = SpectralAutoencoder(n_sat, latent_dim, tuple(sat_hidden), dropout, activation=activation)
        self.readout = nn.Linear(latent_dim, 1)

    def read(self, z: torch.Tensor) -> torch.Tensor:
        return self.readout(z)[:, 0]


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``z_a`` must pick row i of ``z_b`` among the batch, and back."""
    logits = F.normalize(z_a, dim=-1) @ F.normalize(z_b, dim=-1).T / temperature
    target = torch.arange(len(z_a), device=z_a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _readout_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    known = torch.isfinite(target)
    if not known.any():
        return pred.new_zeros(())
    return F.huber_loss(pred[known], target[known])


def sau_loss(
    model: SpectralAdaptationUnit, batch: SAUBatch, weights: SAULossWeights
) -> dict[str, torch.Tensor]:
    """All SAU loss terms for one batch (see the module docstring)."""
    z_pool, pool_hat, pool_ref = model.sat(batch.pool, batch.pool_mask)
    z_lib, lib_hat, lib_ref = model.lab(batch.library)
    z_lab, lab_hat, lab_ref = model.lab(batch.pair_lab)
    z_sat, sat_hat, sat_ref = model.sat(batch.pair_sat)
    recon = (
        F.mse_loss(pool_hat, pool_ref)
        + F.mse_loss(lib_hat, lib_ref)
        + F.mse_loss(lab_hat, lab_ref)
        + F.mse_loss(sat_hat, sat_ref)
    )
    align = (1 - F.cosine_similarity(z_lab, z_sat, dim=-1)).mean()
    nce = (
        info_nce(z_lab, z_sat, weights.temperature) if len(z_lab) > 1 and weights.nce else align.new_zeros(())
    )
    readout = (
        _readout_loss(model.read(z_lib), batch.library_y)
        + _readout_loss(model.read(z_lab), batch.pair_y)
        + _readout_loss(model.read(z_sat), batch.pair_y)
    )
    survey = _readout_loss(model.read(z_pool), batch.pool_y)
    total = (
        weights.reconstruction * recon
        + weights.align * align
        + weights.nce * nce
        + weights.target * readout
        + weights.survey_target * survey
    )
    return {
        "loss": total,
        "reconstruction": recon,
        "align": align,
        "nce": nce,
        "readout": readout,
        "survey": survey,
    }
