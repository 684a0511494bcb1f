"""The nonlinearity between the hidden layers of the encoders, decoders and MLP heads.

It is part of a checkpoint's architecture: a network is rebuilt with the activation it was trained
with. The exact GELU is what every checkpoint before the setting used, and stays the default:
ReLU predicts a map faster, but the students trained with it were less accurate where they
extrapolate (the unseen region; results/demo/NOTES.md and benchmarks/notes.md give both).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


class Activation(StrEnum):
    GELU = "gelu"
    """Exact (erf) GELU."""
    RELU = "relu"

    def module(self) -> nn.Module:
        from torch import nn  # here: the training config names the activation without importing torch

        return nn.GELU() if self is Activation.GELU else nn.ReLU()
