"""Gaussian regression heads: a latent (and covariates) in, a mean and a spread out.

Both heads take ``(latent, covariates)`` and return a :class:`GaussianOutput`, so the teacher and
the student can use either: the residual MLP (default: measured better and far cheaper per pixel
than attention over a handful of tokens) or the paper's encoder-only transformer
(:class:`deepsalt.models.transformer.GaussianTransformer`). ``features`` are the per-layer hidden
states that the distillation's feature term aligns between teacher and student.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from deepsalt.activation import Activation

MIN_STD = 1e-3


@dataclass
class GaussianOutput:
    mean: torch.Tensor  # (batch,)
    std: torch.Tensor  # (batch,) > 0
    features: list[torch.Tensor]  # per layer, (batch, width)


def gaussian(out: torch.Tensor, features: list[torch.Tensor]) -> GaussianOutput:
    """(batch, 2) raw head output → mean and softplus spread."""
    return GaussianOutput(out[:, 0], F.softplus(out[:, 1]) + MIN_STD, features)


class GaussianMLP(nn.Module):
    """``[latent, covariates]`` → blocks of Linear → LayerNorm → activation → Dropout → Gaussian."""

    def __init__(
        self,
        latent_dim: int,
        n_covariates: int = 0,
        hidden: tuple[int, ...] = (128, 64),
        dropout: float = 0.1,
        *,
        activation: Activation = Activation.GELU,
    ):
        super().__init__()
        if latent_dim + n_covariates == 0:
            raise ValueError("a head needs a latent, covariates, or both")
        sizes = [latent_dim + n_covariates, *hidden]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b), activation.module(), nn.Dropout(dropout))
            for a, b in itertools.pairwise(sizes)
        )
        self.out = nn.Linear(sizes[-1], 2)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def forward(
        self, latent: torch.Tensor | None = None, covariates: torch.Tensor | None = None
    ) -> GaussianOutput:
        h = torch.cat([t for t in (latent, covariates) if t is not None], dim=-1)
        features = []
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return gaussian(self.out(h), features)
