"""Spectral autoencoders: one per domain (lab MIR, satellite VNIR-SWIR) into a shared latent space."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [nn.LayerNorm(n_out), nn.GELU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class SpectralEncoder(nn.Module):
    """MLP from a standardised spectrum to a latent on the sphere of radius ``sqrt(latent_dim)``.

    Fixing the norm (unit scale per dimension) makes the SAU's cosine alignment a complete
    alignment: two latents with cosine 1 are equal, so a transformer trained on lab latents sees
    satellite latents on the same scale.

    ``binning`` averages adjacent spectral points first (MIR spectra are smooth at the 2 cm⁻¹
    KSSL spacing): 1765 points become 220 at ``binning=8``, which cuts the first layer's weights
    eightfold where only a few hundred lab samples exist to fit them.
    """

    def __init__(
        self,
        n_inputs: int,
        latent_dim: int = 64,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.05,
        binning: int = 1,
    ):
        super().__init__()
        self.n_inputs = n_inputs
        self.latent_dim = latent_dim
        self.binning = binning
        self.n_binned = n_inputs // binning
        self.net = _mlp([self.n_binned, *hidden, latent_dim], dropout)

    def bin(self, x: torch.Tensor) -> torch.Tensor:
        if self.binning == 1:
            return x
        return x[:, : self.n_binned * self.binning].reshape(len(x), self.n_binned, self.binning).mean(-1)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The latent before its projection onto the sphere (keeps how far out an input lies)."""
        return self.net(self.bin(x))

    def project(self, raw: torch.Tensor) -> torch.Tensor:
        """The raw latent onto the sphere of radius sqrt(latent_dim): the aligned latent."""
        return F.normalize(raw, dim=-1) * math.sqrt(self.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.raw(x))


class SpectralAutoencoder(nn.Module):
    """Encoder + MLP decoder for standardised spectra of one domain (decodes the binned spectrum)."""

    def __init__(
        self,
        n_inputs: int,
        latent_dim: int = 64,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.05,
        binning: int = 1,
    ):
        super().__init__()
        self.encoder = SpectralEncoder(n_inputs, latent_dim, hidden, dropout, binning)
        self.decoder = _mlp([latent_dim, *reversed(hidden), self.encoder.n_binned], dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent, reconstruction, and the (binned) spectrum the reconstruction is compared with."""
        z = self.encoder(x)
        return z, self.decoder(z), self.encoder.bin(x)
