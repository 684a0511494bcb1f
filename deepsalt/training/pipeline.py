"""``run_training``: the whole chain (SAU → teacher → student) from one config."""

from __future__ import annotations

from collections.abc import Sequence

from deepsalt.errors import ConfigError
from deepsalt.training.config import STAGES, Stage, TrainConfig
from deepsalt.training.data import TrainingData, load_region_samples
from deepsalt.training.stages import train_stages


def load_training_data(config: TrainConfig) -> TrainingData:
    """The training data of every configured region, concatenated."""
    if not config.regions:
        raise ConfigError("<train config>", "regions", "no region to train on")
    d = config.data
    parts = [load_region_samples(url, d.pool_size, d.pair_radius_km, config.seed) for url in config.regions]
    return parts[0] if len(parts) == 1 else TrainingData.concat(parts)


def run_training(
    config: TrainConfig, data: TrainingData | None = None, stages: Sequence[Stage | str] = STAGES
) -> dict[Stage, str]:
    """Train ``stages`` in order and return stage → checkpoint URL.

    ``data`` replaces reading ``config.regions`` (the evaluator passes its spatial-block training
    split). A stage that is not run is taken from its URL under ``config.output``; stages whose
    checkpoint already matches settings, data and parents are reused, an interrupted one resumes.
    The teacher is skipped when ``config.distill`` is false. On Ray the stages share one Ray Train
    run (see :func:`deepsalt.training.stages.train_stages`).
    """
    names = [str(getattr(s, "value", s)) for s in stages]
    unknown = sorted(set(names) - {s.value for s in STAGES})
    if unknown:
        raise ConfigError(
            "<command line>", "stage", f"unknown stage(s) {unknown}; choose from {[s.value for s in STAGES]}"
        )
    data = data if data is not None else load_training_data(config)
    urls: dict[Stage, str | None] = {stage: config.stage_url(stage) for stage in STAGES}
    if not config.distill:
        urls[Stage.TEACHER] = None
    chosen = [s for s in STAGES if s.value in names and (s is not Stage.TEACHER or config.distill)]
    return train_stages(data, config, chosen, urls)
