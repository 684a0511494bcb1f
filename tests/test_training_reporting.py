"""The loop's reporting cadence: an epoch once ``report_interval_s`` has passed since the last
report, plus the last epoch it runs.

Ray Train's ``report`` blocks when called faster than its controller polls, and is a barrier on
every rank, so these tests pin down which epochs are reported whatever the epoch count, early stop
or resume point. The loop's clock is replaced by one that ticks one second per reading (the loop
reads it once before the first epoch and once after each), so nothing here is timed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.training import loop
from deepsalt.training.config import LoopSettings
from deepsalt.training.runtime import WorkerContext
from tests.support.loop_runs import fit_least_squares


@dataclass
class RecordingContext(WorkerContext):
    """The in-process context, keeping what the loop reports instead of dropping it."""

    reports: list[dict[str, Any]] = field(default_factory=list)

    def report(self, metrics: dict[str, Any]) -> None:
        self.reports.append(metrics)


def _ctx(every: int, monkeypatch) -> RecordingContext:
    """A context that reports every ``every`` epochs under a clock ticking once per epoch."""
    monkeypatch.setattr(loop, "monotonic", itertools.count().__next__)
    return RecordingContext(torch.device("cpu"), report_interval_s=float(every))


def _train(ctx: RecordingContext, epochs: int, patience: int, resume_url: str | None = None):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=gen), torch.randn(32, 1, generator=gen)
    return fit_least_squares(
        nn.Linear(3, 1),
        TensorDataset(x, y),
        (x[:8], y[:8]),
        LoopSettings(epochs=epochs, patience=patience, batch_size=16),
        ctx=ctx,
        resume_url=resume_url,
    )


def _expected(epochs_run: list[int], every: int) -> list[int]:
    due = [e for e in epochs_run if (e + 1) % every == 0]
    return due if due and due[-1] == epochs_run[-1] else [*due, epochs_run[-1]]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(epochs=st.integers(1, 24), every=st.integers(1, 8), patience=st.integers(1, 4))
def test_reports_once_the_interval_has_passed_and_the_last_epoch_run(monkeypatch, epochs, every, patience):
    ctx = _ctx(every, monkeypatch)
    result = _train(ctx, epochs, patience)
    run = [int(r["epoch"]) for r in result.history]
    assert [r["epoch"] for r in ctx.reports] == _expected(run, every)
    # Each report carries that epoch's record, unchanged.
    by_epoch = {r["epoch"]: r for r in result.history}
    assert all(r == {"stage": "test", **by_epoch[r["epoch"]]} for r in ctx.reports)


def test_a_resumed_run_reports_only_the_epochs_it_runs(tmp_path, monkeypatch):
    url = str(tmp_path / "stage")
    first = _ctx(4, monkeypatch)
    _train(first, epochs=6, patience=100, resume_url=url)  # leaves resume state at epoch 5
    assert [r["epoch"] for r in first.reports] == [3, 5]

    resumed = _ctx(4, monkeypatch)
    result = _train(resumed, epochs=11, patience=100, resume_url=url)
    assert result.resumed_from == 6
    assert [r["epoch"] for r in resumed.reports] == [9, 10]  # interval counted from the resume

    nothing_left = _ctx(4, monkeypatch)
    _train(nothing_left, epochs=11, patience=100, resume_url=url)
    assert nothing_left.reports == []


def _settings_run(restore_best: bool) -> tuple[loop.FitResult, nn.Module]:
    """A run whose validation loss is best at its first epoch and worse afterwards (the training and
    validation targets disagree), trained with ``restore_best`` as given."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen)
    model = nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    result = fit_least_squares(
        model,
        TensorDataset(x, x[:, :1] * 3.0),
        (x, torch.zeros(64, 1)),
        LoopSettings(epochs=8, patience=2, batch_size=16, lr=0.05),
        restore_best=restore_best,
    )
    return result, model


def test_early_stopping_keeps_the_best_validation_epoch_and_a_fixed_schedule_the_last():
    best, _ = _settings_run(restore_best=True)
    # Stopped once patience ran out: epochs 0, 1, 2 run, the best (0) kept.
    assert best.best_epoch == 0 and best.epochs_run == len(best.history) == 3
    fixed, model = _settings_run(restore_best=False)
    assert fixed.epochs_run == len(fixed.history) == 8  # every epoch, whatever validation did
    last = {k: v for k, v in model.state_dict().items()}
    assert all(torch.equal(fixed.state_dict[k], last[k]) for k in last)
    assert not torch.equal(fixed.state_dict["weight"], best.state_dict["weight"])


def test_a_resume_state_of_another_model_shape_is_ignored_and_the_stage_starts_over(
    tmp_path, monkeypatch, caplog
):
    """Same settings and key, but written for a model of another shape (an older version of the
    code): the run starts from epoch 0 with its own fresh weights instead of failing."""
    url = str(tmp_path / "stage")
    _train(_ctx(100, monkeypatch), epochs=3, patience=100, resume_url=url)  # resume state at epoch 2
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=gen), torch.randn(32, 1, generator=gen)
    wider = nn.Linear(4, 1)  # the saved state is a Linear(3, 1)
    fresh = {k: v.clone() for k, v in wider.state_dict().items()}
    with caplog.at_level("WARNING"):
        result = fit_least_squares(
            wider,
            TensorDataset(x, y),
            (x[:8], y[:8]),
            LoopSettings(epochs=1, patience=100, batch_size=32, lr=1e-9),
            ctx=_ctx(100, monkeypatch),
            resume_url=url,
        )
    assert result.resumed_from is None and [r["epoch"] for r in result.history] == [0]
    assert "ignoring resume state that does not fit this model" in caplog.text
    # it started from its own weights (one step at lr 1e-9 moves them by less than 1e-6)
    assert all(torch.allclose(result.state_dict[k], fresh[k], atol=1e-6) for k in fresh)
