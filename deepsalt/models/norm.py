"""Standardisation with the training statistics stored as module buffers.

Keeping the statistics inside the module means a checkpoint cannot be used with the wrong ones,
and prediction is one forward call on raw inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Standardizer(nn.Module):
    """``(x − mean) / std`` per feature, with the statistics as buffers."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    @classmethod
    def empty(cls, n: int) -> Standardizer:
        return cls(torch.zeros(n), torch.ones(n))

    def fit(self, values: torch.Tensor | np.ndarray) -> Standardizer:
        """Set the statistics from the finite rows of ``values`` (n, features); returns self."""
        values = torch.as_tensor(np.asarray(values), dtype=torch.float32)
        finite = torch.isfinite(values).all(dim=1)
        rows = values[finite]
        self.mean.copy_(rows.mean(dim=0))
        self.std.copy_(rows.std(dim=0, unbiased=False).clamp_min(1e-6))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BoundedStandardizer(Standardizer):
    """A :class:`Standardizer` that also clamps each feature to the range it was fitted on.

    Covariates such as climate move far outside the training region's range when a model is
    applied to another region (several standard deviations), and a network's response there is
    an extrapolation nobody trained: the unseen-region errors were dominated by it. Clamping holds
    such a pixel at the nearest value the network learned from; :meth:`excess` says by how much it
    was held, so the domain score can flag it.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__(mean, std)
        n = self.mean.numel()
        self.register_buffer("low", torch.full((n,), -torch.inf))
        self.register_buffer("high", torch.full((n,), torch.inf))

    @classmethod
    def empty(cls, n: int) -> BoundedStandardizer:
        return cls(torch.zeros(n), torch.ones(n))

    def fit(self, values: torch.Tensor | np.ndarray) -> BoundedStandardizer:
        """Set the statistics and the range from the finite rows of ``values``; returns self."""
        super().fit(values)
        rows = self.unbounded(torch.as_tensor(np.asarray(values), dtype=torch.float32))
        rows = rows[torch.isfinite(rows).all(dim=1)]
        self.low.copy_(rows.min(dim=0).values)
        self.high.copy_(rows.max(dim=0).values)
        return self

    def unbounded(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised values, not clamped."""
        return super().forward(x)

    def excess(self, x: torch.Tensor) -> torch.Tensor:
        """Per row, the largest distance (in training standard deviations) of a feature outside its range."""
        z = self.unbounded(x)
        beyond = torch.maximum(z - self.high, self.low - z).clamp_min(0)
        return beyond.max(dim=-1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(self.unbounded(x), self.low), self.high)
