"""The maps users have today, as baselines fitted and scored in the same harness as DeepSalt.

- **survey map**: each sample predicted by its SSURGO map unit's ECe (what a user reads off the
  survey); nothing is learnt except the spread of the map around measured samples.
- **PLSR, random forest, gradient boosting (HistGB)**: scikit-learn on the inputs DeepSalt's student
  gets: the pixel's reflectance, the 8 covariates and log1p of the survey ECe, learning log1p(ECe)
  (as the DeepSalt heads do) from the measured, geo-paired samples. PLSR's number of components is
  chosen by an inner CV grouped by spatial block, so tuning never splits a block.
- **gradient boosting on survey-labelled pixels**: the other way to use the survey: its map-unit ECe
  as a (coarse) label on the pool pixels, beside the measured samples, without the survey as input.

Every baseline predicts a Gaussian in log1p space (``transform="log1p"``, like the student): the
mean from the model, one spread from its out-of-fold residuals on the training rows (block-grouped
CV), so its 95 % intervals are scored like DeepSalt's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from deepsalt.models.target import ece_from_log

BaselineName = Literal["survey_map", "plsr", "random_forest", "gradient_boosting", "gbm_survey_labels"]

BASELINE_LABELS: dict[str, str] = {
    "survey_map": "survey map (map-unit ECe)",
    "plsr": "PLSR (inner-CV components)",
    "random_forest": "random forest",
    "gradient_boosting": "gradient boosting (HistGB)",
    "gbm_survey_labels": "gradient boosting on survey-labelled pixels (no survey input)",
}


class FeatureSet(StrEnum):
    """What a baseline reads per pixel (recorded in its checkpoint card)."""

    SURVEY = "survey ECe"
    WITH_SURVEY = "reflectance + covariates + log1p(survey ECe)"
    WITHOUT_SURVEY = "reflectance + covariates"


FEATURES: dict[str, FeatureSet] = {
    "survey_map": FeatureSet.SURVEY,
    "plsr": FeatureSet.WITH_SURVEY,
    "random_forest": FeatureSet.WITH_SURVEY,
    "gradient_boosting": FeatureSet.WITH_SURVEY,
    "gbm_survey_labels": FeatureSet.WITHOUT_SURVEY,
}


@dataclass(frozen=True)
class BaselineSettings:
    """How the baselines are tuned and calibrated (from the evaluate config)."""

    inner_folds: int = 5
    """Block-grouped inner CV folds: PLSR components and the out-of-fold residual spread."""
    max_components: int = 20
    threads: int = 1
    """BLAS/OpenMP threads while fitting: on tables this small HistGB's OpenMP threads mostly wait
    for each other, and on shared cores they stall."""


@dataclass(frozen=True)
class Rows:
    """Training rows of a baseline: per-pixel inputs, measured ECe and the spatial block of each row."""

    reflectance: np.ndarray  # (n, bands)
    covariates: np.ndarray  # (n, 8)
    survey: np.ndarray  # (n,) survey ECe, dS/m
    ece: np.ndarray  # (n,) measured ECe, dS/m
    blocks: np.ndarray  # (n,) block label


def _log_ece(ece) -> np.ndarray:
    return np.log1p(np.clip(np.asarray(ece, dtype=np.float64), 0.0, None))


def features(
    feature_set: FeatureSet, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None
) -> np.ndarray:
    """The model matrix of ``feature_set``; rows with a missing input hold NaN."""
    n = len(reflectance)
    survey = np.full(n, np.nan) if survey is None else np.asarray(survey, dtype=np.float64)
    if feature_set is FeatureSet.SURVEY:
        return survey[:, None]
    parts = [np.asarray(reflectance, dtype=np.float64), np.asarray(covariates, dtype=np.float64)]
    if feature_set is FeatureSet.WITH_SURVEY:
        parts.append(_log_ece(survey)[:, None])
    return np.hstack(parts)


@dataclass(frozen=True)
class FittedBaseline:
    """A baseline ready to predict: ``estimator`` maps features to log1p(ECe) (None: the survey map)."""

    key: str
    estimator: Any | None
    log_sigma: float
    """Spread of the predictive Gaussian in log1p(ECe) space (RMS of out-of-fold residuals)."""

    @property
    def feature_set(self) -> FeatureSet:
        return FEATURES[self.key]

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ECe, spread) in dS/m, the spread as ``(1 + ECe) · σ_log`` (``deepsalt.models.target``); NaN
        where an input the baseline reads is missing."""
        x = features(self.feature_set, reflectance, covariates, survey)
        ok = np.isfinite(x).all(axis=1)
        log_mean = np.full(len(x), np.nan)
        if self.estimator is None:
            log_mean[ok] = _log_ece(x[ok, 0])
        elif ok.any():
            log_mean[ok] = np.ravel(self.estimator.predict(x[ok]))
        ece = ece_from_log(log_mean)
        return ece, (1.0 + ece) * self.log_sigma


