"""The Spectral Adaptation Unit: two autoencoders trained together on geo-paired samples.

Loss = reconstruction of both domains (paired spectra, plus unlabelled satellite pixels)
+ ``align`` · (1 − cos(z_lab, z_sat)) on pairs + ``nce`` · symmetric InfoNCE with in-batch
negatives (optional). The negatives keep the alignment from mapping every sample to one
direction, which cosine alignment plus reconstruction alone allows. With both alignment weights
at zero the two autoencoders train independently: the "no SAU" ablation (unaligned encoders).
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
    temperature: float = 0.1


@dataclass
class SAUOutput:
    z_lab: torch.Tensor
    lab_hat: torch.Tensor
    z_sat: torch.Tensor
    sat_hat: torch.Tensor
    pool_hat: torch.Tensor | None


class SpectralAdaptationUnit(nn.Module):
    """Holds the lab and satellite autoencoders that share one latent space."""

    def __init__(
        self,
        n_lab: int,
        n_sat: int,
        latent_dim: int = 64,
        lab_hidden: tuple[int, ...] = (256, 128),
        sat_hidden: tuple[int, ...] = (128, 128),
        dropout: float = 0.05,
    ):
        super().__init__()
        self.lab = SpectralAutoencoder(n_lab, latent_dim, tuple(lab_hidden), dropout)
        self.sat = SpectralAutoencoder(n_sat, latent_dim, tuple(sat_hidden), dropout)

    def forward(
        self, lab: torch.Tensor, sat: torch.Tensor, sat_pool: torch.Tensor | None = None
    ) -> SAUOutput:
        """Latents and reconstructions of pairs ``lab[i]`` ↔ ``sat[i]`` and of unpaired pixels."""
        z_lab, lab_hat = self.lab(lab)
        z_sat, sat_hat = self.sat(sat)
        pool_hat = self.sat(sat_pool)[1] if sat_pool is not None else None
        return SAUOutput(z_lab, lab_hat, z_sat, sat_hat, pool_hat)


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``z_a`` must pick row i of ``z_b`` among the batch, and back."""
    logits = F.normalize(z_a, dim=-1) @ F.normalize(z_b, dim=-1).T / temperature
    target = torch.arange(len(z_a), device=z_a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def sau_loss(
    out: SAUOutput,
    lab: torch.Tensor,
    sat: torch.Tensor,
    sat_pool: torch.Tensor | None,
    weights: SAULossWeights,
) -> dict[str, torch.Tensor]:
    """All SAU loss terms for one batch (see the module docstring)."""
    recon = F.mse_loss(out.lab_hat, lab) + F.mse_loss(out.sat_hat, sat)
    if out.pool_hat is not None:
        recon = recon + F.mse_loss(out.pool_hat, sat_pool)
    align = (1 - F.cosine_similarity(out.z_lab, out.z_sat, dim=-1)).mean()
    nce = info_nce(out.z_lab, out.z_sat, weights.temperature) if len(lab) > 1 else align.new_zeros(())
    total = weights.reconstruction * recon + weights.align * align + weights.nce * nce
    return {"loss": total, "reconstruction": recon, "align": align, "nce": nce}
