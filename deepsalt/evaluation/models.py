"""The models compared by the evaluator, behind one interface: fit on training rows, predict test rows.

A model returns one mean (and optionally one spread) per test sample; the harness rejects
anything else. DeepSalt variants go through the training pipeline and the student predictor
exactly as a user's run does; baselines are scikit-learn estimators on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from deepsalt.evaluation.baselines import BASELINE_LABELS, fit_baseline
from deepsalt.evaluation.config import EvaluateConfig
from deepsalt.training.data import TrainingData


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray
    std: np.ndarray | None = None
    transform: str = "none"
    """Space in which the predictive distribution is Gaussian (see ``deepsalt.models.target``)."""


class Model(Protocol):
    name: str
    kind: str

    def fit_predict(
        self, train: TrainingData, blocks: np.ndarray, tests: dict[str, TrainingData], run_dir: str
    ) -> dict[str, Prediction]: ...


@dataclass(frozen=True)
class BaselineModel:
    """A scikit-learn baseline on satellite pixel + covariates."""

    key: str
    config: EvaluateConfig
    kind: str = "baseline"

    @property
    def name(self) -> str:
        return BASELINE_LABELS[self.key]

    def fit_predict(self, train, blocks, tests, run_dir):
        with threadpool_limits(limits=self.config.threads):  # OpenMP oversubscription stalls shared CPUs
            return self._fit_predict(train, blocks, tests)

    def _fit_predict(self, train, blocks, tests):
        model = fit_baseline(
            self.key,
            _features(train),
            train.ece,
            blocks,
            seed=self.config.seed,
            inner_folds=self.config.inner_folds,
            max_components=self.config.plsr_max_components,
        )
        return {key: Prediction(model.predict(_features(test))) for key, test in tests.items()}


@dataclass(frozen=True)
class DeepSaltVariant:
    """One DeepSalt variant: the full training chain on the training rows, then the student predictor."""

    name: str
    config: EvaluateConfig
    kind: str = "deepsalt"

    def fit_predict(self, train, blocks, tests, run_dir):
        from deepsalt.predict import StudentPredictor
        from deepsalt.training.pipeline import run_training

        train_config = self.config.train_config(self.name, run_dir)
        urls = run_training(train_config, data=train)
        predictor = StudentPredictor.load(urls["student"])
        out = {}
        for key, test in tests.items():
            result = predictor.predict(test.sat.astype(np.float32), test.covariates.astype(np.float32))
            out[key] = Prediction(result["ece"], result["ece_std"], train_config.model.target_transform)
        return out


def _features(data: TrainingData) -> np.ndarray:
    return np.hstack([data.sat, data.covariates]).astype(np.float64)


def build_models(config: EvaluateConfig) -> list[Model]:
    """Baselines first, then the DeepSalt variants in the configured order."""
    models: list[Model] = [BaselineModel(key, config) for key in config.baselines]
    models += [DeepSaltVariant(name, config) for name in config.variants]
    return models
