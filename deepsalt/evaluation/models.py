"""The models compared by the evaluator, behind one interface: fit on training rows, predict test rows.

A model returns one mean (and optionally one spread) per test sample; the harness rejects
anything else. DeepSalt variants go through the training pipeline and the student predictor
exactly as a user's run does (every training sample, the library and the pixel pool); baselines
are scikit-learn estimators on the measured, geo-paired training samples, with the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from deepsalt.evaluation.baselines import (
    BASELINE_LABELS,
    FEATURES,
    BaselineSettings,
    FeatureSet,
    Rows,
    fit_baseline,
)
from deepsalt.evaluation.config import EvaluateConfig
from deepsalt.training.config import Stage
from deepsalt.training.data import TrainingData


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray
    std: np.ndarray | None = None
    transform: str = "none"
    """Space in which the predictive distribution is Gaussian (see ``deepsalt.models.target``)."""
    domain: np.ndarray | None = None
    """The student's domain score per sample (> 1: outside what it learned from); None for a model
    without one."""


class Model(Protocol):
    name: str
    kind: str

    def fit_predict(
        self, train: TrainingData, blocks: np.ndarray, tests: dict[str, TrainingData], run_dir: str, seed: int
    ) -> dict[str, Prediction]:
        """Fit on ``train`` (``blocks``: the spatial block of each of its samples) with training seed
        ``seed``, then predict every test set; ``run_dir`` is this fit's own folder for checkpoints."""
        ...


def scored_rows(data: TrainingData) -> np.ndarray:
    """Samples a model is scored on and a baseline learns from: a measured ECe and a complete pairing."""
    return data.paired & data.measured


def baseline_rows(data: TrainingData, blocks: np.ndarray) -> Rows:
    """The measured, geo-paired samples of ``data`` as baseline training rows."""
    keep = scored_rows(data)
    return Rows(
        data.sat[keep], data.covariates[keep], data.survey[keep], data.ece[keep], np.asarray(blocks)[keep]
    )


def baseline_settings(config: EvaluateConfig) -> BaselineSettings:
    return BaselineSettings(
        inner_folds=config.inner_folds, max_components=config.plsr_max_components, threads=config.threads
    )


@dataclass(frozen=True)
class BaselineModel:
    """A baseline of :mod:`deepsalt.evaluation.baselines` on the same inputs as the student."""

    key: str
    config: EvaluateConfig
    kind: str = "baseline"

    @property
    def name(self) -> str:
        return BASELINE_LABELS[self.key]

    def fit_predict(self, train, blocks, tests, run_dir, seed):
        fitted = fit_baseline(
            self.key,
            baseline_rows(train, blocks),
            seed=seed,
            settings=baseline_settings(self.config),
            extra=survey_labelled_pool(train) if fitted_on_pool(self.key) else None,
        )
        out = {}
        for key, test in tests.items():
            mean, std = fitted.predict(test.sat, test.covariates, test.survey)
            out[key] = Prediction(mean, std, "log1p")
        return out


def fitted_on_pool(key: str) -> bool:
    """Baselines that learn from the survey-labelled pool pixels (and so never read the survey)."""
    return FEATURES[key] is FeatureSet.WITHOUT_SURVEY


def survey_labelled_pool(data: TrainingData) -> Rows:
    """The pool pixels with the survey's map-unit ECe as their (coarse) label."""
    return Rows(
        data.pool, data.pool_covariates, data.pool_survey, data.pool_survey, np.full(len(data.pool), "")
    )


@dataclass(frozen=True)
class DeepSaltVariant:
    """One DeepSalt variant: the full training chain on the training rows, then the student predictor."""

    name: str
    config: EvaluateConfig
    kind: str = "deepsalt"

    def fit_predict(self, train, blocks, tests, run_dir, seed):
        from deepsalt.predict import StudentPredictor
        from deepsalt.training.pipeline import run_training

        train_config = self.config.train_config(self.name, run_dir, seed)
        urls = run_training(train_config, data=train)
        predictor = StudentPredictor.load(urls[Stage.STUDENT], device="cpu")
        out = {}
        for key, test in tests.items():
            result = predictor.predict(
                test.sat.astype(np.float32),
                test.covariates.astype(np.float32),
                test.survey.astype(np.float32),
            )
            out[key] = Prediction(
                result["ece"], result["ece_std"], train_config.model.target_transform, result["domain_score"]
            )
        return out


def build_models(config: EvaluateConfig) -> list[Model]:
    """Baselines first, then the DeepSalt variants in the configured order."""
    models: list[Model] = [BaselineModel(key, config) for key in config.baselines]
    models += [DeepSaltVariant(name, config) for name in config.variants]
    return models
