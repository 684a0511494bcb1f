"""Inner cross-validation shared by the baselines and the estimator: candidates, out-of-fold
predictions, the choice among them, and the stacking weights.

Every candidate of a model family is scored on the same inner folds, so the chosen one's
out-of-fold predictions are also what the stack weighs against the other families.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.model_selection import GroupKFold, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from deepsalt.estimator.spectra import pretreat

Splits = list[tuple[np.ndarray, np.ndarray]]
SVR_COMPONENTS = (5, 10, 20, 40)
SVR_C = (1.0, 10.0, 100.0)
SVR_GAMMA = (0.1, 0.3, 1.0)
"""RBF widths as multiples of 1/components (the whitened scores have unit variance each)."""
SVR_EPSILON = 0.1
"""In standardised target units."""
NULL_VARIANCE = 1e-10
"""A principal direction whose variance is below this share of the first's is one the rows do not span."""


class WhitenedScores(TransformerMixin, BaseEstimator):
    """Whitened principal-component scores: at most ``n_components``, none along a null direction.

    Whitening divides each score by its component's standard deviation. Along a direction the
    training rows do not span (SNV rows sum to zero; a derivative removes the offset) that deviation
    is rounding error, and dividing by it makes rounding noise a feature the SVR weighs, whose value
    for a row then depends on which other rows were predicted with it.
    """

    def __init__(self, n_components: int = 1):
        self.n_components = n_components

    def fit(self, X, y=None):
        self.pca_ = PCA(self.n_components, whiten=True, svd_solver="full").fit(X)
        variance = self.pca_.explained_variance_
        self.n_components_ = max(1, int(np.sum(variance > NULL_VARIANCE * variance[0])))
        return self

    def transform(self, X):
        return self.pca_.transform(X)[:, : self.n_components_]


def inner_splits(n: int, groups: np.ndarray | None, cv: int, seed: int) -> Splits:
    """Inner folds; grouped (replicates of one sample stay together) when ``groups`` is given.

    Empty when the rows cannot make two folds.
    """
    idx = np.arange(n)
    if groups is not None:
        k = min(cv, len(np.unique(groups)))
        return list(GroupKFold(n_splits=k).split(idx, groups=groups)) if k >= 2 else []
    k = min(cv, n // 2)
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(idx)) if k >= 2 else []


def features(spectra: np.ndarray, covariates: np.ndarray, pretreatment: str) -> np.ndarray:
    """What the classical models see: the pre-treated spectrum, then the covariates."""
    return np.hstack([pretreat(spectra, pretreatment), covariates])


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


@dataclass(frozen=True)
class PLSRParams:
    pretreatment: str
    n_components: int

    def build(self, n_rows: int, n_features: int) -> PLSRegression:
        return PLSRegression(n_components=max(1, min(self.n_components, n_features, n_rows - 1)), scale=True)


@dataclass(frozen=True)
class SVRParams:
    pretreatment: str
    n_components: int
    C: float
    gamma: float

    def build(self, n_rows: int, n_features: int) -> Pipeline:
        k = max(1, min(self.n_components, n_features, n_rows - 1))
        return make_pipeline(
            StandardScaler(),
            WhitenedScores(k),
            SVR(kernel="rbf", C=self.C, gamma=self.gamma / k, epsilon=SVR_EPSILON),
        )


@dataclass(frozen=True)
class Choice:
    """A model family's best candidate by inner-CV RMSE and honest out-of-fold predictions of it.

    ``oof`` on each inner fold comes from the candidate that is best on the *other* folds, so the
    stack does not trust a family for having picked, among many candidates, the one that happened
    to fit these folds best.
    """

    params: PLSRParams | SVRParams
    oof: np.ndarray
    rmse: float

    def fit(self, spectra: np.ndarray, covariates: np.ndarray, y: np.ndarray):
        x = features(spectra, covariates, self.params.pretreatment)
        return self.params.build(*x.shape).fit(x, y)


Candidates = dict  # params → out-of-fold predictions (rows,)


def choose(candidates: Candidates, y: np.ndarray, splits: Splits) -> Choice:
    """The best candidate by inner-CV RMSE, with out-of-fold predictions selected fold by fold."""
    params = list(candidates)
    errors = np.stack([(candidates[p] - y) ** 2 for p in params])  # (candidates, rows)
    best = int(np.argmin(errors.mean(axis=1)))
    honest = np.empty_like(y)
    for tr, te in splits:
        honest[te] = candidates[params[int(np.argmin(errors[:, tr].mean(axis=1)))]][te]
    return Choice(params[best], honest, float(np.sqrt(errors[best].mean())))


