"""Classical baselines on satellite pixel + covariates, tuned and scored in the same harness.

All three learn ``log1p(ECe)`` (as the DeepSalt heads do) and predict back in dS/m. PLSR's
number of components is chosen by an inner CV grouped by spatial block, so tuning never sees
a block of the outer test fold nor splits one.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BASELINE_LABELS = {
    "plsr": "PLSR (inner-CV components)",
    "random_forest": "random forest",
    "gradient_boosting": "gradient boosting (HistGB)",
}


def _log_target(model) -> TransformedTargetRegressor:
    return TransformedTargetRegressor(
        regressor=model, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


def fit_baseline(
    name: str,
    features: np.ndarray,
    ece: np.ndarray,
    blocks: np.ndarray,
    *,
    seed: int,
    inner_folds: int,
    max_components: int,
):
    """A fitted scikit-learn regressor (features → ECe in dS/m)."""
    if name == "plsr":
        n_max = max(1, min(max_components, features.shape[1], len(ece) - len(ece) // inner_folds - 1))
        search = GridSearchCV(
            make_pipeline(StandardScaler(), PLSRegression(scale=False)),
            {"plsregression__n_components": list(range(1, n_max + 1))},
            cv=GroupKFold(n_splits=min(inner_folds, len(np.unique(blocks)))),
            scoring="neg_root_mean_squared_error",
        )
        return _log_target(search).fit(features, ece, groups=blocks)
    if name == "random_forest":
        model = RandomForestRegressor(
            n_estimators=300, min_samples_leaf=2, max_features=0.3, random_state=seed
        )
    elif name == "gradient_boosting":
        model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
    else:
        raise ValueError(f"unknown baseline '{name}'; choose from {sorted(BASELINE_LABELS)}")
    return _log_target(model).fit(features, ece)
