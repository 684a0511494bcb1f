"""Where a stage's loop runs: this process, or one Ray Train worker among N (DDP).

The loop only talks to a :class:`WorkerContext`, so the same code trains in-process and under
``ray.train.torch.TorchTrainer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

REPORT_INTERVAL_S = 10.0
"""Least wall time between metric reports to Ray Train (the last epoch is always reported). Ray
Train drains each worker's result queue (size 1) once per controller poll, every
``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``, so ``ray.train.report`` blocks until that poll when called
more often, which can cost more than a whole epoch of these small networks (measured in
``benchmarks/``). A time rather than an epoch count keeps reports apart however long an epoch
takes; nothing depends on Ray seeing every epoch, since the loop keeps its own history and writes
its own resume state."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class WorkerContext:
    """In-process context: one worker, no collective communication."""

    device: torch.device
    report_interval_s: float = 0.0
    """The loop reports an epoch once this long has passed since its last report, and the last one."""

    @property
    def rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        return loader

    def mean(self, value: float) -> float:
        """Average of ``value`` over workers (identical decisions everywhere)."""
        return value

    def report(self, metrics: dict[str, Any]) -> None:
        """Hand per-epoch metrics to the orchestrator (nothing to do in-process)."""

    def barrier(self) -> None:
        """Wait until every worker gets here (nothing to wait for in-process)."""


class RayWorkerContext(WorkerContext):
    """Context inside a Ray Train worker: DDP via ``ray.train.torch``, metrics via ``ray.train.report``."""

    def __init__(self, report_interval_s: float = REPORT_INTERVAL_S) -> None:
        import ray.train.torch

        super().__init__(ray.train.torch.get_device(), report_interval_s)
        self._ctx = ray.train.get_context()

    @property
    def rank(self) -> int:
        return self._ctx.get_world_rank()

    @property
    def world_size(self) -> int:
        return self._ctx.get_world_size()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        if not any(p.requires_grad for p in model.parameters()):
            return model.to(self.device)
        return ray.train.torch.prepare_model(model)

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        import ray.train.torch

        return ray.train.torch.prepare_data_loader(loader)

    def mean(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def report(self, metrics: dict[str, Any]) -> None:
        import ray.train

        ray.train.report(metrics)

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()
