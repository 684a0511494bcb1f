"""The fused inference forward pass gives the ensemble's own outputs, for every student shape.

The reference is :meth:`StudentEnsemble.forward_with_domain` of the same network. Every weight and
statistic is drawn at random, and each member gets its own standardisation statistics, so the
folding of member ``k``'s statistics into its first layer is exercised, not just the case where
the members share them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA

from deepsalt.mapping.predictor import Precision
from deepsalt.models.fused import FusedEnsemble, unfusable
from deepsalt.models.networks import DomainScore, StudentEnsemble
from deepsalt.predict import StudentPredictor, inference_forward
from deepsalt.training import builders

RELATIVE = 1e-4
"""Folding the statistics into the weights reorders float32 sums: agreement to rounding, relative."""


def random_student(
    seed: int,
    members: int,
    n_bands: int,
    binning: int,
    derivative: bool,
    head: str,
    covariates: int,
    survey: bool,
    linear: bool,
    components: int,
) -> StudentEnsemble:
    """A student of the given shape with every parameter and statistic random (PCA basis orthonormal)."""
    n_side = covariates + (2 if survey else 0)
    arch = builders.StudentArch(
        encoder=builders.EncoderArch(
            n_inputs=n_bands, latent_dim=8, hidden=(16,), binning=binning, derivative=derivative
        ),
        head=builders.HeadArch(
            kind=head, latent_dim=8, n_covariates=n_side, hidden=(16, 8), n_layers=1, d_model=8, tokens=2
        ),
        n_covariates=covariates,
        survey=survey,
        linear=linear,
        members=members,
        covariate_columns=tuple(range(covariates)) if covariates else None,
        covariate_table=8 if covariates else 0,
        domain_components=components,
    )
    net = builders.build_student(arch).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator) * 0.5
            if name.endswith(("std", "scale", "residual_scale", "feature_scale")):
                values = values.abs() + 0.2
            elif name.endswith("high"):
                values = values.abs() + 1.0
            elif name.endswith("low"):
                values = -values.abs() - 1.0
            tensor.copy_(values)
        n_features = net.members[0].encoder.n_features
        if components:
            spectra = torch.randn(200, n_features, generator=generator).numpy()
            net.domain.basis.copy_(torch.as_tensor(PCA(n_components=components).fit(spectra).components_))
        precision = torch.randn(9, 9, generator=generator)
        net.domain.precision.copy_(precision @ precision.T / 9 + torch.eye(9))
    return net


def inputs(seed: int, n: int, n_bands: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1)
    reflectance = 0.3 + 0.1 * torch.randn(n, n_bands, generator=generator)
    covariates = torch.randn(n, 8, generator=generator) * 2  # some beyond the fitted range
    survey = torch.rand(n, generator=generator) * 8
    survey[::3] = torch.nan
    return reflectance, covariates, survey


def assert_same_outputs(net: StudentEnsemble, fused: FusedEnsemble, batch) -> None:
    with torch.inference_mode():
        out, score = net.forward_with_domain(*batch)
        fast, fast_score = fused.forward_with_domain(*batch)
    scale = 1 + out.mean.abs()
    assert float(((fast.mean - out.mean).abs() / scale).max()) < RELATIVE
    torch.testing.assert_close(fast.std, out.std, rtol=RELATIVE, atol=1e-6)
    torch.testing.assert_close(fast_score, score, rtol=RELATIVE, atol=1e-6)
    for got, expected in zip(fast.features, out.features, strict=True):
        torch.testing.assert_close(got, expected, rtol=RELATIVE, atol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    members=st.integers(1, 3),
    preprocessing=st.sampled_from([(1, False), (2, False), (1, True), (3, True)]),
    head=st.sampled_from(["mlp", "transformer"]),
    covariates=st.sampled_from([0, 2, 8]),
    survey=st.booleans(),
    linear=st.booleans(),
    components=st.sampled_from([0, 3]),
)
def test_the_fused_forward_pass_gives_the_ensembles_outputs(
    seed, members, preprocessing, head, covariates, survey, linear, components
):
    binning, derivative = preprocessing
    net = random_student(seed, members, 24, binning, derivative, head, covariates, survey, linear, components)
    assert_same_outputs(net, FusedEnsemble(net), inputs(seed, 64, 24))


def test_the_members_statistics_are_folded_not_shared():
    """Members standardising with different statistics: one shared copy of the spectrum, standardised
    with the first member's, still gives each member its own first layer's input exactly."""
    net = random_student(7, 3, 24, 1, False, "mlp", 2, True, True, 3)
    norms = [member.encoder.norm for member in net.members]
    assert not torch.equal(norms[0].mean, norms[1].mean) and not torch.equal(norms[0].std, norms[2].std)
    fused = FusedEnsemble(net)
    batch = inputs(7, 32, 24)
    assert_same_outputs(net, fused, batch)
    x = norms[1](net.members[1].encoder.features(batch[0]))
    expected = net.members[1].encoder.net[0](x)
    folded = torch.addmm(fused.first_bias[1], norms[0](batch[0]), fused.first_weight[1].T)
    torch.testing.assert_close(folded, expected, rtol=RELATIVE, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), components=st.integers(1, 6), offset=st.floats(-3, 3))
def test_the_residual_off_the_principal_axes_is_the_norm_less_the_coordinates(seed, components, offset):
    """``‖c‖² − ‖cBᵀ‖²`` with an orthonormal basis is the squared distance off the subspace."""
    rng = np.random.default_rng(seed)
    training = rng.normal(size=(100, 12)) @ rng.normal(size=(12, 12))
    pca = PCA(n_components=components).fit(training)
    score = DomainScore(4, 12, components)
    score.basis.copy_(torch.as_tensor(pca.components_, dtype=torch.float32))
    score.spectral_mean.copy_(torch.as_tensor(pca.mean_, dtype=torch.float32))
    spectra = torch.as_tensor(
        rng.normal(size=(50, 12)) @ rng.normal(size=(12, 12)) + offset, dtype=torch.float32
    )
    centred = spectra.double() - score.spectral_mean.double()
    basis = score.basis.double()
    explicit = (centred - centred @ basis.T @ basis).norm(dim=-1).float()
    got = score.residual_distance(spectra)
    torch.testing.assert_close(got, explicit, rtol=1e-3, atol=1e-3 * float(explicit.max()))


def test_a_covariates_only_student_is_not_fused_and_runs_its_own_forward_pass():
    arch = builders.StudentArch(
        encoder=None,
        head=builders.HeadArch(kind="mlp", latent_dim=0, n_covariates=8, hidden=(8,)),
        n_covariates=8,
        survey=False,
        linear=True,
        members=2,
    )
    net = builders.build_student(arch).eval()
    assert unfusable(net) == "a member has no spectral encoder"
    with pytest.raises(
        ValueError, match="cannot fuse this student ensemble: a member has no spectral encoder"
    ):
        FusedEnsemble(net)
    assert inference_forward(net, Precision.FP32) == net.forward_with_domain


def test_the_predictor_runs_the_fused_pass_in_fp32_and_the_ensembles_own_under_autocast(demo_world):
    predictor = StudentPredictor.load(demo_world.student, device="cpu")
    assert isinstance(predictor.forward.__self__, FusedEnsemble)
    assert predictor.forward.__self__.ensemble is predictor.net
    assert inference_forward(predictor.net, Precision.BF16) == predictor.net.forward_with_domain
    batch = inputs(0, 500, len(predictor.wavelength))
    reflectance = batch[0].clamp(0, 1)
    covariates = predictor.net.covariate_range.mean.expand(500, 8).clone()
    assert_same_outputs(predictor.net, predictor.forward.__self__, (reflectance, covariates, batch[2]))
