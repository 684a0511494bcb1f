"""``run_evaluation``: load the regions, cross-validate every model over spatial blocks, write the report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pandas as pd

from deepsalt import __version__
from deepsalt.evaluation import plots
from deepsalt.evaluation.blocks import block_folds, block_ids
from deepsalt.evaluation.config import FULL_MODEL, EvaluateConfig
from deepsalt.evaluation.harness import evaluate_models
from deepsalt.evaluation.models import build_models
from deepsalt.evaluation.reference import TruePixelReference
from deepsalt.evaluation.report import render
from deepsalt.evaluation.tables import Target, ablation_table, group_tables, targets
from deepsalt.logs import get_logger
from deepsalt.training.data import TrainingData

log = get_logger(__name__)


@dataclass(frozen=True)
class EvaluationSummary:
    report_url: str
    table: pd.DataFrame  # one row per (model, split)
    targets: list[Target] = field(default_factory=list)
    n_seen: int = 0
    n_unseen: int = 0
    n_blocks: int = 0


def _samples(config: EvaluateConfig, url: str) -> TrainingData:
    """The region's samples that have a satellite pixel (every model is scored on the same rows)."""
    from deepsalt.training.data import load_region_samples

    data_settings = config.train_config(FULL_MODEL, "memory://unused").data
    data = load_region_samples(url, data_settings.pool_size, data_settings.pair_radius_km, config.seed)
    paired = data.paired
    if not paired.any():
        from deepsalt.errors import InputDataError

        raise InputDataError(url, "no lab sample has a clear satellite pixel within the pairing radius")
    log.info("samples", extra={"region": url, "samples": len(data), "paired": int(paired.sum())})
    return data.subset(np.flatnonzero(paired))


def _write(url: str, payload: bytes | str) -> None:
    with fsspec.open(url, "wb") as fh:
        fh.write(payload.encode() if isinstance(payload, str) else payload)


def run_evaluation(config: EvaluateConfig) -> EvaluationSummary:
    """Evaluate every configured model and write ``report.md`` + figures + tables to ``config.output``."""
    from deepsalt.synth import load_region

    started = time.perf_counter()
    manifest = load_region(config.region)
    seen = _samples(config, config.region)
    unseen = _samples(config, config.unseen_region) if config.unseen_region else None
    blocks = block_ids(seen.lat, seen.lon, config.crs or manifest.crs, config.block_size_km)
    folds = block_folds(blocks, config.n_folds, config.seed)
    models = build_models(config)
    if config.reference:
        regions = [manifest] + ([load_region(config.unseen_region)] if config.unseen_region else [])
        models.append(TruePixelReference(tuple(m.truth_url for m in regions)))
    predictions = evaluate_models(models, seen, blocks, folds, config.checkpoints(), unseen)

    table = ablation_table(predictions)
    goals = targets(table) if FULL_MODEL in config.variants else []
    groups = group_tables(
        predictions, FULL_MODEL if FULL_MODEL in config.variants else table["model"].iloc[0]
    )
    out = config.output.rstrip("/")
    full = FULL_MODEL if FULL_MODEL in config.variants else str(table["model"].iloc[0])
    spread_models = [m for m in config.variants if m in (FULL_MODEL, "without SAU (unaligned encoders)")]
    _write(f"{out}/pred_vs_obs.png", plots.predicted_vs_observed(predictions, full))
    _write(f"{out}/residuals_by_range.png", plots.residuals_by_range(predictions, full))
    _write(f"{out}/ablation.png", plots.ablation_bars(table))
    _write(f"{out}/coverage.png", plots.coverage_curve(predictions, spread_models or [full]))
    _write(f"{out}/predictions.csv", predictions.to_csv(index=False))
    _write(
        f"{out}/metrics.json",
        json.dumps(
            {"ablation": table.to_dict(orient="records"), "targets": [t.__dict__ for t in goals]},
            indent=1,
            default=float,
        ),
    )
    context = {
        "seen region": f"`{manifest.name}` ({len(seen)} samples with a satellite pixel, {len(np.unique(blocks))} blocks of {config.block_size_km:g} km, {config.n_folds} folds)",
        "unseen region": f"{len(unseen)} samples" if unseen is not None else "not evaluated",
        "command": f"`deepsalt evaluate` (config hash `{config.config_hash()}`, deepsalt {__version__})",
        "training settings shared by the variants": f"`{json.dumps(config.training)}`",
        "run time": f"{(time.perf_counter() - started) / 60:.1f} min",
    }
    text = render(f"DeepSalt evaluation: {manifest.name}", context, table, goals, groups, full)
    _write(f"{out}/report.md", text)
    log.info("report written", extra={"url": f"{out}/report.md", "models": table["model"].nunique()})
    return EvaluationSummary(
        f"{out}/report.md",
        table,
        goals,
        len(seen),
        0 if unseen is None else len(unseen),
        len(np.unique(blocks)),
    )
