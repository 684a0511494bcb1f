"""The deployable networks: teacher, student and the student ensemble, each one module.

Every input path (preprocessing, standardisation) lives inside the module as buffers, so a
checkpoint cannot be used with the wrong statistics and prediction is one forward call on raw
inputs. Both networks add a **linear path** from their standardised inputs to the mean: salt
shows as small, nearly linear changes of absorbance and reflectance, which a linear map fits from
few samples and an MLP alone learns slowly.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsalt.models.autoencoder import SpectralEncoder
from deepsalt.models.heads import GaussianOutput
from deepsalt.models.norm import BoundedStandardizer, Standardizer


def _with_linear(out: GaussianOutput, linear: nn.Linear | None, x: torch.Tensor) -> GaussianOutput:
    if linear is None:
        return out
    return GaussianOutput(out.mean + linear(x)[:, 0], out.std, out.features)


class TeacherNet(nn.Module):
    """Lab absorbance → lab encoder (the SAU's lab side) → Gaussian head, plus a linear path."""

    def __init__(self, encoder: SpectralEncoder, head: nn.Module, linear: bool = True):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.linear = nn.Linear(encoder.n_features, 1) if linear else None

    def forward(self, lab: torch.Tensor) -> GaussianOutput:
        x = self.encoder.standardized(lab)
        return _with_linear(self.head(self.encoder.encode(x)), self.linear, x)


class DomainScore(nn.Module):
    """How far a pixel lies outside what the student learned from; > 1 flags extrapolation.

    Two distances, each divided by its ``quantile`` (e.g. 95th percentile) over held-out training
    pixels, and the larger taken:

    - the Mahalanobis distance of the student's features (latent, log reconstruction error) from
      the training pixels': a pixel the network represents unlike any it learned from;
    - the residual of the standardised spectrum off the training pixels' principal subspace (the
      chemometric Q statistic): a spectral shape no training pixel has. Land covers the training
      never saw (roofs, canopy) and other sensors' artefacts carry such shapes even where the
      network's features look ordinary, because a network trained on soils maps them into the
      soils' range.

    ``scale`` rescales the larger of the two so that the held-out quantile of the score is 1, and
    1.0 keeps its meaning: "as far out as the 95th-percentile held-out pixel".
    """

    def __init__(self, dim: int, n_spectral: int = 0, components: int = 0):
        super().__init__()
        components = min(components, n_spectral)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("precision", torch.eye(dim))
        self.register_buffer("feature_scale", torch.ones(()))
        self.register_buffer("spectral_mean", torch.zeros(n_spectral if components else 0))
        self.register_buffer("basis", torch.zeros(components, n_spectral if components else 0))
        self.register_buffer("residual_scale", torch.ones(()))
        self.register_buffer("scale", torch.ones(()))

    def feature_distance(self, z: torch.Tensor) -> torch.Tensor:
        d = z - self.mean
        return torch.sqrt(torch.einsum("bi,ij,bj->b", d, self.precision, d).clamp_min(0)) / self.feature_scale

    def residual_distance(
        self, spectrum: torch.Tensor, projection: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Distance of the centred spectrum ``c`` off the principal subspace, as ``‖c‖² − ‖c Bᵀ‖²``.

        The basis rows are orthonormal (principal axes), so the squared residual is the squared norm
        less the squared coordinates, without projecting back onto the bands. ``projection`` is
        ``c Bᵀ`` when the caller already has it (the fused inference path computes it in the same
        matrix product as the members' first layers).
        """
        centred = spectrum - self.spectral_mean
        if projection is None:
            projection = centred @ self.basis.T
        squared = (centred**2).sum(dim=-1) - (projection**2).sum(dim=-1)
        return torch.sqrt(squared.clamp_min(0)) / self.residual_scale

    @property
    def uses_spectrum(self) -> bool:
        return self.basis.numel() > 0

    def unscaled(
        self, z: torch.Tensor, spectrum: torch.Tensor | None, projection: torch.Tensor | None = None
    ) -> torch.Tensor:
        distance = self.feature_distance(z)
        if self.uses_spectrum and spectrum is not None:
            distance = torch.maximum(distance, self.residual_distance(spectrum, projection))
        return distance

    def forward(
        self, z: torch.Tensor, spectrum: torch.Tensor | None = None, projection: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.unscaled(z, spectrum, projection) / self.scale


class StudentNet(nn.Module):
    """Reflectance → satellite encoder → latent ⊕ covariates ⊕ survey token → Gaussian head (+ linear).

    The survey token is the map unit's ECe (log1p, standardised) and a flag saying whether it is
    there; where it is absent (NaN: outside the survey, or masked while the student learns from
    the survey's own labels) the token is zero and the flag one. ``encoder`` is None in the
    covariates-only variant, ``cov_norm`` None without covariates, ``survey_norm`` None without
    the survey input. ``log_noise`` holds the learned noise of each label source (survey map unit,
    point sample) on top of the predicted spread.
    """

    SOURCES = ("survey", "point")

    def __init__(
        self,
        encoder: SpectralEncoder | None,
        head: nn.Module,
        cov_norm: BoundedStandardizer | None,
        survey_norm: Standardizer | None,
        linear: bool = True,
        survey_covariates: tuple[int, ...] = (),
    ):
        super().__init__()
        self.encoder, self.head, self.cov_norm, self.survey_norm = encoder, head, cov_norm, survey_norm
        self.register_buffer("survey_covariates", torch.tensor(survey_covariates, dtype=torch.long))
        n_side = (cov_norm.mean.numel() if cov_norm is not None else 0) + (
            2 if survey_norm is not None else 0
        )
        n_linear = (encoder.n_features if encoder is not None else 0) + n_side
        self.linear = nn.Linear(n_linear, 1) if linear else None
        self.log_noise = nn.Parameter(torch.full((len(self.SOURCES),), -1.0))

    def side_inputs(self, covariates: torch.Tensor, survey: torch.Tensor) -> torch.Tensor | None:
        """Standardised covariates and the survey token, one row per pixel (None when neither is used).

        Covariates the survey itself supplies (``survey_covariates``, e.g. its texture) go with the
        survey token: where the token is absent they are absent too (zero, their mean). Otherwise a
        pixel labelled with its map unit's ECe could read the label off its map unit's texture
        instead of learning it from the spectrum.
        """
        parts = []
        present = torch.isfinite(survey)
        if self.cov_norm is not None:
            cov = self.cov_norm(covariates)
            if self.survey_covariates.numel():
                hidden = torch.zeros_like(cov, dtype=torch.bool)
                hidden[:, self.survey_covariates] = True
                cov = torch.where(hidden & ~present[:, None], 0.0, cov)
            parts.append(cov)
        if self.survey_norm is not None:
            value = self.survey_norm(torch.log1p(torch.nan_to_num(survey).clamp_min(0))[:, None])[:, 0]
            parts += [torch.where(present, value, 0.0)[:, None], (~present).float()[:, None]]
        return torch.cat(parts, dim=-1) if parts else None

    def forward_parts(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> tuple[GaussianOutput, torch.Tensor | None, torch.Tensor | None]:
        """(prediction, the latent, the standardised spectrum): the latter two feed the domain score."""
        side = self.side_inputs(covariates, survey)
        x = latent = None
        if self.encoder is not None:
            x = self.encoder.standardized(reflectance)
            latent = self.encoder.encode(x)
        out = self.head(latent, side)
        linear_in = torch.cat([t for t in (x, side) if t is not None], dim=-1)
        return _with_linear(out, self.linear, linear_in), latent, x

    def forward(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> GaussianOutput:
        return self.forward_parts(reflectance, covariates, survey)[0]

    def noise(self, source: str) -> torch.Tensor:
        return self.log_noise[self.SOURCES.index(source)].exp()


class StudentEnsemble(nn.Module):
    """K students trained from different seeds; their Gaussian mixture is the prediction.

    The predictive spread of a point sample is ``sqrt(mean_k(s_k² + noise_k²) + var_k(m_k))``: each
    member's own spread, the point-sample noise it learned (a field sample is a point, the map a
    30 m pixel), and the members' disagreement, multiplied by ``sqrt(max(1, domain score))``: a
    pixel out of the training domain gets a wider interval. ``interval_scale`` is fitted on held-out
    samples so that the 95 % interval covers 95 % of them. The domain score (:class:`DomainScore`)
    reads the first member's latent, how badly the satellite autoencoder's decoder reconstructs the
    pixel, and how far the pixel's spectrum lies off the training spectra's principal subspace; a
    pixel whose covariates lie outside their training range scores at least ``1 +`` the distance
    beyond it.
    ``covariate_range`` watches every column of the covariate table for that, including those the
    members do not read (climate, by default): a soil model applied in a climate it never saw is
    out of its domain whether or not it reads the climate. Without it, the columns the first member
    reads are watched.
    """

    def __init__(
        self,
        members: list[StudentNet],
        decoder: nn.Module | None,
        domain_components: int = 0,
        covariate_range: BoundedStandardizer | None = None,
    ):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.decoder = decoder
        self.covariate_range = covariate_range
        first = members[0]
        if first.encoder is not None:
            self.domain = DomainScore(
                first.encoder.latent_dim + 1, first.encoder.n_features, domain_components
            )
        else:
            self.domain = DomainScore(first.cov_norm.mean.numel())
        self.register_buffer("interval_scale", torch.ones(()))

    def domain_features(
        self, latent: torch.Tensor | None, standardized: torch.Tensor | None, covariates: torch.Tensor
    ) -> torch.Tensor:
        if latent is None:
            return self.members[0].cov_norm.unbounded(covariates)
        error = ((self.decoder(latent) - standardized) ** 2).mean(dim=-1, keepdim=True)
        return torch.cat([latent, torch.log(error + 1e-6)], dim=-1)

    def forward_with_domain(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> tuple[GaussianOutput, torch.Tensor]:
        """The mixture prediction and the domain score (the mapping hot path; the predictor runs it
        as :class:`deepsalt.models.fused.FusedEnsemble` where it can)."""
        outputs = []
        latent = standardized = None
        for k, member in enumerate(self.members):
            out, z, x = member.forward_parts(reflectance, covariates, survey)
            if k == 0:
                latent, standardized = z, x
            outputs.append(out)
        return self.mixture(outputs, latent, standardized, covariates)

    def mixture(
        self,
        outputs: list[GaussianOutput],
        latent: torch.Tensor | None,
        standardized: torch.Tensor | None,
        covariates: torch.Tensor,
        projection: torch.Tensor | None = None,
    ) -> tuple[GaussianOutput, torch.Tensor]:
        """The members' predictions → the mixture, its spread widened by the domain score, and the score.

        ``latent`` and ``standardized`` are the first member's; ``projection`` its standardised
        spectrum's coordinates on the domain score's principal axes, when already computed.
        """
        means = torch.stack([out.mean for out in outputs])
        variances = torch.stack(
            [
                out.std**2 + member.noise("point") ** 2
                for out, member in zip(outputs, self.members, strict=True)
            ]
        )
        mean = means.mean(dim=0)
        variance = variances.mean(dim=0)
        if len(outputs) > 1:
            variance = variance + means.var(dim=0, unbiased=False)
        score = self.domain(self.domain_features(latent, standardized, covariates), standardized, projection)
        watched = self.covariate_range if self.covariate_range is not None else self.members[0].cov_norm
        if watched is not None:
            # Covariates beyond the training range (clamped where the student reads them): the pixel
            # lies outside what the student learned from however ordinary its spectrum looks.
            excess = watched.excess(covariates)
            score = torch.where(excess > 0, torch.maximum(score, 1.0 + excess), score)
        # Beyond the training domain the variance grows in proportion to the domain score (a linear
        # variogram in that distance): members that agree there agree by extrapolating alike, which
        # says nothing about the error. Inside the domain (score <= 1) the spread is the mixture's.
        variance = variance * score.clamp_min(1.0)
        return GaussianOutput(mean, variance.sqrt() * self.interval_scale, outputs[0].features), score

    def forward(
        self, reflectance: torch.Tensor, covariates: torch.Tensor, survey: torch.Tensor
    ) -> GaussianOutput:
        return self.forward_with_domain(reflectance, covariates, survey)[0]
