"""The loop's ``begin_epoch`` hook: once per epoch, before its batches, in eval mode without
gradients, on the weights the epoch starts from, so a resumed run sees what an uninterrupted one
would (the student refreshes its unit-mean pool targets there)."""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.training.config import LoopSettings
from tests.support.loop_runs import fit_least_squares


def _run(epochs: int, resume_url: str | None) -> list[tuple[int, bool, bool, torch.Tensor]]:
    seen: list[tuple[int, bool, bool, torch.Tensor]] = []

    def hook(model: nn.Module, epoch: int) -> None:
        seen.append((epoch, model.training, torch.is_grad_enabled(), model.weight.detach().clone()))

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=gen), torch.randn(32, 1, generator=gen)
    torch.manual_seed(0)
    fit_least_squares(
        nn.Linear(3, 1),
        TensorDataset(x, y),
        (x[:8], y[:8]),
        LoopSettings(epochs=epochs, patience=100, batch_size=16),
        resume_url=resume_url,
        restore_best=False,
        begin_epoch=hook,
    )
    return seen


def test_the_hook_runs_before_each_epoch_in_eval_mode_on_the_epochs_starting_weights(tmp_path):
    whole = _run(6, None)
    torch.manual_seed(0)
    torch.testing.assert_close(whole[0][3], nn.Linear(3, 1).weight.detach())  # before any batch
    assert [e for e, *_ in whole] == list(range(6))
    assert not any(training or grad for _, training, grad, _ in whole)
    assert all(not torch.equal(a[3], b[3]) for a, b in itertools.pairwise(whole))  # trained between

    url = str(tmp_path / "stage")
    first = _run(3, url)
    resumed = _run(6, url)
    assert [e for e, *_ in first] == [0, 1, 2] and [e for e, *_ in resumed] == [3, 4, 5]
    for (_, _, _, expected), (_, _, _, got) in zip(whole, first + resumed, strict=True):
        torch.testing.assert_close(got, expected)
