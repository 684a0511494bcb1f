"""``BaselinePredictor``: a fitted baseline as a mapping model (the :class:`~deepsalt.mapping.predictor.Predictor` protocol).

The issue's comparison is map against map: the best baseline goes through the very same mapping
pipeline as the student (the same pixels, compositing, covariates and survey), into its own
store, so both maps are scored against the truth on the same pixels. Its checkpoint is a folder:

- ``model.joblib``: the fitted :class:`~deepsalt.evaluation.baselines.FittedBaseline` (scikit-learn's
  own persistence; a pickle, so load only checkpoints you made);
- ``card.json``: what it is, what it reads (band axis, covariates, survey), the SHA-256 of
  ``model.joblib`` (its checkpoint id) and the data it was fitted on; written last, so a folder
  without it is unfinished.

The card holds no time stamp: refitting the same baseline on the same data gives the same content
hash, so the map's product identity is unchanged and a rerun resumes it.
"""

from __future__ import annotations

import io
from typing import Any

import joblib
import numpy as np
import sklearn

from deepsalt import __version__
from deepsalt.config import FrozenModel
from deepsalt.errors import InputDataError
from deepsalt.evaluation.baselines import (
    BASELINE_LABELS,
    BaselineName,
    BaselineSettings,
    FeatureSet,
    FittedBaseline,
    fit_baseline,
)
from deepsalt.evaluation.models import baseline_rows, fitted_on_pool, survey_labelled_pool
from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.io.paths import join_url, read_bytes, read_verified, short_digest, write_bytes
from deepsalt.logs import get_logger
from deepsalt.mapping.predictor import ModelCard
from deepsalt.training.data import TrainingData

log = get_logger(__name__)

MODEL = "model.joblib"
CARD = "card.json"


class BaselineCard(FrozenModel):
    """``card.json`` of a baseline checkpoint."""

    kind: str = "baseline"
    key: BaselineName
    label: str
    checkpoint_id: str
    """SHA-256 (16 hex) of ``model.joblib``."""
    features: FeatureSet
    log_sigma: float
    """Spread of the predictive Gaussian in log1p(ECe) space."""
    wavelength: list[float]
    covariate_names: list[str]
    training_samples: int
    data_fingerprint: str
    seed: int
    software_version: str
    sklearn_version: str


def save_baseline(
    url: str,
    fitted: FittedBaseline,
    *,
    wavelength: np.ndarray,
    training_samples: int,
    data_fingerprint: str,
    seed: int,
) -> BaselineCard:
    """Write ``model.joblib`` then ``card.json`` at ``url`` (any fsspec URL)."""
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    payload = buffer.getvalue()
    card = BaselineCard(
        key=fitted.key,
        label=BASELINE_LABELS[fitted.key],
        checkpoint_id=short_digest(payload),
        features=fitted.feature_set,
        log_sigma=fitted.log_sigma,
        wavelength=[float(w) for w in wavelength],
        covariate_names=list(COVARIATE_NAMES),
        training_samples=training_samples,
        data_fingerprint=data_fingerprint,
        seed=seed,
        software_version=__version__,
        sklearn_version=sklearn.__version__,
    )
    write_bytes(join_url(url, MODEL), payload)
    write_bytes(join_url(url, CARD), card.model_dump_json(indent=1).encode())
    log.info(
        "baseline checkpoint written", extra={"url": url, "baseline": fitted.key, "id": card.checkpoint_id}
    )
    return card


def fit_baseline_checkpoint(
    url: str, key: str, data: TrainingData, blocks: np.ndarray, settings: BaselineSettings, seed: int
) -> BaselineCard:
    """Fit baseline ``key`` on the measured, geo-paired samples of ``data`` (``blocks``: each sample's
    spatial block, for its inner CV) exactly as the evaluator does, and save it at ``url``."""
    rows = baseline_rows(data, blocks)
    fitted = fit_baseline(
        key,
        rows,
        seed=seed,
        settings=settings,
        extra=survey_labelled_pool(data) if fitted_on_pool(key) else None,
    )
    return save_baseline(
        url,
        fitted,
        wavelength=data.wavelength,
        training_samples=len(rows.ece),
        data_fingerprint=data.fingerprint(),
        seed=seed,
    )


def read_card(url: str) -> tuple[BaselineCard, bytes, bytes]:
    """The card, its bytes and the bytes of ``model.joblib``, checked against the id the card records."""
    try:
        raw = read_bytes(join_url(url, CARD))
    except FileNotFoundError as exc:
        raise InputDataError(url, f"no baseline checkpoint here ({CARD} missing)") from exc
    try:
        card = BaselineCard.model_validate_json(raw)
    except ValueError as exc:
        raise InputDataError(join_url(url, CARD), f"invalid baseline card: {exc}") from exc
    return card, raw, read_verified(url, MODEL, CARD, card.checkpoint_id)


class BaselinePredictor:
    """A baseline checkpoint ready for mapping; use :meth:`load`."""

    def __init__(self, fitted: FittedBaseline, card: BaselineCard):
        self.fitted = fitted
        self.card = card
        self.wavelength = np.asarray(card.wavelength, dtype=np.float64)
        self.checkpoint_id = card.checkpoint_id

    @classmethod
    def describe(cls, url: str) -> ModelCard:
        """Id, content hash (of ``card.json``, which records the model's hash) and lineage, without
        unpickling the model."""
        card, raw, _ = read_card(url)
        return ModelCard(card.checkpoint_id, short_digest(raw), lineage(card))

    @classmethod
    def load(cls, url: str, device: str | None = None) -> BaselinePredictor:
        """Read the checkpoint at ``url`` (``device`` is ignored: scikit-learn runs on the CPU)."""
        card, _, payload = read_card(url)
        fitted = joblib.load(io.BytesIO(payload))
        if not isinstance(fitted, FittedBaseline) or fitted.key != card.key:
            raise InputDataError(
                join_url(url, MODEL), f"is not the fitted '{card.key}' baseline its card describes"
            )
        return cls(fitted, card)

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``ece`` and ``ece_std`` (dS/m) per pixel; NaN where an input the baseline reads is missing.
        ``domain_score`` is NaN: a baseline has no latent to measure extrapolation in."""
        reflectance = np.asarray(reflectance, dtype=np.float32)
        covariates = np.asarray(covariates, dtype=np.float32)
        if reflectance.ndim != 2 or reflectance.shape[1] != len(self.wavelength):
            raise ValueError(
                f"reflectance must be (n, {len(self.wavelength)}) on the baseline's band axis, got {reflectance.shape}"
            )
        if covariates.shape != (len(reflectance), len(self.card.covariate_names)):
            raise ValueError(
                f"covariates must be ({len(reflectance)}, {len(self.card.covariate_names)}), got {covariates.shape}"
            )
        if survey is not None and np.shape(survey) != (len(reflectance),):
            raise ValueError(f"survey must be ({len(reflectance)},), got {np.shape(survey)}")
        ece, std = self.fitted.predict(reflectance, covariates, survey)
        return {
            "ece": ece.astype(np.float32),
            "ece_std": std.astype(np.float32),
            "domain_score": np.full(len(ece), np.nan, np.float32),
        }


def lineage(card: BaselineCard) -> dict[str, Any]:
    """What a map made with this baseline records about its model."""
    return {
        "baseline": card.key,
        "checkpoint_id": card.checkpoint_id,
        "data_fingerprint": card.data_fingerprint,
        "survey_input": card.features in (FeatureSet.SURVEY, FeatureSet.WITH_SURVEY),
    }
