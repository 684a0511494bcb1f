"""Run every model on the same spatial-block folds (and on the unseen region) and collect per-sample predictions.

The result is one row per (model, seed, sample, split): the observed ECe, the prediction, its
spread, the student's domain score (NaN for the baselines) and the sample's block, fold, salinity
range, texture and climate class. Every table of the report is computed from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepsalt.evaluation.classes import sample_classes
from deepsalt.evaluation.metrics import salinity_range
from deepsalt.evaluation.models import Model, Prediction, scored_rows
from deepsalt.logs import get_logger
from deepsalt.training.data import TrainingData

log = get_logger(__name__)

SEEN = "held-out blocks"
UNSEEN = "unseen region"


def slug(name: str) -> str:
    """A folder-safe form of a model name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def check_prediction(prediction: Prediction, n: int, model: str) -> None:
    """One finite-or-NaN value per test sample, or the model is scored wrongly: refuse it."""
    for field, values in (("mean", prediction.mean), ("std", prediction.std), ("domain", prediction.domain)):
        if values is not None and np.shape(values) != (n,):
            raise ValueError(
                f"model '{model}' returned {field} of shape {np.shape(values)} for {n} test samples: "
                "one prediction per sample is required"
            )


def sample_table(data: TrainingData, split: str, blocks: np.ndarray | None = None) -> pd.DataFrame:
    """The per-sample columns every prediction row carries."""
    classes = sample_classes(data.covariates)
    return pd.DataFrame(
        {
            "split": split,
            "sample_id": data.sample_id,
            "block": blocks if blocks is not None else "",
            "observed": data.ece.astype(float),
            "salinity_range": salinity_range(data.ece),
            "texture": classes["texture"],
            "climate": classes["climate"],
        }
    )


def _rows(model: Model, base: pd.DataFrame, prediction: Prediction, fold: int, seed: int) -> pd.DataFrame:
    check_prediction(prediction, len(base), model.name)
    rows = base.copy()
    rows.insert(0, "model", model.name)
    rows.insert(1, "kind", model.kind)
    rows.insert(2, "seed", seed)
    rows["fold"] = fold
    rows["predicted"] = np.asarray(prediction.mean, dtype=float)
    rows["std"] = np.nan if prediction.std is None else np.asarray(prediction.std, dtype=float)
    rows["transform"] = prediction.transform
    rows["domain_score"] = np.nan if prediction.domain is None else np.asarray(prediction.domain, dtype=float)
    return rows


def evaluate_models(
    models: Sequence[Model],
    seen: TrainingData,
    blocks: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    run_root: str,
    seeds: Sequence[int],
    unseen: TrainingData | None = None,
) -> pd.DataFrame:
    """Per-sample predictions of every model, for every seed, on every held-out fold, then on the
    unseen region.

    ``folds`` index ``seen``'s samples. Fold ``k``'s training rows are every sample outside its
    held-out blocks, measured or not, paired or not (each model takes what it can use; the library
    and the pixel pool come along); its test rows are the held-out samples with a measured ECe and a
    complete pairing (:func:`scored_rows`), the same for every model. For the unseen region each
    model is fitted on all seen samples and scored on the unseen region's scored rows. The folds
    and the data are the same for every seed: only the training seed changes.
    """
    scored = scored_rows(seen)
    unseen_test = None if unseen is None else np.flatnonzero(scored_rows(unseen))
    parts = []
    for model in models:
        for seed in seeds:
            for k, (train_idx, held_out) in enumerate(folds):
                test_idx = held_out[scored[held_out]]
                log.info(
                    "fitting",
                    extra={
                        "model": model.name,
                        "seed": seed,
                        "fold": k,
                        "train": len(train_idx),
                        "test": len(test_idx),
                    },
                )
                test = seen.subset(test_idx)
                pred = model.fit_predict(
                    seen.subset(train_idx),
                    blocks[train_idx],
                    {"test": test},
                    f"{run_root}/seed{seed}/fold{k}/{slug(model.name)}",
                    seed,
                )["test"]
                parts.append(_rows(model, sample_table(test, SEEN, blocks[test_idx]), pred, k, seed))
            if unseen is not None:
                log.info("fitting on all seen samples", extra={"model": model.name, "seed": seed})
                test = unseen.subset(unseen_test)
                pred = model.fit_predict(
                    seen, blocks, {"test": test}, f"{run_root}/seed{seed}/all/{slug(model.name)}", seed
                )["test"]
                parts.append(_rows(model, sample_table(test, UNSEEN), pred, -1, seed))
    return pd.concat(parts, ignore_index=True)
