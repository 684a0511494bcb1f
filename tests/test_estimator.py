"""``DeepSaltRegressor``: scikit-learn conventions, spectral axes, distillation, and no loss to a tuned PLSR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

import deepsalt
from deepsalt.estimator import DeepSaltRegressor, gaussian_kl

FIXTURE = Path(__file__).parent / "fixtures" / "estimator" / "yamsys_mir_every4th.csv.gz"
# Small network and few epochs: the checks are about conventions, not accuracy.
TINY = {
    "max_epochs": 2,
    "cv": 2,
    "blend_weights": (0.0, 1.0),
    "max_components": 3,
    "n_tokens": 2,
    "d_model": 8,
    "n_layers": 1,
}
FAST = {"max_epochs": 25, "cv": 3, "blend_weights": (0.0, 0.5, 1.0)}


@parametrize_with_checks([DeepSaltRegressor(**TINY)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def yamsys() -> pd.DataFrame:
    return pd.read_csv(FIXTURE)


def _xy(table: pd.DataFrame, label: str):
    rows = table.dropna(subset=[label])
    wavenumbers = np.array([float(c) for c in rows.columns[4:]])
    return rows.iloc[:, 4:].to_numpy(), rows[label].to_numpy(), rows["sample_id"].to_numpy(), wavenumbers


def _tuned_plsr():
    return GridSearchCV(
        PLSRegression(),
        {"n_components": list(range(1, 21))},
        cv=GroupKFold(3),
        scoring="neg_root_mean_squared_error",
    )


@pytest.mark.slow
@pytest.mark.parametrize("label", ["C", "clay"])
def test_does_not_lose_to_a_tuned_plsr_on_real_spectra(yamsys, label):
    """Same outer folds (grouped by soil sample: replicate scans never straddle a split), same inner CV."""
    X, y, groups, wavenumbers = _xy(yamsys, label)
    pls_pred, dsr_pred, dsr_sd = np.zeros_like(y), np.zeros_like(y), np.zeros_like(y)
    for train, test in GroupKFold(3).split(X, y, groups):
        pls = _tuned_plsr().fit(X[train], y[train], groups=groups[train])
        pls_pred[test] = pls.predict(X[test]).ravel()
        model = DeepSaltRegressor(wavelengths=wavenumbers, **FAST).fit(
            X[train], y[train], groups=groups[train]
        )
        dsr_pred[test], dsr_sd[test] = model.predict(X[test], return_std=True)
    rmse_pls = np.sqrt(np.mean((pls_pred - y) ** 2))
    rmse_dsr = np.sqrt(np.mean((dsr_pred - y) ** 2))
    print(f"{label}: tuned PLSR RMSE {rmse_pls:.3f}, DeepSaltRegressor RMSE {rmse_dsr:.3f}")
    assert rmse_dsr <= rmse_pls
    inside95 = np.mean(np.abs(dsr_pred - y) <= 1.96 * dsr_sd)
    assert 0.85 <= inside95 <= 1.0  # the inner-CV calibrated spread is roughly honest out of fold


def test_wavelength_order_and_covariate_columns(yamsys):
    X, y, groups, wavenumbers = _xy(yamsys.iloc[:90], "C")
    covariate = np.random.default_rng(0).normal(size=(len(y), 1))
    Xc = np.hstack([X, covariate])
    settings = {**FAST, "blend_weights": (0.0,)}
    ref = DeepSaltRegressor(wavelengths=wavenumbers, **settings).fit(Xc, y, groups=groups)
    flipped = np.hstack([X[:, ::-1], covariate])  # same spectra, ascending wavenumber columns
    other = DeepSaltRegressor(wavelengths=wavenumbers[::-1], **settings).fit(flipped, y, groups=groups)
    np.testing.assert_allclose(ref.predict(Xc), other.predict(flipped), rtol=1e-6)
    assert ref.n_features_in_ == X.shape[1] + 1
    assert ref.plsr_.x_weights_.shape[0] == X.shape[1] + 1  # the covariate column is used


def test_bad_wavelengths_are_explained():
    X = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(ValueError, match="X has 5 columns but 6 wavelengths were given"):
        DeepSaltRegressor(wavelengths=np.arange(6.0), **TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="finite and distinct"):
        DeepSaltRegressor(wavelengths=[1.0, 1.0, 2.0], **TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="preprocess must be one of"):
        DeepSaltRegressor(preprocess="msc", **TINY).fit(X, X[:, 0])


def test_lab_teacher_is_distilled(yamsys):
    """With paired lab spectra the network is trained against the teacher too, so its weights differ."""
    X, y, groups, _ = _xy(yamsys.iloc[:60], "C")
    satellite_like = X[:, ::8] + np.random.default_rng(1).normal(0, 0.02, size=X[:, ::8].shape)
    settings = {
        **FAST,
        "blend_weights": (1.0,),
        "max_epochs": 5,
        "preprocess": "snv",
        "cv": 2,
        "max_components": 5,
    }
    plain = DeepSaltRegressor(**settings).fit(satellite_like, y, groups=groups)
    distilled = DeepSaltRegressor(**{**settings, "distill_weight": 1.0}).fit(
        satellite_like, y, groups=groups, lab_X=X
    )
    assert not np.allclose(plain.predict(satellite_like), distilled.predict(satellite_like))
    with pytest.raises(ValueError, match="lab_X must be a finite"):
        DeepSaltRegressor(**settings).fit(satellite_like, y, lab_X=X[:10])


def test_gaussian_kl_is_zero_only_for_equal_distributions():
    mu, sd = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.5])
    assert torch.allclose(gaussian_kl(mu, sd, mu, sd), torch.zeros(2))
    assert (gaussian_kl(mu, sd, mu + 0.3, sd * 2) > 0).all()


def test_lazy_export_and_clone():
    assert deepsalt.DeepSaltRegressor is DeepSaltRegressor
    model = DeepSaltRegressor(wavelengths=[400.0, 500.0], max_epochs=7)
    copy = clone(model)
    assert copy.get_params()["max_epochs"] == 7 and copy is not model
    assert not hasattr(copy, "plsr_")  # nothing fitted in __init__ or clone
