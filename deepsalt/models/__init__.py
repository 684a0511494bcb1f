"""The DeepSalt method in pure torch: autoencoders, SAU, teacher/student networks, losses.

No files, no Ray, no clouds here: ``deepsalt.training`` feeds these modules tensors.
"""

from deepsalt.models.autoencoder import SpectralAutoencoder, SpectralEncoder
from deepsalt.models.heads import GaussianMLP, GaussianOutput
from deepsalt.models.losses import (
    DistillationWeights,
    StudentTargets,
    distillation_loss,
    gaussian_kl,
    layer_weights,
)
from deepsalt.models.networks import StudentEnsemble, StudentNet, TeacherNet
from deepsalt.models.norm import BoundedStandardizer, Standardizer
from deepsalt.models.sau import SAUBatch, SAULossWeights, SpectralAdaptationUnit, sau_loss
from deepsalt.models.target import TargetScaler, interval
from deepsalt.models.transformer import GaussianTransformer

__all__ = [
    "BoundedStandardizer",
    "DistillationWeights",
    "GaussianMLP",
    "GaussianOutput",
    "GaussianTransformer",
    "SAUBatch",
    "SAULossWeights",
    "SpectralAdaptationUnit",
    "SpectralAutoencoder",
    "SpectralEncoder",
    "Standardizer",
    "StudentEnsemble",
    "StudentNet",
    "StudentTargets",
    "TargetScaler",
    "TeacherNet",
    "distillation_loss",
    "gaussian_kl",
    "interval",
    "layer_weights",
    "sau_loss",
]
