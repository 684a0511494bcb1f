"""The training loop (:func:`deepsalt.training.loop.fit`) on a least-squares regression, for the
tests that pin down the loop's own behaviour (reporting, early stopping, resume, hooks): the
model and data are the tests' own, the loss and the loop's bookkeeping arguments are these."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from deepsalt.training.config import LoopSettings
from deepsalt.training.loop import FitResult, fit
from deepsalt.training.runtime import WorkerContext


def _squared_error(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch[0]), batch[1])


def fit_least_squares(
    model: nn.Module,
    train: Dataset,
    val: tuple[torch.Tensor, torch.Tensor],
    settings: LoopSettings,
    *,
    ctx: WorkerContext | None = None,
    resume_url: str | None = None,
    **options: Any,
) -> FitResult:
    """``fit`` with the mean squared error as loss and validation score, seed 1, on the CPU unless
    ``ctx`` says otherwise; ``options`` go to ``fit`` as they are (``restore_best``, ``begin_epoch``)."""
    return fit(
        model,
        train,
        val,
        lambda m, batch, _: {"loss": _squared_error(m, batch)},
        lambda m, batch: float(_squared_error(m, batch)),
        settings,
        seed=1,
        ctx=ctx or WorkerContext(torch.device("cpu")),
        resume_url=resume_url,
        resume_key="k",
        stage="test",
        **options,
    )
