"""The target space the heads work in, and the way back to dS/m.

ECe is heavy-tailed, so the heads predict a Gaussian N(m, s²) over ``y = (log1p(ECe) − μ) / σ``
(μ, σ: training statistics). In dS/m the predictive distribution is a shifted log-normal:
``1 + ECe ~ LogNormal(μ + σm, (σs)²)``. We report

- ``ece = expm1(max(μ + σm, 0))``: its median (the MAE-optimal point estimate), never below 0 dS/m
  (:func:`ece_from_log`: a Gaussian in log space can put its median below log1p(0), which no soil has);
- ``ece_std = (1 + ece) · σs``: the delta-method spread in dS/m.

The pair is invertible, so exact log-normal intervals are recovered with :func:`interval`
(``ece ± z·ece_std`` is only the first-order approximation). With ``transform="none"`` the
Gaussian is already in dS/m and both mappings are linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

Transform = Literal["log1p", "none"]


@dataclass(frozen=True)
class TargetScaler:
    transform: Transform
    mean: float
    std: float

    @classmethod
    def fit(cls, ece: np.ndarray, transform: Transform = "log1p") -> TargetScaler:
        y = _forward(np.asarray(ece, dtype=np.float64), transform)
        return cls(transform, float(y.mean()), float(max(y.std(), 1e-6)))

    def encode(self, ece: np.ndarray) -> np.ndarray:
        return ((_forward(np.asarray(ece, dtype=np.float64), self.transform) - self.mean) / self.std).astype(
            np.float32
        )

    def decode(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model-space (mean, std) → (ece, ece_std) in dS/m as described in the module docstring."""
        m = np.asarray(mean, dtype=np.float64) * self.std + self.mean
        s = np.asarray(std, dtype=np.float64) * self.std
        if self.transform == "log1p":
            ece = ece_from_log(m)
            return ece.astype(np.float32), ((1 + ece) * s).astype(np.float32)
        return m.astype(np.float32), s.astype(np.float32)

    def to_dict(self) -> dict:
        return {"transform": self.transform, "mean": self.mean, "std": self.std}


def ece_from_log(log1p_ece: np.ndarray) -> np.ndarray:
    """ECe in dS/m from a log1p-space value, floored at 0 dS/m (NaN stays NaN)."""
    return np.expm1(np.maximum(log1p_ece, 0.0))


def _forward(ece: np.ndarray, transform: Transform) -> np.ndarray:
    if transform == "log1p":
        return np.log1p(np.clip(ece, 0, None))
    return ece


def interval(
    ece: np.ndarray, ece_std: np.ndarray, level: float, transform: Transform = "log1p"
) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval (lower, upper) in dS/m at ``level`` (e.g. 0.95) from ``ece``/``ece_std``."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    ece = np.asarray(ece, dtype=np.float64)
    ece_std = np.asarray(ece_std, dtype=np.float64)
    if transform == "log1p":
        s = ece_std / (1 + ece)
        return np.expm1(np.log1p(ece) - z * s), np.expm1(np.log1p(ece) + z * s)
    return ece - z * ece_std, ece + z * ece_std
