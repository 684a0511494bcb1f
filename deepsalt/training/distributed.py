"""Run a chain of stages' per-worker function under Ray Train's ``TorchTrainer`` (DDP on N workers).

Ray's own checkpoint store is not used for resuming: the loop writes its resume state to the
stage's fsspec URL, which works the same with or without Ray. A worker-group restart
(``ray.max_failures``) or a rerun after a killed driver both pick that state up.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from deepsalt.errors import DeepSaltError
from deepsalt.logs import get_logger
from deepsalt.ray_setup import init_ray, require_resources
from deepsalt.training.config import TrainConfig

log = get_logger(__name__)

CONTROLLER_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
CONTROLLER_POLL_S = "0.5"
"""Ray Train's controller polls its workers every 2 s by default, and only at a poll does it see
that the run has ended (and take a waiting report). Ray Train hands this variable from the driver
to its controller, so setting it here reaches a remote cluster too. A shorter poll shortens the
end of every run and every report for a few cheap status calls a second (the saving is measured
in ``benchmarks/``). A value the user set is kept."""


def run_on_ray(
    fn: Callable[[dict[str, Any]], None], job: dict[str, Any], config: TrainConfig, name: str
) -> None:
    """``fn(job)`` on ``config.ray.num_workers`` Ray Train workers; connects to (or starts) Ray."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    init_ray()
    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)
    settings = config.ray
    require_resources(
        {"CPU": settings.cpus_per_worker, "GPU": float(settings.use_gpu)},
        settings.num_workers,
        {"CPU": "ray.cpus_per_worker", "GPU": "ray.use_gpu"},
    )
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
                name=f"deepsalt-{name}",
                storage_path=storage,
                failure_config=FailureConfig(max_failures=settings.max_failures),
            ),
        )
        log.info(
            "ray train start",
            extra={"run": name, "num_workers": settings.num_workers, "use_gpu": settings.use_gpu},
        )
        try:
            trainer.fit()
        except Exception as exc:  # Ray wraps worker errors; surface the stages and the cause
            raise DeepSaltError(f"Ray Train failed in '{name}': {exc}") from exc