def plsr_candidates(
    spectra: np.ndarray,
    covariates: np.ndarray,
    y: np.ndarray,
    splits: Splits,
    pretreatments: Sequence[str],
    max_components: int,
) -> Candidates:
    """Pre-treatment × 1..``max_components`` components (capped by the smallest inner training set)."""
    n_max = min(
        max(1, min(max_components, spectra.shape[1] + covariates.shape[1], len(tr) - 1)) for tr, _ in splits
    )
    candidates = {}
    for method in pretreatments:
        x = features(spectra, covariates, method)
        oof = np.zeros((n_max, len(y)))
        for tr, te in splits:
            # One fit gives the 1..n_max component models: PLS components are nested (NIPALS deflation).
            model = PLSRegression(n_components=n_max, scale=True).fit(x[tr], y[tr])
            standardised = (x[te] - model._x_mean) / model._x_std
            for k in range(1, n_max + 1):
                oof[k - 1, te] = standardised @ _pls_coef(model, k) + model.intercept_[0]
        for k in range(1, n_max + 1):
            candidates[PLSRParams(method, k)] = oof[k - 1]
    return candidates


def _pls_coef(model: PLSRegression, k: int) -> np.ndarray:
    """Regression coefficients (standardised X → y) of the first ``k`` components of a fitted PLSR."""
    w, p, q = model.x_rotations_, model.x_loadings_, model.y_loadings_
    rotations = w[:, :k] @ np.linalg.pinv(p[:, :k].T @ w[:, :k])
    return (rotations @ q[:, :k].T)[:, 0] * model._y_std[0]


def svr_candidates(
    spectra: np.ndarray, covariates: np.ndarray, y: np.ndarray, splits: Splits, pretreatments: Sequence[str]
) -> Candidates:
    """Pre-treatment × principal components × C × RBF width; each PCA is fitted once per fold."""
    candidates: Candidates = {}
    for method in pretreatments:
        x = features(spectra, covariates, method)
        for tr, te in splits:
            k_max = max(1, min(max(SVR_COMPONENTS), x.shape[1], len(tr) - 1))
            scaler = StandardScaler().fit(x[tr])
            scores = WhitenedScores(k_max).fit(scaler.transform(x[tr]))
            z_tr, z_te = scores.transform(scaler.transform(x[tr])), scores.transform(scaler.transform(x[te]))
            for k in sorted({min(c, k_max) for c in SVR_COMPONENTS}):
                for c in SVR_C:
                    for g in SVR_GAMMA:
                        model = SVR(kernel="rbf", C=c, gamma=g / k, epsilon=SVR_EPSILON)
                        pred = model.fit(z_tr[:, :k], y[tr]).predict(z_te[:, :k])
                        candidates.setdefault(SVRParams(method, k, c, g), np.zeros(len(y)))[te] = pred
    return candidates


def simplex_weights(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that minimise the squared error of ``predictions @ w``.

    ``predictions`` is (rows, members) of out-of-fold predictions: the stack of the estimator.
    """
    penalty = 1e3 * max(1.0, float(np.abs(predictions).max()))
    a = np.vstack([predictions, np.full((1, predictions.shape[1]), penalty)])
    b = np.concatenate([y, [penalty]])
    weights, _ = nnls(a, b)
    total = weights.sum()
    return weights / total if total > 0 else np.full(predictions.shape[1], 1.0 / predictions.shape[1])


def stacking_wins(predictions: np.ndarray, y: np.ndarray, splits: Splits) -> bool:
    """Whether stacking beats choosing one member, both judged on held-out inner folds.

    On each inner fold, weights fitted on the other folds' out-of-fold rows (stack) and the member
    best on those rows (choice) predict the fold; the pooled errors are compared.
    """
    stacked, single = np.empty_like(y), np.empty_like(y)
    for tr, te in splits:
        stacked[te] = predictions[te] @ simplex_weights(predictions[tr], y[tr])
        single[te] = predictions[te, int(np.argmin(((predictions[tr] - y[tr, None]) ** 2).mean(axis=0)))]
    return _rmse(stacked, y) <= _rmse(single, y)