def _estimator(key: str, seed: int, settings: BaselineSettings, n_rows: int, n_features: int, groups):
    if key == "plsr":
        folds = min(settings.inner_folds, len(np.unique(groups)))
        n_max = max(1, min(settings.max_components, n_features, n_rows - n_rows // folds - 1))
        return GridSearchCV(
            make_pipeline(StandardScaler(), PLSRegression(scale=False)),
            {"plsregression__n_components": list(range(1, n_max + 1))},
            cv=GroupKFold(n_splits=folds),
            scoring="neg_root_mean_squared_error",
        )
    if key == "random_forest":
        return RandomForestRegressor(
            n_estimators=300, min_samples_leaf=2, max_features=0.3, random_state=seed
        )
    if key in ("gradient_boosting", "gbm_survey_labels"):
        return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
    raise ValueError(f"unknown baseline '{key}'; choose from {sorted(BASELINE_LABELS)}")


def _fit(key: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, settings: BaselineSettings):
    model = _estimator(key, seed, settings, len(y), x.shape[1], groups)
    if key == "plsr":  # keep the refitted pipeline: the search's fit times would change every run
        return model.fit(x, y, groups=groups).best_estimator_
    return model.fit(x, y)


def fit_baseline(
    key: str,
    rows: Rows,
    *,
    seed: int,
    settings: BaselineSettings,
    extra: Rows | None = None,
) -> FittedBaseline:
    """Fit baseline ``key`` on the measured ``rows``. ``extra`` (the survey-labelled pool pixels,
    required by the baselines that learn from them) is always trained on and never used to measure
    the spread."""
    if key not in FEATURES:
        raise ValueError(f"unknown baseline '{key}'; choose from {sorted(BASELINE_LABELS)}")
    feature_set = FEATURES[key]
    if (extra is not None) != (feature_set is FeatureSet.WITHOUT_SURVEY):
        raise ValueError(
            f"baseline '{key}' {'needs' if extra is None else 'takes no'} survey-labelled pool pixels"
        )
    if len(rows.ece) < 2:
        raise ValueError(f"baseline '{key}' needs at least 2 measured training samples, got {len(rows.ece)}")
    x = features(feature_set, rows.reflectance, rows.covariates, rows.survey)
    y = _log_ece(rows.ece)
    groups = np.asarray(rows.blocks)
    if feature_set is FeatureSet.SURVEY:
        return FittedBaseline(key, None, float(np.sqrt(np.mean((y - _log_ece(x[:, 0])) ** 2))))
    ex_x, ex_y = (
        (np.empty((0, x.shape[1])), np.empty(0))
        if extra is None
        else (features(feature_set, extra.reflectance, extra.covariates, extra.survey), _log_ece(extra.ece))
    )

    def fit_on(idx: np.ndarray):
        return _fit(
            key, np.vstack([x[idx], ex_x]), np.concatenate([y[idx], ex_y]), groups[idx], seed, settings
        )

    folds = min(settings.inner_folds, len(np.unique(groups)))
    out_of_fold = np.full(len(y), np.nan)
    with threadpool_limits(limits=settings.threads):
        if folds >= 2:
            for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
                out_of_fold[test] = np.ravel(fit_on(train).predict(x[test]))
        estimator = fit_on(np.arange(len(y)))
    residual = (y - out_of_fold)[np.isfinite(out_of_fold)]
    sigma = float(np.sqrt(np.mean(residual**2))) if residual.size else np.nan
    return FittedBaseline(key, estimator, sigma)


def baseline_key(label: str) -> str:
    """The key of the baseline named ``label`` in the report (``BASELINE_LABELS``)."""
    for key, name in BASELINE_LABELS.items():
        if name == label:
            return key
    raise ValueError(f"'{label}' is not a baseline; the baselines are {sorted(BASELINE_LABELS.values())}")
