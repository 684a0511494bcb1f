"""``run_training``: the whole chain (SAU → teacher → student) from one config."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from deepsalt.errors import ConfigError
from deepsalt.logs import get_logger
from deepsalt.training.config import STAGES, Stage, TrainConfig
from deepsalt.training.data import PairingReport, TrainingData, load_region_data, load_user_data
from deepsalt.training.stages import train_stages

log = get_logger(__name__)


PAIRING_REPORT = "pairing_report.csv"


def load_training_data(config: TrainConfig) -> tuple[TrainingData, PairingReport]:
    """The training data of the user's inputs, or of every configured demo region (concatenated)."""
    d = config.data
    if config.inputs is not None:
        return load_user_data(config.inputs, d.pool_size, d.pair_radius_km, config.seed)
    if not config.regions:
        raise ConfigError(
            "<train config>", "regions", "nothing to train on: give inputs (your data) or regions"
        )
    parts = [load_region_data(url, d.pool_size, d.pair_radius_km, config.seed) for url in config.regions]
    data = parts[0][0] if len(parts) == 1 else TrainingData.concat([p[0] for p in parts])
    return data, PairingReport(pd.concat([p[1].table for p in parts], ignore_index=True))


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
    if data is None:
        data, report = load_training_data(config)
        report.write(f"{config.output.rstrip('/')}/{PAIRING_REPORT}")
        log.info("pairing", extra=report.counts())
    urls: dict[Stage, str | None] = {stage: config.stage_url(stage) for stage in STAGES}
    if not config.distill:
        urls[Stage.TEACHER] = None
    chosen = [s for s in STAGES if s.value in names and (s is not Stage.TEACHER or config.distill)]
    return train_stages(data, config, chosen, urls)
