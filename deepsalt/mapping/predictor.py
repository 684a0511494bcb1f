"""What the mapping needs from a model: the :class:`Predictor` protocol and its :class:`ModelCard`.

``model.predictor`` names any ``module:Class`` that satisfies the protocol; DeepSalt's own is
:class:`deepsalt.predict.StudentPredictor`. The driver only reads the model's card (metadata, no
weights): the checkpoint's content hash goes into the product identity and its lineage into
the store. Only the actors load the weights.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepsalt.errors import ConfigError


@dataclass(frozen=True)
class ModelCard:
    """A checkpoint described from its metadata alone."""

    checkpoint_id: str
    content_hash: str
    """Changes with anything in the checkpoint that changes a prediction (weights, statistics, band axis)."""
    lineage: Mapping[str, Any] = field(default_factory=dict)


class Precision(StrEnum):
    """Arithmetic of the forward pass: fp32, or bf16/fp16 autocast (matrix products in 16 bits)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass(frozen=True)
class InferenceSettings:
    """How a predictor runs its model; handed to ``configure`` when the predictor has one."""

    batch_pixels: int | None = None
    """Pixels per forward pass; None: the predictor picks (from the device's free memory on a GPU)."""
    precision: Precision = Precision.FP32
    compile: bool = False
    """Compile the forward pass (``torch.compile``) before the first batch."""


@runtime_checkable
class Predictor(Protocol):
    """A model the mapping can apply to pixels."""

    wavelength: np.ndarray
    """The input band axis (nm) that ``predict`` expects reflectance on."""
    checkpoint_id: str

    @classmethod
    def load(cls, url: str, device: str | None = None) -> Predictor:
        """Load the checkpoint at ``url`` for inference (``device`` None: the predictor chooses)."""
        ...

    @classmethod
    def describe(cls, url: str) -> ModelCard:
        """The checkpoint's card from its metadata, without loading weights; checks it is complete."""
        ...

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """(n, bands) reflectance in [0, 1], (n, 8) covariates and the survey's map-unit ECe (n,)
        (NaN or None where there is none) → ``ece``, ``ece_std``, ``domain_score``."""
        ...


def predictor_class(spec: str) -> type[Predictor]:
    """Import ``module:Class``; a name that does not resolve is a config error on ``model.predictor``."""
    module, _, name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError("<map config>", "model.predictor", f"cannot import '{spec}': {exc}") from exc
    missing = [m for m in ("load", "describe", "predict") if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(
            "<map config>", "model.predictor", f"'{spec}' is not a predictor (no {', '.join(missing)})"
        )
    return cls


def load_predictor(spec: str, url: str, settings: InferenceSettings | None = None) -> Predictor:
    """Import ``module:Class`` and load the checkpoint (device chosen by the predictor).

    ``settings`` reach predictors that define ``configure(settings)`` (an optional part of the
    protocol, so a predictor written before it keeps working); others run as they load.
    """
    predictor = predictor_class(spec).load(url, device=None)
    configure = getattr(predictor, "configure", None)
    if settings is not None and callable(configure):
        configure(settings)
    return predictor


def describe_model(spec: str, url: str) -> ModelCard:
    """The card of the checkpoint at ``url`` read by the predictor class ``spec``."""
    return predictor_class(spec).describe(url)
