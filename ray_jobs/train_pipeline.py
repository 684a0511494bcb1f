"""Ray job: the whole training chain, SAU → teacher → student (``deepsalt.training.pipeline.run_training``).

    python ray_jobs/train_pipeline.py --config s3://bucket/configs/train.yaml [--set ray.use_gpu=true ...]

With ``ray.num_workers`` ≥ 1 each stage runs on Ray Train workers of the job's cluster; the
checkpoints land under the config's ``output`` URL, one directory per stage.
"""

from __future__ import annotations

import sys

from _entry import log, run

from deepsalt.training.config import TrainConfig
from deepsalt.training.pipeline import run_training


def train(config: TrainConfig) -> bool:
    checkpoints = run_training(config)
    for stage, url in checkpoints.items():
        log.info("checkpoint written", extra={"stage": stage, "checkpoint_url": url})
    return True


if __name__ == "__main__":
    sys.exit(run(__doc__ or "", TrainConfig, train))
