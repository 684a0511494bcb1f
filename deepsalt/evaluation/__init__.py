"""Honest evaluation: per-sample metrics on spatially disjoint blocks and an unseen region, baselines, report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deepsalt.evaluation.run import EvaluationSummary, run_evaluation

__all__ = ["EvaluationSummary", "run_evaluation"]


def __getattr__(name: str):
    if name in __all__:  # the harness pulls in torch, sklearn and matplotlib: load only when used
        from deepsalt.evaluation import run

        return getattr(run, name)
    raise AttributeError(name)
