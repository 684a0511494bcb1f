"""The deployable networks: normalisation + encoder + transformer in one module each.

Keeping the normalisation statistics as buffers inside the module means a checkpoint cannot be
used with the wrong statistics, and prediction is one forward call on raw inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsalt.models.autoencoder import SpectralEncoder
from deepsalt.models.transformer import GaussianTransformer, TransformerOutput


class Standardizer(nn.Module):
    """``(x − mean) / std`` per feature, with the statistics as buffers."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    @classmethod
    def empty(cls, n: int) -> Standardizer:
        return cls(torch.zeros(n), torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TeacherNet(nn.Module):
    """Lab absorbance → (frozen) lab encoder → 3-layer transformer → Gaussian."""

    def __init__(self, lab_norm: Standardizer, encoder: SpectralEncoder, transformer: GaussianTransformer):
        super().__init__()
        self.lab_norm, self.encoder, self.transformer = lab_norm, encoder, transformer

    def forward(self, lab: torch.Tensor) -> TransformerOutput:
        return self.transformer(self.encoder(self.lab_norm(lab)))


class DomainScore(nn.Module):
    """Mahalanobis distance of a latent from the training latents, divided by a calibration scale.

    ``scale`` is the ``quantile`` (e.g. 95th percentile) of the held-out distances, so a score of
    1.0 means "as far out as the 95th-percentile held-out sample"; > 1 flags extrapolation.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("precision", torch.eye(dim))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        d = z - self.mean
        return torch.sqrt(torch.einsum("bi,ij,bj->b", d, self.precision, d).clamp_min(0)) / self.scale


class StudentNet(nn.Module):
    """Reflectance → SAU satellite encoder → latent ⊕ covariates → 4-layer transformer → Gaussian.

    ``encoder`` is None in the covariates-only variant; ``cov_norm`` is None without covariates.
    """

    def __init__(
        self,
        transformer: GaussianTransformer,
        encoder: SpectralEncoder | None,
        sat_norm: Standardizer | None,
        cov_norm: Standardizer | None,
    ):
        super().__init__()
        self.transformer, self.encoder, self.sat_norm, self.cov_norm = (
            transformer,
            encoder,
            sat_norm,
            cov_norm,
        )
        self.domain = DomainScore(encoder.latent_dim if encoder is not None else cov_norm.mean.numel())

    def latent(self, reflectance: torch.Tensor) -> torch.Tensor | None:
        return self.encoder(self.sat_norm(reflectance)) if self.encoder is not None else None

    def domain_features(self, reflectance: torch.Tensor, covariates: torch.Tensor) -> torch.Tensor:
        """What the domain score measures: the aligned encoder's latent *before* the projection onto
        the sphere (the projection maps a pixel three times too bright onto a familiar direction);
        the standardised covariates for the covariates-only variant."""
        if self.encoder is None:
            return self.cov_norm(covariates)
        return self.encoder.raw(self.sat_norm(reflectance))

    def forward(self, reflectance: torch.Tensor, covariates: torch.Tensor) -> TransformerOutput:
        cov = self.cov_norm(covariates) if self.cov_norm is not None else None
        return self.transformer(self.latent(reflectance), cov)

    def forward_with_domain(
        self, reflectance: torch.Tensor, covariates: torch.Tensor
    ) -> tuple[TransformerOutput, torch.Tensor]:
        """The prediction and the domain score, running the encoder once (the mapping hot path)."""
        cov = self.cov_norm(covariates) if self.cov_norm is not None else None
        if self.encoder is None:
            return self.transformer(None, cov), self.domain(cov)
        raw = self.encoder.raw(self.sat_norm(reflectance))
        return self.transformer(self.encoder.project(raw), cov), self.domain(raw)
