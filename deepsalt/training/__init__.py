"""Training the chain SAU → teacher → student, in this process or on Ray Train workers.

``run_training(config)`` trains the stages named by :class:`Stage` into checkpoints under
``config.output``; ``TrainingData`` is what they learn from (a user's own data or demo regions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deepsalt.training.config import Stage, TrainConfig
    from deepsalt.training.data import TrainingData
    from deepsalt.training.pipeline import run_training

__all__ = ["Stage", "TrainConfig", "TrainingData", "run_training"]

_HOMES = {
    "Stage": "deepsalt.training.config",
    "TrainConfig": "deepsalt.training.config",
    "TrainingData": "deepsalt.training.data",
    "run_training": "deepsalt.training.pipeline",
}


def __getattr__(name: str):
    """Exports load on first use: the settings modules are light, the pipeline pulls in torch."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'deepsalt.training' has no attribute {name!r}")
