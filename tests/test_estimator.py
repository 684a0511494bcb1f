"""``DeepSaltRegressor``: scikit-learn conventions, column layouts, distillation, intervals.

Accuracy against the baselines is measured in ``benchmarks/estimator.py`` (10-fold CV on public
tables); here the settings are tiny and the tests are about behaviour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import deepsalt
from deepsalt.estimator import DeepSaltRegressor, TunedPLSR, TunedSVR
from deepsalt.estimator.search import SVRParams
from deepsalt.estimator.spectra import pretreat

FIXTURES = Path(__file__).parent / "fixtures" / "estimator"
# Tiny network and few epochs: the checks are about conventions, not accuracy.
TINY = {
    "cv": 2,
    "max_components": 3,
    "n_networks": 1,
    "epochs": 3,
    "patience": 2,
    "latent_dim": 4,
    "max_features": 16,
    "pretrain_epochs": 1,
}


@parametrize_with_checks([DeepSaltRegressor(**TINY), TunedPLSR(cv=2, max_components=3), TunedSVR(cv=2)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _table(name: str, targets: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.read_csv(FIXTURES / name)
    bands = [c for c in table.columns if c not in ("file_id", "sample_id", *targets)]
    return table, np.array([float(c) for c in bands])


@pytest.fixture(scope="module")
def yamsys():
    table, wavenumbers = _table("yamsys_mir_every4th.csv.gz", ["C", "clay"])
    rows = table.iloc[:90]
    return rows.iloc[:, 4:].to_numpy(), rows["C"].to_numpy(), rows["sample_id"].to_numpy(), wavenumbers


def test_comparison_in_three_lines(yamsys):
    """The baselines read X as the estimator does, so one loop compares all three."""
    X, y, _, wn = yamsys
    scores = {
        type(m).__name__: -cross_val_score(m, X, y, cv=3, scoring="neg_root_mean_squared_error").mean()
        for m in (
            TunedPLSR(wavelengths=wn, cv=3),
            TunedSVR(wavelengths=wn, cv=3),
            DeepSaltRegressor(wavelengths=wn, **TINY),
        )
    }
    assert set(scores) == {"TunedPLSR", "TunedSVR", "DeepSaltRegressor"}
    assert all(0 < s < y.std() * 1.5 for s in scores.values()), scores


def test_stack_members_weights_and_intervals(yamsys):
    X, y, groups, wn = yamsys
    model = DeepSaltRegressor(wavelengths=wn, **{**TINY, "cv": 3}).fit(X, y, groups=groups)
    names = set(model.stack_weights_)
    assert names == {f"{f}:{p}" for f in ("plsr", "svr") for p in ("none", "snv", "sg1")} | {"network"}
    assert all(w >= 0 for w in model.stack_weights_.values())
    assert sum(model.stack_weights_.values()) == pytest.approx(1.0)
    assert model.pretrain_rows_ > len(y)  # the shipped MIR spectra joined the table's own rows
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == y.shape and np.all(std > 0)
    np.testing.assert_allclose(model.predict(X), mean)


def test_wavelength_order_and_covariate_columns(yamsys):
    X, y, groups, wn = yamsys
    covariate = np.random.default_rng(0).normal(size=(len(y), 1))
    Xc = np.hstack([X, covariate])
    ref = DeepSaltRegressor(wavelengths=wn, **TINY).fit(Xc, y, groups=groups)
    flipped = np.hstack([X[:, ::-1], covariate])  # same spectra, ascending wavenumber columns
    other = DeepSaltRegressor(wavelengths=wn[::-1], **TINY).fit(flipped, y, groups=groups)
    np.testing.assert_allclose(ref.predict(Xc), other.predict(flipped), rtol=1e-5, atol=1e-6)
    assert ref.n_features_in_ == X.shape[1] + 1
    assert ref.layout_.n_covariates == 1
    changed = Xc.copy()
    changed[:, -1] += 5.0  # the covariate column reaches the prediction
    assert not np.allclose(ref.predict(changed), ref.predict(Xc))


def test_covariates_only_table_predicts_with_intervals():
    table = pd.read_csv(FIXTURES / "limesoda_bb250_covariates.csv.gz").iloc[:120]
    X = table.drop(columns=["sample_id", "SOC", "Clay"]).to_numpy()
    y = table["SOC"].to_numpy()
    model = DeepSaltRegressor(wavelengths=[], **TINY).fit(X[:100], y[:100])
    assert set(model.stack_weights_) == {"plsr:none", "svr:none", "network"}
    assert model.pretrain_rows_ == 0
    mean, std = model.predict(X[100:], return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_lab_teacher_is_distilled(yamsys):
    """With paired lab spectra the KL term is non-zero in training and the network changes."""
    X, y, groups, _ = yamsys
    field_like = X[:, ::8] + np.random.default_rng(1).normal(0, 0.02, size=X[:, ::8].shape)
    settings = {**TINY, "epochs": 4, "members": ("network",)}
    plain = DeepSaltRegressor(**settings).fit(field_like, y, groups=groups)
    distilled = DeepSaltRegressor(**settings).fit(field_like, y, groups=groups, lab_X=X)
    kl = [step["response"] for step in distilled.distillation_history_]
    assert kl and min(kl) > 0
    assert any(step["feature"] > 0 for step in distilled.distillation_history_)
    assert plain.distillation_history_ == []
    a = plain.network_.predict(field_like, np.empty((len(y), 0)))[0]
    b = distilled.network_.predict(field_like, np.empty((len(y), 0)))[0]
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="lab_X must be a finite"):
        DeepSaltRegressor(**settings).fit(field_like, y, lab_X=X[:10])


def test_bad_settings_are_explained():
    X = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(ValueError, match="X has 5 columns but 6 wavelengths were given"):
        DeepSaltRegressor(wavelengths=np.arange(6.0), **TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="finite and distinct"):
        DeepSaltRegressor(wavelengths=[1.0, 1.0, 2.0], **TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="members must be a non-empty subset"):
        DeepSaltRegressor(members=("plsr", "forest"), **TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="pretrain must be one of"):
        DeepSaltRegressor(pretrain="imagenet", **TINY).fit(X, X[:, 0])


def test_lazy_export_and_clone():
    assert deepsalt.DeepSaltRegressor is DeepSaltRegressor
    model = DeepSaltRegressor(wavelengths=[400.0, 500.0], epochs=7)
    copy = clone(model)
    assert copy.get_params()["epochs"] == 7 and copy is not model
    assert not hasattr(copy, "stack_")  # nothing fitted in __init__ or clone


@settings(max_examples=25, deadline=None)
@given(n_bands=st.integers(3, 8), seed=st.integers(0, 2**16))
def test_svr_scores_of_snv_rows_do_not_depend_on_the_batch(n_bands, seed):
    """SNV rows sum to zero, so one principal direction is null: it must not become a whitened feature."""
    rng = np.random.default_rng(seed)
    x = pretreat(rng.uniform(0.1, 0.6, size=(30, n_bands)), "snv")
    y = x[:, 0] - x[:, 1]
    model = SVRParams("snv", n_bands, 10.0, 0.3).build(*x.shape).fit(x, y)
    assert model[1].n_components_ == n_bands - 1
    row_by_row = np.concatenate([model.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(row_by_row, model.predict(x), rtol=0, atol=1e-9)
