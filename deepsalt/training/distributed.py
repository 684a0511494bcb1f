"""Run a stage's per-worker function under Ray Train's ``TorchTrainer`` (DDP on N workers).

Ray's own checkpoint store is not used for resuming: the loop writes its resume state to the
stage's fsspec URL, which works the same with or without Ray. A worker-group restart
(``ray.max_failures``) or a rerun after a killed driver both pick that state up.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from deepsalt.errors import DeepSaltError
from deepsalt.logs import get_logger
from deepsalt.training.config import TrainConfig

log = get_logger(__name__)


def run_on_ray(fn: Callable[[dict[str, Any]], None], job: dict[str, Any], config: TrainConfig) -> None:
    """``fn(job)`` on ``config.ray.num_workers`` Ray Train workers; connects to (or starts) Ray."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    settings = config.ray
    scaling = ScalingConfig(
        num_workers=settings.num_workers,
        use_gpu=settings.use_gpu,
        resources_per_worker={"CPU": settings.cpus_per_worker},
    )
    with tempfile.TemporaryDirectory(prefix="deepsalt-ray-") as storage:
        trainer = TorchTrainer(
            fn,
            train_loop_config=job,
            scaling_config=scaling,
            run_config=RunConfig(
                name=f"deepsalt-{job['stage']}",
                storage_path=storage,
                failure_config=FailureConfig(max_failures=settings.max_failures),
            ),
        )
        log.info(
            "ray train start",
            extra={"stage": job["stage"], "num_workers": settings.num_workers, "use_gpu": settings.use_gpu},
        )
        try:
            trainer.fit()
        except Exception as exc:  # Ray wraps worker errors; surface the stage and the cause
            raise DeepSaltError(f"Ray Train failed in stage '{job['stage']}': {exc}") from exc
