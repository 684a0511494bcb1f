"""``run_evaluation``: load the regions, cross-validate every model over spatial blocks, write the report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd

from deepsalt import __version__
from deepsalt.evaluation import plots
from deepsalt.evaluation.blocks import block_folds, block_ids
from deepsalt.evaluation.config import FULL_MODEL, EvaluateConfig
from deepsalt.evaluation.harness import evaluate_models
from deepsalt.evaluation.models import build_models, scored_rows
from deepsalt.evaluation.reference import TruePixelReference
from deepsalt.evaluation.report import render
from deepsalt.evaluation.tables import Summary, Target, domain_table, group_tables, summarise
from deepsalt.logs import get_logger
from deepsalt.training.data import TrainingData

log = get_logger(__name__)


@dataclass(frozen=True)
class EvaluationSummary:
    report_url: str
    summary: Summary
    n_seen: int = 0
    """Seen-region samples scored (a measured ECe and a complete pairing)."""
    n_unseen: int = 0
    n_blocks: int = 0

    @property
    def table(self) -> pd.DataFrame:
        """One row per (model, split): metrics as mean over seeds and ``<metric>_sd``."""
        return self.summary.table

    @property
    def targets(self) -> list[Target]:
        return self.summary.targets

    @property
    def best_baseline(self) -> str | None:
        return self.summary.best_baseline


def _samples(config: EvaluateConfig, url: str) -> TrainingData:
    """Every sample of the region (the training rows), with its library and pixel pool."""
    from deepsalt.errors import InputDataError
    from deepsalt.training.data import load_region_samples

    data_settings = config.train_config(FULL_MODEL, "memory://unused", config.seeds[0]).data
    data = load_region_samples(url, data_settings.pool_size, data_settings.pair_radius_km, config.fold_seed)
    scored = scored_rows(data)
    if not scored.any():
        raise InputDataError(url, "no lab sample has both a measured ECe and a clear satellite pixel")
    log.info(
        "samples",
        extra={
            "region": url,
            "samples": len(data),
            "paired": int(data.paired.sum()),
            "measured": int(data.measured.sum()),
            "scored": int(scored.sum()),
        },
    )
    return data


def read_map_scores(url: str) -> dict[str, dict[str, float]]:
    """``map_vs_truth.json`` of ``deepsalt demo``: a ``deepsalt`` entry with ``r2_log``, and the baseline's."""
    from deepsalt.errors import InputDataError

    try:
        with fsspec.open(url, "r") as fh:
            scores = json.load(fh)
    except FileNotFoundError as exc:
        raise InputDataError(
            url, "map scores not found (run `deepsalt demo` first, or unset map_scores)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputDataError(url, f"not JSON: {exc}") from exc
    if not isinstance(scores, dict) or "r2_log" not in scores.get("deepsalt", {}):
        raise InputDataError(url, "no 'deepsalt' entry with 'r2_log' (written by an older deepsalt demo?)")
    return scores


def _write(url: str, payload: bytes | str) -> None:
    with fsspec.open(url, "wb") as fh:
        fh.write(payload.encode() if isinstance(payload, str) else payload)


def run_evaluation(config: EvaluateConfig, seen: TrainingData | None = None) -> EvaluationSummary:
    """Evaluate every configured model and write ``report.md`` + figures + tables to ``config.output``.

    ``seen`` replaces reading the samples of ``config.region`` (``deepsalt demo`` passes the data
    it trained on)."""
    from deepsalt.synth import load_region

    started = time.perf_counter()
    map_scores = read_map_scores(config.map_scores) if config.map_scores else None
    manifest = load_region(config.region)
    seen = _samples(config, config.region) if seen is None else seen
    unseen = _samples(config, config.unseen_region) if config.unseen_region else None
    blocks = block_ids(seen.lat, seen.lon, config.crs or manifest.crs, config.block_size_km)
    folds = block_folds(blocks, config.n_folds, config.fold_seed)
    models = build_models(config)
    if config.reference:
        regions = [manifest] + ([load_region(config.unseen_region)] if config.unseen_region else [])
        models.append(TruePixelReference(tuple(m.truth_url for m in regions)))
    predictions = evaluate_models(models, seen, blocks, folds, config.checkpoints(), config.seeds, unseen)

    ablations = [name for name in config.variants if name != FULL_MODEL]
    summary = summarise(predictions, ablations, map_scores)
    # the figures are about the full model, or about the best baseline when no variant ran
    full = (
        FULL_MODEL
        if FULL_MODEL in config.variants
        else summary.best_baseline or str(summary.table["model"].iloc[0])
    )
    out = config.output.rstrip("/")
    spread_models = [m for m in dict.fromkeys((full, summary.best_baseline)) if m is not None]
    _write(f"{out}/pred_vs_obs.png", plots.predicted_vs_observed(predictions, full))
    _write(f"{out}/residuals_by_range.png", plots.residuals_by_range(predictions, full))
    _write(f"{out}/ablation.png", plots.ablation_bars(summary.table))
    _write(f"{out}/coverage.png", plots.coverage_curve(predictions, spread_models))
    _write(f"{out}/predictions.csv", predictions.to_csv(index=False))
    _write(f"{out}/metrics.json", json.dumps(summary.record(), indent=1, default=float))
    n_scored = int(scored_rows(seen).sum())
    context = {
        "seen region": (
            f"`{manifest.name}`: {len(seen)} lab samples ({int(seen.measured.sum())} with a measured ECe, "
            f"{int(seen.paired.sum())} with a clear pixel; {n_scored} with both are scored), "
            f"{len(seen.library_ece)} library spectra, {len(seen.pool)} pool pixels; "
            f"{len(np.unique(blocks))} blocks of {config.block_size_km:g} km in {config.n_folds} folds "
            f"(fold_seed {config.fold_seed})"
        ),
        "unseen region": (
            f"{int(scored_rows(unseen).sum())} scored samples" if unseen is not None else "not evaluated"
        ),
        "seeds": f"{config.seeds} (training seed of DeepSalt and of the stochastic baselines; folds fixed)",
        "command": f"`deepsalt evaluate` (config hash `{config.config_hash()}`, deepsalt {__version__})",
        "training settings shared by the variants": f"`{json.dumps(config.training)}`",
        "run time": f"{(time.perf_counter() - started) / 60:.1f} min",
    }
    groups = group_tables(predictions, full)
    domain = domain_table(predictions, full)
    text = render(f"DeepSalt evaluation: {manifest.name}", context, summary, groups, full, domain)
    _write(f"{out}/report.md", text)
    log.info("report written", extra={"url": f"{out}/report.md", "models": summary.table["model"].nunique()})
    return EvaluationSummary(
        f"{out}/report.md",
        summary,
        n_scored,
        0 if unseen is None else int(scored_rows(unseen).sum()),
        len(np.unique(blocks)),
    )
