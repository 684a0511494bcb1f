"""How far could a pixel model get on this world with perfect labels? (an analysis beside report.md)

The report's ceiling row scores each sample against its own pixel's true ECe: no model can beat
it, but no model could reach it either, since it needs the truth at the test pixel. This script
measures a reachable bound: gradient boosting trained on the same 20,000 pool pixels DeepSalt
learns from (spectrum, covariates, survey ECe: DeepSalt's inputs), but labelled with each pixel's
*true* ECe from the world's truth raster instead of the survey's map-unit value. It is scored on
the evaluation's own held-out samples and folds (``configs/evaluate.yaml``), against their
measured ECe, with the pool pixels inside a fold's held-out blocks left out of that fold's
training. A real user never has such labels, so a method that learns from survey units and a few
hundred samples should not be expected to beat this.

Run from the repository root after ``make demo``::

    .venv/bin/python results/demo/oracle_ceiling.py

It writes ``results/demo/oracle_ceiling.json`` and prints the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score

import deepsalt.training.data as training_data
from deepsalt.evaluation.blocks import block_folds, block_ids
from deepsalt.evaluation.models import scored_rows
from deepsalt.evaluation.reference import pixel_values
from deepsalt.synth import load_region

POOL_SIZE = 20_000  # the evaluation's pool (deepsalt evaluate trains every variant on it)
SEEDS = (0, 1, 2)
OUT = Path(__file__).with_name("oracle_ceiling.json")


def load_with_pool_positions(region: str) -> tuple[training_data.TrainingData, np.ndarray, np.ndarray]:
    """The region's training data exactly as the evaluation loads it, and where its pool pixels lie.

    TrainingData drops the pool pixels' positions; they are recorded here by wrapping the scene
    sampler that draws them, and filtered with the same rule as the pool (covariates and survey
    present), so row ``i`` of the positions is row ``i`` of ``data.pool``.
    """
    drawn: list[tuple[np.ndarray, np.ndarray]] = []
    draw = training_data._SceneSampler.pool

    def recording(self, n, rng):
        pixels, lon, lat = draw(self, n, rng)
        drawn.append((lon, lat))
        return pixels, lon, lat

    training_data._SceneSampler.pool = recording
    try:
        data, _ = training_data.load_region_data(region, POOL_SIZE, 0.045, 0)
    finally:
        training_data._SceneSampler.pool = draw
    lon = np.concatenate([d[0] for d in drawn])
    lat = np.concatenate([d[1] for d in drawn])
    manifest = load_region(region)
    from deepsalt.io.covariates import sample_covariates
    from deepsalt.io.ssurgo import load_survey, sample_survey

    covariates = sample_covariates(manifest.covariate_urls(), lon, lat)
    survey = sample_survey(load_survey(manifest.href(manifest.files.survey["export"])), lon, lat).ece
    keep = np.isfinite(covariates).all(axis=1) & np.isfinite(survey)
    if keep.sum() != len(data.pool):
        raise RuntimeError("the recorded pool positions do not match the pool")
    return data, lon[keep], lat[keep]


def features(spectra: np.ndarray, covariates: np.ndarray, survey: np.ndarray) -> np.ndarray:
    return np.hstack([spectra, covariates, np.log1p(np.clip(survey, 0, None))[:, None]])


def scores(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(np.mean(np.abs(predicted - observed))),
        "r2_log": float(r2_score(np.log1p(observed), np.log1p(predicted))),
    }


def main() -> None:
    config = yaml.safe_load(Path("configs/evaluate.yaml").read_text())
    seen, pool_lon, pool_lat = load_with_pool_positions(config["region"])
    manifest = load_region(config["region"])
    truth = pixel_values([manifest.truth_url], pool_lon, pool_lat)
    labelled = np.isfinite(truth)
    crs = config.get("crs") or manifest.crs
    blocks = block_ids(seen.lat, seen.lon, crs, config["block_size_km"])
    pool_blocks = block_ids(pool_lat, pool_lon, crs, config["block_size_km"])
    folds = block_folds(blocks, config["n_folds"], config["fold_seed"])
    scored = scored_rows(seen)
    unseen = training_data.load_region_samples(config["unseen_region"], POOL_SIZE, 0.045, 0)
    unseen_rows = np.flatnonzero(scored_rows(unseen))
    pool_x = features(seen.pool, seen.pool_covariates, seen.pool_survey)

    def model(seed: int) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(max_iter=400, learning_rate=0.08, random_state=seed)

    per_seed = []
    for seed in SEEDS:
        observed, predicted = [], []
        for _, held_out in folds:
            test = held_out[scored[held_out]]
            train = labelled & ~np.isin(pool_blocks, np.unique(blocks[held_out]))
            fitted = model(seed).fit(pool_x[train], np.log1p(truth[train]))
            x = features(seen.sat[test], seen.covariates[test], seen.survey[test])
            observed.append(seen.ece[test])
            predicted.append(np.clip(np.expm1(fitted.predict(x)), 0, None))
        held = scores(np.concatenate(observed), np.concatenate(predicted))
        fitted = model(seed).fit(pool_x[labelled], np.log1p(truth[labelled]))
        x = features(unseen.sat[unseen_rows], unseen.covariates[unseen_rows], unseen.survey[unseen_rows])
        far = scores(unseen.ece[unseen_rows], np.clip(np.expm1(fitted.predict(x)), 0, None))
        per_seed.append({"seed": seed, "held-out blocks": held, "unseen region": far})
        print(json.dumps(per_seed[-1]), flush=True)

    summary = {
        split: {
            metric: {
                "mean": float(np.mean([s[split][metric] for s in per_seed])),
                "sd": float(np.std([s[split][metric] for s in per_seed], ddof=1)),
            }
            for metric in ("mae", "r2_log")
        }
        for split in ("held-out blocks", "unseen region")
    }
    record = {
        "model": "HistGB on the pool pixels labelled with their true ECe (spectrum, covariates, survey ECe)",
        "pool_pixels": int(labelled.sum()),
        "scored_samples": {"held-out blocks": int(scored.sum()), "unseen region": len(unseen_rows)},
        "seeds": list(SEEDS),
        "summary": summary,
        "per_seed": per_seed,
    }
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
