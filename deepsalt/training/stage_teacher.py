"""The teacher stage: lab MIR → ECe on the whole lab library and the measured samples.

The teacher starts from the SAU's lab encoder (derivative features, salinity read-out in its
latent) and fine-tunes it, with a linear path over the standardised features beside its head: the
salt absorptions are small and nearly linear in absorbance, and a bottleneck alone lost them. The
region's measured samples are "spiked" into the library (repeated ``teacher.spike`` times), the
usual way a national spectral library is adapted to a region: a library from other landscapes
reads this region's low salinities with a bias that the student would otherwise inherit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.errors import InputDataError
from deepsalt.models.losses import task_loss
from deepsalt.training import builders
from deepsalt.training.config import Stage, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.loop import Batch, FitResult
from deepsalt.training.stage_base import (
    MIN_SAMPLES,
    ParentCheckpoint,
    StageOutput,
    StageTrainer,
    quality,
    split_indices,
    tensor,
)
from deepsalt.training.stage_sau import sau_parent, sau_part

LIBRARY_VAL_SHARE = 0.1


class TeacherTrainer(StageTrainer):
    stage = Stage.TEACHER

    @classmethod
    def parent_stages(cls, config: TrainConfig) -> tuple[Stage, ...]:
        return (Stage.SAU,)

    @classmethod
    def check_lineage(
        cls, config: TrainConfig, data: TrainingData, parents: Mapping[Stage, ParentCheckpoint]
    ) -> None:
        parents[Stage.SAU].check_axis("wavenumber", data.wavenumber)

    def prepare(self) -> None:
        data, config = self.data, self.config
        self.sau_arch, self.scaler = sau_parent(self.parents)
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        measured = np.flatnonzero(data.measured & data.has_spectrum)
        lib_tr, lib_va = split_indices(len(data.library_ece), LIBRARY_VAL_SHARE, config.seed + 29)
        if len(data.library_ece) == 0:
            lib_tr = lib_va = np.array([], int)
        # Spiking: the region's own measured samples weigh ``spike`` library rows each, so a
        # library from other landscapes adapts to this one's soils.
        local = np.tile(np.intersect1d(measured, train), config.teacher.spike)
        lab = np.concatenate([data.library_lab[lib_tr], data.lab[local]])
        ece = np.concatenate([data.library_ece[lib_tr], data.ece[local]])
        if len(ece) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>", f"only {len(ece)} lab spectra with measured ECe; need ≥ {MIN_SAMPLES}"
            )
        val_lab = np.concatenate([data.library_lab[lib_va], data.lab[np.intersect1d(measured, val)]])
        val_ece = np.concatenate([data.library_ece[lib_va], data.ece[np.intersect1d(measured, val)]])
        self.train_set = TensorDataset(tensor(lab), torch.as_tensor(self.scaler.encode(ece)))
        self.val_set = (tensor(val_lab), torch.as_tensor(self.scaler.encode(val_ece)))
        self.val_obs = val_ece
        head = builders.head_architecture(config, Stage.TEACHER, config.model.latent_dim, 0)
        self.arch = builders.TeacherArch(encoder=self.sau_arch.lab, head=head, linear=config.model.linear)

    def build(self) -> nn.Module:
        net = builders.build_teacher(self.arch)
        net.encoder.load_state_dict(sau_part(self.parents[Stage.SAU].load(Stage.SAU), "lab.encoder."))
        net.encoder.norm.requires_grad_(False)
        if self.config.teacher.freeze_encoder:
            net.encoder.requires_grad_(False)
        return net

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        lab, y = batch
        out = model(lab)
        return {"loss": task_loss(out.mean, out.std, y, self.config.teacher.nll_weight)}

    def val_loss(self, model: nn.Module, val: Batch) -> float:
        return float(self.loss(model, val, None)["loss"])

    def finalise(self, model: nn.Module, result: FitResult) -> tuple[dict[str, torch.Tensor], StageOutput]:
        lab, _ = self.val_set
        out = model(lab)
        return model.state_dict(), StageOutput(
            band_axis={"wavenumber": self.parents[Stage.SAU].meta.band_axis["wavenumber"]},
            normalisation={"target": self.scaler.to_dict()},
            architecture=self.arch.model_dump(mode="json"),
            metrics=quality(out.mean.numpy(), self.val_obs, self.scaler),
        )
