"""``run_training``: the whole chain (SAU → teacher → student) from one config."""

from __future__ import annotations

import time
from collections.abc import Sequence

from deepsalt.errors import ConfigError
from deepsalt.logs import get_logger
from deepsalt.training.config import STAGES, TrainConfig
from deepsalt.training.data import TrainingData, load_region_samples
from deepsalt.training.stages import train_sau, train_student, train_teacher

log = get_logger(__name__)


def load_training_data(config: TrainConfig) -> TrainingData:
    """The samples of every configured region, concatenated."""
    if not config.regions:
        raise ConfigError("<train config>", "regions", "no region to train on")
    d = config.data
    parts = [load_region_samples(url, d.pool_size, d.pair_radius_km, config.seed) for url in config.regions]
    return parts[0] if len(parts) == 1 else TrainingData.concat(parts)


def run_training(
    config: TrainConfig, data: TrainingData | None = None, stages: Sequence[str] = STAGES
) -> dict[str, str]:
    """Train ``stages`` in order and return stage → checkpoint URL.

    ``data`` replaces reading ``config.regions`` (the evaluator passes its spatial-block training
    split). A stage that is not run is taken from its URL under ``config.output``; stages whose
    checkpoint already matches settings, data and parents are reused, an interrupted one resumes.
    The teacher is skipped when ``config.distill`` is false.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ConfigError(
            "<command line>", "stage", f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}"
        )
    data = data if data is not None else load_training_data(config)
    urls = {stage: config.stage_url(stage) for stage in STAGES}
    done: dict[str, str] = {}
    for stage in STAGES:
        if stage not in stages or (stage == "teacher" and not config.distill):
            continue
        started = time.perf_counter()
        if stage == "sau":
            done[stage] = train_sau(data, config, urls["sau"])
        elif stage == "teacher":
            done[stage] = train_teacher(data, config, urls["sau"], urls["teacher"])
        else:
            teacher = urls["teacher"] if config.distill else None
            done[stage] = train_student(data, config, urls["sau"], teacher, urls["student"])
        log.info(
            "stage done",
            extra={"stage": stage, "url": done[stage], "seconds": round(time.perf_counter() - started, 1)},
        )
    return done
