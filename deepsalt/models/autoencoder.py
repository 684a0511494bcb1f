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


class SpectralAutoencoder(nn.Module):
    """MLP encoder/decoder for standardised spectra of one domain.

    The latent lies on the sphere of radius ``sqrt(latent_dim)`` (unit scale per dimension).
    Fixing the norm makes the SAU's cosine alignment a complete alignment: two latents with
    cosine 1 are equal, so a transformer trained on lab latents sees satellite latents on the
    same scale.
    """

    def __init__(
        self, n_inputs: int, latent_dim: int = 64, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.05
    ):
        super().__init__()
        self.n_inputs = n_inputs
        self.latent_dim = latent_dim
        self.encoder = _mlp([n_inputs, *hidden, latent_dim], dropout)
        self.decoder = _mlp([latent_dim, *reversed(hidden), n_inputs], dropout)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(x), dim=-1) * math.sqrt(self.latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)
