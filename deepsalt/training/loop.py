"""The one training loop every stage uses: epochs, early stopping, per-epoch resume state.

Every epoch re-seeds torch's RNG and the shuffling from ``(seed, epoch, rank)``, so an interrupted
run that resumes from its last epoch continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from deepsalt.logs import get_logger
from deepsalt.training.checkpoint import load_resume, save_resume
from deepsalt.training.config import LoopSettings
from deepsalt.training.runtime import WorkerContext

log = get_logger(__name__)

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[nn.Module, Batch, torch.Generator], dict[str, torch.Tensor]]
ValFn = Callable[[nn.Module, Batch], float]
EpochHook = Callable[[nn.Module, int], None]


@dataclass
class FitResult:
    state_dict: dict[str, torch.Tensor]
    """Best-validation weights, or the last epoch's on a fixed schedule (CPU)."""
    best_val: float
    best_epoch: int
    epochs_run: int
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _fits(model: nn.Module, saved: dict[str, torch.Tensor]) -> bool:
    """Whether ``saved`` has exactly the model's entries, each of the same shape (checked before
    loading: a failed strict load has already copied the entries that matched)."""
    current = model.state_dict()
    return saved.keys() == current.keys() and all(saved[k].shape == v.shape for k, v in current.items())


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in _unwrap(model).state_dict().items()}


def fit(
    model: nn.Module,
    train: TensorDataset,
    val: Batch,
    loss_fn: LossFn,
    val_fn: ValFn,
    settings: LoopSettings,
    *,
    seed: int,
    ctx: WorkerContext,
    resume_url: str | None,
    resume_key: str,
    stage: str,
    restore_best: bool = True,
    begin_epoch: EpochHook | None = None,
) -> FitResult:
    """Train ``model`` (its trainable parameters) and return the best-validation weights.

    ``loss_fn(model, batch, generator)`` returns a dict with ``loss``; ``val_fn(model, val)`` a
    float (lower is better) computed on the whole validation split by every worker. With
    ``restore_best`` the weights of the best validation epoch are returned and training stops after
    ``settings.patience`` epochs without improvement; without it every epoch runs and the last
    weights are returned (a fixed schedule). Rank 0 writes
    the resume state to ``resume_url`` after every epoch; a state with another ``resume_key`` (other
    settings, data or parents) is ignored. Metrics go to ``ctx.report`` at most every
    ``ctx.report_interval_s`` seconds, and for the last epoch run. ``begin_epoch(model, epoch)``
    runs before each epoch's batches, in eval mode without gradients, for targets that depend on
    the model; it sees the weights the epoch starts from, so a resumed run gets the same targets.
    """
    state = load_resume(resume_url) if resume_url else None
    if state is not None and state.get("key") != resume_key:
        log.warning("ignoring resume state from other settings", extra={"stage": stage, "url": resume_url})
        state = None
    if state is not None and not _fits(model, state["model"]):
        # Same settings and data, but a model of another shape (written by another version of this
        # code): it cannot continue, so the stage starts over instead of failing.
        log.warning(
            "ignoring resume state that does not fit this model", extra={"stage": stage, "url": resume_url}
        )
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
    wrapped = ctx.prepare_model(model)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.lr, weight_decay=settings.weight_decay
    )
    start, best_val, best_epoch, best_state, history = 0, float("inf"), -1, None, []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        start, best_val, best_epoch = state["epoch"] + 1, state["best_val"], state["best_epoch"]
        best_state, history = state["best_state"], state["history"]
        log.info("resuming", extra={"stage": stage, "from_epoch": start, "url": resume_url})

    per_worker = max(1, settings.batch_size // ctx.world_size)
    shuffle_gen = torch.Generator()
    loader = DataLoader(
        train,
        batch_size=per_worker,
        shuffle=True,
        drop_last=len(train) > per_worker * ctx.world_size,
        generator=shuffle_gen,
    )
    loader = ctx.prepare_loader(loader)
    val = tuple(t.to(ctx.device) for t in val)
    step_gen = torch.Generator(device=ctx.device)

    epoch = reported = start - 1
    last_report = monotonic()
    for epoch in range(start, settings.epochs):
        if restore_best and best_epoch >= 0 and epoch - best_epoch > settings.patience:
            break
        epoch_seed = seed * 1_000_003 + epoch * 7919 + ctx.rank
        torch.manual_seed(epoch_seed)
        shuffle_gen.manual_seed(seed * 1_000_003 + epoch)
        step_gen.manual_seed(epoch_seed)
        if isinstance(getattr(loader, "sampler", None), DistributedSampler):
            loader.sampler.set_epoch(epoch)
        if begin_epoch is not None:
            wrapped.eval()
            with torch.no_grad():
                begin_epoch(_unwrap(wrapped), epoch)
        wrapped.train()
        total, steps = 0.0, 0
        for batch in loader:
            batch = tuple(t.to(ctx.device) for t in batch)
            loss = loss_fn(wrapped, batch, step_gen)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        wrapped.eval()
        with torch.no_grad():
            val_loss = ctx.mean(val_fn(_unwrap(wrapped), val))
        record = {"epoch": epoch, "train_loss": total / max(steps, 1), "val_loss": val_loss}
        history.append(record)
        if val_loss < best_val:
            best_val, best_epoch, best_state = val_loss, epoch, _cpu_state(wrapped)
        if ctx.rank == 0 and resume_url:
            save_resume(
                resume_url,
                {
                    "key": resume_key,
                    "epoch": epoch,
                    "model": _cpu_state(wrapped),
                    "optimizer": copy.deepcopy(optimizer.state_dict()),
                    "best_val": best_val,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "history": history,
                },
            )
        # The mean makes the decision identical on every rank: report is a barrier across ranks.
        now = monotonic()
        if ctx.mean(now - last_report) >= ctx.report_interval_s:
            ctx.report({"stage": stage, **record})
            last_report, reported = now, epoch
        log.debug("epoch", extra={"stage": stage, **record})
    if history and history[-1]["epoch"] >= start and reported != history[-1]["epoch"]:
        ctx.report({"stage": stage, **history[-1]})  # the last epoch run, on every rank alike
    if best_state is None or not restore_best:
        best_state = _cpu_state(wrapped)
    # An early stop breaks out at the first epoch it does not run, so count from the history.
    epochs_run = history[-1]["epoch"] + 1 if history else start
    log.info(
        "stage trained",
        extra={
            "stage": stage,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "best_val": round(best_val, 5),
        },
    )
    return FitResult(
        best_state, best_val, best_epoch, epochs_run, start if state is not None else None, history
    )
