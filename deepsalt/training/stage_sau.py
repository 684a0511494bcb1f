"""The SAU stage: both autoencoders, aligned on geo-pairs, with the shared salinity read-out.

An epoch is one pass over the pixel pool; each step adds random library rows and geo-pairs. The
target scaler (log1p ECe, standardised on the library and the measured samples) is fitted here
and inherited by the teacher and the student, so their Gaussians live in one space and the KL
between them is defined.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.errors import InputDataError
from deepsalt.models.sau import SAUBatch, SAULossWeights, SpectralAdaptationUnit, sau_loss
from deepsalt.models.target import TargetScaler
from deepsalt.training import builders
from deepsalt.training.checkpoint import to_json_array
from deepsalt.training.config import Stage, TrainConfig
from deepsalt.training.loop import Batch, FitResult
from deepsalt.training.stage_base import (
    MIN_SAMPLES,
    ParentCheckpoint,
    StageOutput,
    StageTrainer,
    split_indices,
    tensor,
)

POOL_VAL_SHARE = 0.1
"""Share of the pixel pool held out for validation and, in the student, for the domain score."""


def pool_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The pool's train/validation rows; the same for every stage on the same data."""
    return split_indices(n, POOL_VAL_SHARE, seed + 17)


class _SAUTraining(nn.Module):
    """The SAU with its loss as ``forward`` (DDP synchronises what ``forward`` computes)."""

    def __init__(self, sau: SpectralAdaptationUnit, weights: SAULossWeights):
        super().__init__()
        self.sau, self.weights = sau, weights

    def forward(self, batch: SAUBatch) -> dict[str, torch.Tensor]:
        return sau_loss(self.sau, batch, self.weights)


class SAUTrainer(StageTrainer):
    stage = Stage.SAU

    @classmethod
    def parent_stages(cls, config: TrainConfig) -> tuple[Stage, ...]:
        return ()

    def prepare(self) -> None:
        data, config = self.data, self.config
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        pairs = np.flatnonzero(data.paired & data.has_spectrum)
        if len(pairs) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>",
                f"only {len(pairs)} lab samples have a clear satellite pixel; the SAU needs ≥ {MIN_SAMPLES}",
            )
        if len(data.pool) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>", f"only {len(data.pool)} clear pool pixels; need ≥ {MIN_SAMPLES}"
            )
        tr, va = np.intersect1d(pairs, train), np.intersect1d(pairs, val)
        pool_tr, pool_va = pool_split(len(data.pool), config.seed)
        measured = data.measured & data.has_spectrum
        self.scaler = TargetScaler.fit(
            np.concatenate([data.library_ece, data.ece[np.intersect1d(np.flatnonzero(measured), train)]]),
            config.model.target_transform,
        )
        self.arch = builders.sau_architecture(config, data.lab.shape[1], data.sat.shape[1])
        self.lab_rows = np.concatenate(
            [data.library_lab, data.lab[np.intersect1d(np.flatnonzero(data.has_spectrum), train)]]
        )

        def y(ece: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.where(np.isfinite(ece), self.scaler.encode(np.nan_to_num(ece)), np.nan))

        use_survey = config.use_survey
        pool_y = y(data.pool_survey) if use_survey else torch.full((len(data.pool),), float("nan"))
        self.library = (tensor(data.library_lab), y(data.library_ece))
        self.pairs = (tensor(data.lab[tr]), tensor(data.sat[tr]), y(data.ece[tr]))
        self.pool_train = (tensor(data.pool[pool_tr]), pool_y[pool_tr])
        self.train_set = TensorDataset(*self.pool_train)
        vp = pool_va[: max(len(va), 64)]
        self.val_set = (
            tensor(data.pool[vp]),
            pool_y[vp],
            tensor(data.lab[va]),
            y(data.ece[va]),
            tensor(data.sat[va]),
        )
        s = config.sau
        on = config.use_sau
        self.weights = SAULossWeights(
            s.reconstruction_weight,
            s.align_weight if on else 0.0,
            s.nce_weight if on else 0.0,
            s.target_weight if on else 0.0,
            s.survey_target_weight if on else 0.0,
            s.temperature,
        )

    def build(self) -> nn.Module:
        sau = builders.build_sau(self.arch)
        with torch.no_grad():
            sau.lab.encoder.norm.fit(sau.lab.encoder.features(tensor(self.lab_rows)))
            sau.sat.encoder.norm.fit(sau.sat.encoder.features(self.pool_train[0]))
        sau.lab.encoder.norm.requires_grad_(False)
        sau.sat.encoder.norm.requires_grad_(False)
        return _SAUTraining(sau, self.weights)

    def _draw(self, tensors: tuple[torch.Tensor, ...], n: int, generator: torch.Generator, device) -> list:
        idx = torch.randint(len(tensors[0]), (n,), generator=generator, device=generator.device).cpu()
        return [t[idx].to(device) for t in tensors]

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        pool, pool_y = batch
        device = pool.device
        n = self.config.sau.pair_batch
        library, library_y = self._draw(self.library, n, generator, device)
        pair_lab, pair_sat, pair_y = self._draw(self.pairs, n, generator, device)
        n_features = pool.shape[1]
        mask = torch.rand(len(pool), n_features, generator=generator, device=generator.device).to(device)
        return model(
            SAUBatch(
                pool,
                mask < self.config.sau.mask_fraction,
                pool_y,
                library,
                library_y,
                pair_lab,
                pair_sat,
                pair_y,
            )
        )

    def val_loss(self, model: nn.Module, val: Batch) -> float:
        pool, pool_y, lab, y, sat = val
        no_mask = torch.zeros(pool.shape, dtype=torch.bool, device=pool.device)
        return float(model(SAUBatch(pool, no_mask, pool_y, lab, y, lab, sat, y))["loss"])

    def finalise(self, model: nn.Module, result: FitResult) -> tuple[dict[str, torch.Tensor], StageOutput]:
        sau = model.sau
        _, _, lab, _, sat = self.val_set
        cosine = torch.nn.functional.cosine_similarity(sau.lab.encoder(lab), sau.sat.encoder(sat)).mean()
        return sau.state_dict(), StageOutput(
            band_axis={
                "wavelength": to_json_array(self.data.wavelength),
                "wavenumber": to_json_array(self.data.wavenumber),
            },
            normalisation={"target": self.scaler.to_dict()},
            architecture=self.arch,
            metrics={"val_cosine": float(cosine)},
        )


def sau_parent(parents: Mapping[Stage, ParentCheckpoint]) -> tuple[builders.SAUArch, TargetScaler]:
    """The SAU checkpoint's architecture and target scaler, as the teacher and student inherit them."""
    meta = parents[Stage.SAU].meta
    return builders.SAUArch.model_validate(meta.architecture), TargetScaler(**meta.normalisation["target"])


def sau_part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The weights under ``prefix`` (e.g. ``sat.encoder.``) of an SAU state dict, prefix removed."""
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
