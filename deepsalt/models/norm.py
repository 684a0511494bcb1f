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
