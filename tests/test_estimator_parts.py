"""The pieces the estimator adds: spectral augmentation, masked pretraining, the shipped spectra on a
user's axis, the inner-CV choice and the stack weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cross_decomposition import PLSRegression

from deepsalt.estimator.search import _pls_coef, choose, inner_splits, simplex_weights, stacking_wins
from deepsalt.estimator.spectra import DATA, ColumnLayout, library_on_axis, pretreat
from deepsalt.models.autoencoder import SpectralAutoencoder
from deepsalt.training import builders
from deepsalt.training.augment import SpectralAugmentation
from deepsalt.training.config import LoopSettings
from deepsalt.training.pretrain import pretrain_autoencoder
from deepsalt.training.runtime import WorkerContext


def _icraf() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / "icraf_soils_vnir.npz") as npz:
        return npz["wavelength"], npz["africa_europe"][:60].astype(np.float64)


def test_augmentation_scales_follow_the_spectra_and_draws_follow_the_generator():
    _, spectra = _icraf()
    aug = SpectralAugmentation.from_spectra(spectra)
    assert aug.offset == pytest.approx(0.02 * np.median(spectra))
    assert 0 < aug.noise < 0.01 * np.median(spectra)  # smooth soil spectra: tiny second differences
    x = torch.as_tensor(spectra, dtype=torch.float32)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    shift = (a - x).mean(dim=1)
    assert 0.3 * aug.offset < float(shift.std()) < 4 * (aug.offset + aug.slope + 0.05 * float(x.mean()))
    none = SpectralAugmentation(0.0, 0.0, 0.0, 0.0)
    assert torch.equal(none(x, torch.Generator().manual_seed(0)), x)


def test_masked_pretraining_lowers_reconstruction_error():
    _, spectra = _icraf()
    torch.manual_seed(0)
    autoencoder = SpectralAutoencoder(spectra.shape[1], 8, (32,), 0.0, binning=2, derivative=True)
    result = pretrain_autoencoder(
        autoencoder,
        spectra,
        LoopSettings(epochs=15, batch_size=16, lr=3e-3, weight_decay=0.0, patience=15),
        seed=0,
        ctx=WorkerContext(torch.device("cpu")),
    )
    first = result.history[0]["val_loss"]
    assert result.best_val < 0.7 * first
    features = autoencoder.encoder.standardized(torch.as_tensor(spectra, dtype=torch.float32))
    assert features.mean(dim=0).abs().max() < 1e-3  # standardised with the pretraining rows' statistics


def test_shipped_spectra_meet_the_users_axis_in_the_users_units():
    wavelength, reflectance = _icraf()
    axis = np.linspace(450, 2400, 300)
    own_reflectance = np.stack([np.interp(axis, wavelength, r) for r in reflectance[:20]])
    as_reflectance = library_on_axis(axis, own_reflectance, ("icraf_vnir",))
    assert as_reflectance.shape == (1400, 300) and as_reflectance.min() > 0 and as_reflectance.max() < 1
    as_absorbance = library_on_axis(axis, -np.log10(own_reflectance), ("icraf_vnir",))
    np.testing.assert_allclose(as_absorbance, -np.log10(np.clip(as_reflectance, 1e-4, None)), rtol=1e-9)
    wavenumbers = np.linspace(600, 4000, 500)
    mir_like = library_on_axis(wavenumbers, np.ones((3, 500)) + np.linspace(0, 1, 500), ("ossl_kssl_mir",))
    assert mir_like.shape[1] == 500  # the same kind: used (or refused on shape), never a unit error
    assert library_on_axis(wavenumbers, np.ones((3, 500)), ("icraf_vnir",)).shape == (0, 500)  # nm vs cm⁻¹
    with pytest.raises(ValueError, match="unknown library parts"):
        library_on_axis(axis, own_reflectance, ("usgs",))


def test_pretreatments_and_layout():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0]])
    snv = pretreat(x, "snv")
    np.testing.assert_allclose(snv[0], snv[1])  # scatter (a factor) removed
    np.testing.assert_allclose(pretreat(x + 7.0, "sg1"), pretreat(x, "sg1"))  # offset removed
    with pytest.raises(ValueError, match="pre-treatment must be one of"):
        pretreat(x, "msc")
    layout = ColumnLayout.from_wavelengths([500.0, 400.0], 3)
    spectra, covariates = layout.split(np.array([[5.0, 4.0, 9.0]]))
    np.testing.assert_array_equal(spectra, [[4.0, 5.0]])
    np.testing.assert_array_equal(covariates, [[9.0]])
    assert ColumnLayout.from_wavelengths([], 4).n_covariates == 4


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(0, 10_000))
def test_nested_plsr_components_equal_separate_fits(k, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(40, 12)), rng.normal(size=40)
    full = PLSRegression(8).fit(X[:30], y[:30])
    direct = PLSRegression(k).fit(X[:30], y[:30]).predict(X[30:]).ravel()
    nested = (X[30:] - full._x_mean) / full._x_std @ _pls_coef(full, k) + full.intercept_[0]
    np.testing.assert_allclose(nested, direct, atol=1e-8)


def test_choice_is_honest_and_stacking_must_win_held_out():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    splits = inner_splits(200, None, 5, 0)
    # Many pure-noise candidates: the best of them fits these rows by luck; honest OOF does not.
    candidates = {i: rng.normal(size=200) for i in range(200)}
    choice = choose(candidates, y, splits)
    assert np.sqrt(np.mean((choice.oof - y) ** 2)) > choice.rmse
    a, b = y + rng.normal(0, 0.5, 200), y + rng.normal(0, 0.5, 200)  # independent errors: averaging wins
    assert stacking_wins(np.column_stack([a, b]), y, splits)
    weights = simplex_weights(np.column_stack([a, b]), y)
    assert weights.sum() == pytest.approx(1) and weights.min() > 0.3
    noise = rng.normal(size=200)  # a useless member earns little (as much as shrinking towards 0 helps)
    weights = simplex_weights(np.column_stack([a, noise]), y)
    assert weights[0] > 0.8
    w = simplex_weights(np.column_stack([a, b, -y]), y)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1) and w[2] < 0.1


def test_student_with_binned_derivative_encoder_scores_its_domain():
    """The student's decoder reconstructs the encoder's features, however binned or differentiated."""
    arch = builders.StudentArch(
        encoder=builders.EncoderArch(n_inputs=100, latent_dim=4, hidden=(8,), binning=4, derivative=True),
        head=builders.HeadArch(kind="mlp", latent_dim=4, n_covariates=0, hidden=(8,)),
        n_covariates=0,
        survey=False,
        linear=True,
        members=2,
    )
    ensemble = builders.build_student(arch)
    out, score = ensemble.forward_with_domain(
        torch.rand(5, 100), torch.zeros(5, 0), torch.full((5,), torch.nan)
    )
    assert out.mean.shape == score.shape == (5,)
