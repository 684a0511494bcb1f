"""The Spectral Adaptation Unit: two autoencoders trained together on geo-paired samples.

Loss = reconstruction of both domains (paired spectra, plus unlabelled satellite pixels)
+ ``align`` · (1 − cos(z_lab, z_sat)) on pairs + ``nce`` · symmetric InfoNCE with in-batch
negatives (optional) + ``target`` · Huber of a linear salinity read-out shared by both latents.

The negatives keep the alignment from mapping every sample to one direction, which cosine
alignment plus reconstruction alone allows. The shared read-out is our addition to the paper's
SAU: salt is a small-variance component of both spectra, so reconstruction alone compresses it
away (on the demo region a ridge on the reconstruction-only lab latent explains < 10 % of
log-ECe variance); one linear direction, the same in both domains, keeps it in the latent.
With the alignment and read-out weights at zero the two autoencoders train independently: the
"no SAU" ablation (unaligned encoders).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from deepsalt.models.autoencoder import SpectralAutoencoder


@dataclass(frozen=True)
class SAULossWeights:
    reconstruction: float = 1.0
    align: float = 1.0
    nce: float = 0.5
    target: float = 0.5
    temperature: float = 0.1


@dataclass
class SAUOutput:
    z_lab: torch.Tensor
    lab_hat: torch.Tensor
    lab_ref: torch.Tensor
    z_sat: torch.Tensor
    sat_hat: torch.Tensor
    sat_ref: torch.Tensor
    pool_hat: torch.Tensor | None
    pool_ref: torch.Tensor | None
    y_lab: torch.Tensor
    y_sat: torch.Tensor


class SpectralAdaptationUnit(nn.Module):
    """Holds the lab and satellite autoencoders that share one latent space."""

    def __init__(
        self,
        n_lab: int,
        n_sat: int,
        latent_dim: int = 64,
        lab_hidden: tuple[int, ...] = (256, 128),
        sat_hidden: tuple[int, ...] = (128, 128),
        dropout: float = 0.1,
        lab_binning: int = 8,
    ):
        super().__init__()
        self.lab = SpectralAutoencoder(n_lab, latent_dim, tuple(lab_hidden), dropout, lab_binning)
        self.sat = SpectralAutoencoder(n_sat, latent_dim, tuple(sat_hidden), dropout)
        self.readout = nn.Linear(latent_dim, 1)

    def forward(
        self, lab: torch.Tensor, sat: torch.Tensor, sat_pool: torch.Tensor | None = None
    ) -> SAUOutput:
        """Latents and reconstructions of pairs ``lab[i]`` ↔ ``sat[i]`` and of unpaired pixels."""
        z_lab, lab_hat, lab_ref = self.lab(lab)
        z_sat, sat_hat, sat_ref = self.sat(sat)
        _, pool_hat, pool_ref = self.sat(sat_pool) if sat_pool is not None else (None, None, None)
        y_lab, y_sat = self.readout(z_lab)[:, 0], self.readout(z_sat)[:, 0]
        return SAUOutput(z_lab, lab_hat, lab_ref, z_sat, sat_hat, sat_ref, pool_hat, pool_ref, y_lab, y_sat)


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``z_a`` must pick row i of ``z_b`` among the batch, and back."""
    logits = F.normalize(z_a, dim=-1) @ F.normalize(z_b, dim=-1).T / temperature
    target = torch.arange(len(z_a), device=z_a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def sau_loss(out: SAUOutput, target: torch.Tensor, weights: SAULossWeights) -> dict[str, torch.Tensor]:
    """All SAU loss terms for one batch (see the module docstring); ``target``: standardised ECe."""
    recon = F.mse_loss(out.lab_hat, out.lab_ref) + F.mse_loss(out.sat_hat, out.sat_ref)
    if out.pool_hat is not None:
        recon = recon + F.mse_loss(out.pool_hat, out.pool_ref)
    align = (1 - F.cosine_similarity(out.z_lab, out.z_sat, dim=-1)).mean()
    nce = info_nce(out.z_lab, out.z_sat, weights.temperature) if len(target) > 1 else align.new_zeros(())
    readout = F.huber_loss(out.y_lab, target) + F.huber_loss(out.y_sat, target)
    total = (
        weights.reconstruction * recon + weights.align * align + weights.nce * nce + weights.target * readout
    )
    return {"loss": total, "reconstruction": recon, "align": align, "nce": nce, "readout": readout}
