"""The models soil spectroscopists would pick instead, tuned as they would tune them.

- :class:`TunedPLSR`: PLSR with the pre-treatment (none, SNV, first derivative) and the number of
  components chosen by inner cross-validation;
- :class:`TunedSVR`: an RBF support-vector regression on principal components, with the
  pre-treatment, the number of components, ``C`` and the kernel width chosen by inner CV.

Both read ``X`` as :class:`deepsalt.DeepSaltRegressor` does (spectrum along ``wavelengths``, then
covariates), so a comparison takes three lines::

    from deepsalt.estimator import DeepSaltRegressor, TunedPLSR, TunedSVR
    for model in (TunedPLSR(wavelengths=wl), TunedSVR(wavelengths=wl), DeepSaltRegressor(wavelengths=wl)):
        print(type(model).__name__, cross_val_score(model, X, y, cv=10, scoring="neg_root_mean_squared_error").mean())
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from deepsalt.estimator.search import (
    Choice,
    choose,
    features,
    inner_splits,
    plsr_candidates,
    svr_candidates,
)
from deepsalt.estimator.spectra import PRETREATMENTS, ColumnLayout
from deepsalt.models.target import TargetScaler


class _Tuned(RegressorMixin, BaseEstimator):
    """Shared fit/predict: read the columns, standardise y, search by inner CV, refit the best."""

    def _search(self, spectra, covariates, y, splits) -> Choice:
        raise NotImplementedError

    def fit(self, X, y, groups=None):
        """``groups`` keeps replicates of one sample in the same inner fold."""
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2, dtype=np.float64)
        layout = ColumnLayout.from_wavelengths(self.wavelengths, X.shape[1])
        spectra, covariates = layout.split(X)
        self.target_scaler_ = TargetScaler.fit(y, "none")
        yz = self.target_scaler_.encode(y).astype(np.float64)
        splits = inner_splits(
            len(y), None if groups is None else np.asarray(groups), self.cv, self.random_state
        )
        pretreatments = self.pretreatments if layout.n_bands >= 3 else ("none",)
        if not splits:
            raise ValueError(
                f"{type(self).__name__} needs at least 4 rows to choose its settings by inner CV"
            )
        self.choice_ = self._search(spectra, covariates, yz, splits, pretreatments)
        self.model_ = self.choice_.fit(spectra, covariates, yz)
        self.layout_ = layout
        return self

    def predict(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        spectra, covariates = self.layout_.split(X)
        z = np.asarray(self.model_.predict(features(spectra, covariates, self.choice_.params.pretreatment)))
        mean, _ = self.target_scaler_.decode(z.ravel(), np.zeros(len(X)))
        return mean.astype(np.float64)


class TunedPLSR(_Tuned):
    """PLSR with pre-treatment and components chosen by inner CV (``choice_.params`` holds them)."""

    def __init__(
        self,
        wavelengths: Sequence[float] | None = None,
        pretreatments: Sequence[str] = PRETREATMENTS,
        max_components: int = 20,
        cv: int = 5,
        random_state: int = 0,
    ):
        self.wavelengths = wavelengths
        self.pretreatments = pretreatments
        self.max_components = max_components
        self.cv = cv
        self.random_state = random_state

    def _search(self, spectra, covariates, y, splits, pretreatments) -> Choice:
        return choose(
            plsr_candidates(spectra, covariates, y, splits, pretreatments, self.max_components), y, splits
        )


class TunedSVR(_Tuned):
    """RBF SVR on whitened principal components, every setting chosen by inner CV (``choice_.params``)."""

    def __init__(
        self,
        wavelengths: Sequence[float] | None = None,
        pretreatments: Sequence[str] = PRETREATMENTS,
        cv: int = 5,
        random_state: int = 0,
    ):
        self.wavelengths = wavelengths
        self.pretreatments = pretreatments
        self.cv = cv
        self.random_state = random_state

    def _search(self, spectra, covariates, y, splits, pretreatments) -> Choice:
        return choose(svr_candidates(spectra, covariates, y, splits, pretreatments), y, splits)
