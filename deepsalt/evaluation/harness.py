"""Run every model on the same spatial-block folds (and on the unseen region) and collect per-sample predictions.

The result is one row per (model, sample, split): the observed ECe, the prediction, its spread
and the sample's salinity range, texture and climate class. All tables are computed from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepsalt.evaluation.classes import sample_classes
from deepsalt.evaluation.metrics import salinity_range
from deepsalt.evaluation.models import Model, Prediction
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
    for field, values in (("mean", prediction.mean), ("std", prediction.std)):
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


def _rows(model: Model, base: pd.DataFrame, prediction: Prediction, fold: int) -> pd.DataFrame:
    check_prediction(prediction, len(base), model.name)
    rows = base.copy()
    rows.insert(0, "model", model.name)
    rows.insert(1, "kind", model.kind)
    rows["fold"] = fold
    rows["predicted"] = np.asarray(prediction.mean, dtype=float)
    rows["std"] = np.nan if prediction.std is None else np.asarray(prediction.std, dtype=float)
    rows["transform"] = prediction.transform
    return rows


def evaluate_models(
    models: Sequence[Model],
    seen: TrainingData,
    blocks: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    run_root: str,
    unseen: TrainingData | None = None,
) -> pd.DataFrame:
    """Per-sample predictions of every model on every held-out fold, then on the unseen region.

    Fold ``k``'s test rows are the samples of the blocks held out in fold ``k``; every model
    sees exactly the same train/test rows. For the unseen region each model is fitted once on
    all seen samples.
    """
    seen_rows = sample_table(seen, SEEN, blocks)
    unseen_rows = None if unseen is None else sample_table(unseen, UNSEEN)
    parts = []
    for model in models:
        for k, (train_idx, test_idx) in enumerate(folds):
            log.info(
                "fitting",
                extra={"model": model.name, "fold": k, "train": len(train_idx), "test": len(test_idx)},
            )
            pred = model.fit_predict(
                seen.subset(train_idx),
                blocks[train_idx],
                {"test": seen.subset(test_idx)},
                f"{run_root}/fold{k}/{slug(model.name)}",
            )["test"]
            parts.append(_rows(model, seen_rows.iloc[test_idx].reset_index(drop=True), pred, k))
        if unseen is not None:
            log.info("fitting on all seen samples", extra={"model": model.name, "train": len(seen)})
            pred = model.fit_predict(seen, blocks, {"test": unseen}, f"{run_root}/all/{slug(model.name)}")[
                "test"
            ]
            parts.append(_rows(model, unseen_rows, pred, -1))
    return pd.concat(parts, ignore_index=True)
