"""The one interface every training stage implements, and the typed hand-offs around it.

A stage is planned (its parents' checkpoints read once, lineage checked, its key derived), then
prepared (datasets built, parents' weights loaded, parent inference run), then trained by the one
loop in :mod:`deepsalt.training.loop` and finalised into a checkpoint. The chain runner
(:mod:`deepsalt.training.stages`) drives every stage through these hooks alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.models.target import TargetScaler
from deepsalt.training.builders import Architecture
from deepsalt.training.checkpoint import CheckpointMeta, check_axis, load_weights
from deepsalt.training.config import LoopSettings, Stage, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.loop import Batch, FitResult

MIN_SAMPLES = 8


@dataclass(frozen=True)
class ParentCheckpoint:
    """A parent stage's checkpoint: where it is and its metadata, read once when the child is planned."""

    url: str
    meta: CheckpointMeta

    def check_axis(self, name: str, values: np.ndarray) -> None:
        """The data's ``wavelength``/``wavenumber`` axis must be the one this checkpoint was trained on."""
        check_axis(
            name,
            self.meta.band_axis[name],
            values,
            f"{self.meta.stage} checkpoint {self.url} vs training data",
        )

    def load(self) -> dict[str, torch.Tensor]:
        """The weights, checked against the metadata read when the child was planned (not read again)."""
        return load_weights(self.url, self.meta)


@dataclass(frozen=True)
class StageOutput:
    """What a finished stage records beside its weights."""

    band_axis: dict[str, list[float]]
    normalisation: dict[str, Any]
    architecture: Architecture
    metrics: dict[str, float]


class StageTrainer(ABC):
    """Hooks of one stage. ``__init__`` only stores its inputs; the work starts in :meth:`prepare`."""

    stage: ClassVar[Stage]
    revision: ClassVar[int] = 1
    """Raised when the code changes what a checkpoint of the same settings, data and parents holds
    (a new buffer, a fitted quantity computed another way). It is part of the stage's key, so a
    checkpoint written by older code is trained again instead of silently reused. Revision 1 adds
    nothing to the key: the keys of checkpoints written before revisions existed stay valid."""

    def __init__(self, config: TrainConfig, data: TrainingData, parents: Mapping[Stage, ParentCheckpoint]):
        self.config, self.data, self.parents = config, data, parents
        self.train_set: TensorDataset | None = None
        self.val_set: Batch | None = None

    @classmethod
    @abstractmethod
    def parent_stages(cls, config: TrainConfig) -> tuple[Stage, ...]:
        """The stages whose checkpoints this one builds on, under ``config``."""

    @classmethod
    def check_lineage(
        cls, config: TrainConfig, data: TrainingData, parents: Mapping[Stage, ParentCheckpoint]
    ) -> None:
        """Raise :class:`deepsalt.errors.LineageError` when the parents do not fit together or the data.

        Stages without parents have nothing to check.
        """
        return None

    @property
    def restore_best(self) -> bool:
        """Keep the best validation epoch's weights (early stopping); False: the last epoch's."""
        return True

    @property
    def settings(self) -> LoopSettings:
        return self.config.settings(self.stage)

    @abstractmethod
    def prepare(self) -> None:
        """Build ``train_set`` and ``val_set`` (may load parents' weights and run their inference)."""

    @abstractmethod
    def build(self) -> nn.Module:
        """The module the loop trains; its ``forward`` is what the loss calls (so DDP sees every step)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def val_loss(self, model: nn.Module, val: Batch) -> float: ...

    def begin_epoch(self, model: nn.Module, epoch: int) -> None:
        """Before each epoch's batches (eval mode, no gradients): refresh targets that depend on the
        model. Most stages have none."""
        return None

    @abstractmethod
    def finalise(self, model: nn.Module, result: FitResult) -> tuple[dict[str, torch.Tensor], StageOutput]:
        """The weights to save (of the deployable network) and what to record beside them."""


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split of ``n`` rows, the same for every stage on the same data."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)


def quality(pred_mean: np.ndarray, obs: np.ndarray, scaler: TargetScaler) -> dict[str, float]:
    """Validation MAE and R² in dS/m and R² of log1p, from model-space means and observations (dS/m)."""
    pred, _ = scaler.decode(pred_mean, np.ones(len(pred_mean)))
    if len(obs) == 0:
        return {}
    mae = float(np.mean(np.abs(pred - obs)))
    r2 = float(1 - np.sum((pred - obs) ** 2) / max(np.sum((obs - obs.mean()) ** 2), 1e-12))
    lp, lo = np.log1p(np.clip(pred, 0, None)), np.log1p(obs)
    r2_log = float(1 - np.sum((lp - lo) ** 2) / max(np.sum((lo - lo.mean()) ** 2), 1e-12))
    return {"val_mae": mae, "val_r2": r2, "val_r2_log": r2_log}
