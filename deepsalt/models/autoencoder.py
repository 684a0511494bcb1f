"""Spectral autoencoders: one per domain (lab MIR, satellite VNIR-SWIR) into a shared latent space.

An encoder owns its whole input path, so a checkpoint cannot meet a spectrum prepared another way:
fixed spectral preprocessing (binning, first derivative), standardisation with the training
statistics (buffers), then an MLP (or one linear map with ``hidden=()``) to the latent.

- **Binning** averages adjacent spectral points (MIR spectra are smooth at the KSSL 2 cm⁻¹ spacing),
  so the first layer has a few hundred inputs where only a few thousand lab samples exist.
- **First derivative** removes the baseline offset and most of the multiplicative scatter of lab
  absorbance and leaves the absorption bands: the salt bands survive standardisation instead of
  drowning in the spectra's overall level, which the reconstruction-only encoder compressed away.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from deepsalt.activation import Activation
from deepsalt.models.norm import Standardizer


def mlp(sizes: list[int], dropout: float, activation: Activation = Activation.GELU) -> nn.Sequential:
    """Linear layers with LayerNorm, the activation and dropout between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [nn.LayerNorm(n_out), activation.module(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class SpectralFeatures(nn.Module):
    """Fixed preprocessing of a spectrum: ``binning`` adjacent points averaged, optional first difference."""

    def __init__(self, n_inputs: int, binning: int = 1, derivative: bool = False):
        super().__init__()
        self.n_inputs, self.binning, self.derivative = n_inputs, binning, derivative
        self.n_binned = n_inputs // binning
        self.n_features = self.n_binned - (1 if derivative else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binning > 1:
            x = x[:, : self.n_binned * self.binning].reshape(len(x), self.n_binned, self.binning).mean(-1)
        return torch.diff(x, dim=-1) if self.derivative else x


class SpectralEncoder(nn.Module):
    """Spectrum → preprocessing → standardisation (training statistics) → MLP → latent."""

    def __init__(
        self,
        n_inputs: int,
        latent_dim: int = 32,
        hidden: tuple[int, ...] = (128,),
        dropout: float = 0.1,
        binning: int = 1,
        derivative: bool = False,
        *,
        activation: Activation = Activation.GELU,
    ):
        super().__init__()
        self.features = SpectralFeatures(n_inputs, binning, derivative)
        self.norm = Standardizer.empty(self.features.n_features)
        self.latent_dim = latent_dim
        self.net = mlp([self.features.n_features, *hidden, latent_dim], dropout, activation)

    @property
    def n_features(self) -> int:
        return self.features.n_features

    def standardized(self, x: torch.Tensor) -> torch.Tensor:
        """The standardised features the MLP sees (and the decoder reconstructs)."""
        return self.norm(self.features(x))

    def encode(self, standardized: torch.Tensor) -> torch.Tensor:
        return self.net(standardized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.standardized(x))


class SpectralAutoencoder(nn.Module):
    """Encoder + MLP decoder reconstructing the standardised features; masked-feature pretraining.

    With ``mask`` given, those features are zeroed (their mean) before encoding and the decoder must
    still reconstruct them: pretraining on unlabelled pixels that forces the latent to hold how bands
    co-vary instead of copying them.
    """

    def __init__(
        self,
        n_inputs: int,
        latent_dim: int = 32,
        hidden: tuple[int, ...] = (128,),
        dropout: float = 0.1,
        binning: int = 1,
        derivative: bool = False,
        *,
        activation: Activation = Activation.GELU,
    ):
        super().__init__()
        self.encoder = SpectralEncoder(
            n_inputs, latent_dim, hidden, dropout, binning, derivative, activation=activation
        )
        self.decoder = mlp([latent_dim, *reversed(hidden), self.encoder.n_features], dropout, activation)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent, reconstruction, and the standardised features it is compared with."""
        reference = self.encoder.standardized(x)
        z = self.encoder.encode(reference if mask is None else reference * ~mask)
        return z, self.decoder(z), reference
