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

    ``columns`` picks the input columns it reads (None: all, in order). A student that uses some
    of the product's covariates still takes the product's whole covariate table, so neither the
    predictor nor the mapper needs to know which ones it uses.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, columns: tuple[int, ...] | None = None):
        super().__init__(mean, std)
        n = self.mean.numel()
        self.register_buffer("low", torch.full((n,), -torch.inf))
        self.register_buffer("high", torch.full((n,), torch.inf))
        if columns is not None:
            if len(columns) != n:
                raise ValueError(f"{len(columns)} columns given for {n} features")
            self.register_buffer("columns", torch.tensor(columns, dtype=torch.long))
        else:
            self.columns = None

    @classmethod
    def empty(cls, n: int, columns: tuple[int, ...] | None = None) -> BoundedStandardizer:
        return cls(torch.zeros(n), torch.ones(n), columns)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The columns this standardiser reads."""
        return x if self.columns is None else x[..., self.columns]

    def fit(self, values: torch.Tensor | np.ndarray) -> BoundedStandardizer:
        """Set the statistics and the range from the finite rows of ``values``; returns self."""
        selected = self.select(torch.as_tensor(np.asarray(values), dtype=torch.float32))
        super().fit(selected)
        rows = super().forward(selected)
        rows = rows[torch.isfinite(rows).all(dim=1)]
        self.low.copy_(rows.min(dim=0).values)
        self.high.copy_(rows.max(dim=0).values)
        return self

    def unbounded(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised values of the selected columns, not clamped."""
        return super().forward(self.select(x))

    def excess(self, x: torch.Tensor) -> torch.Tensor:
        """Per row, the largest distance (in training standard deviations) of a feature outside its range."""
        z = self.unbounded(x)
        beyond = torch.maximum(z - self.high, self.low - z).clamp_min(0)
        return beyond.max(dim=-1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(self.unbounded(x), self.low), self.high)
