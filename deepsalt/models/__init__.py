"""The DeepSalt method in pure torch: autoencoders, SAU, teacher/student transformers, losses.

No files, no Ray, no clouds here: ``deepsalt.training`` feeds these modules tensors.
"""

from deepsalt.models.autoencoder import SpectralAutoencoder
from deepsalt.models.losses import DistillationWeights, distillation_loss, gaussian_kl, layer_weights
from deepsalt.models.sau import SAULossWeights, SpectralAdaptationUnit, sau_loss
from deepsalt.models.target import TargetScaler, interval
from deepsalt.models.transformer import GaussianTransformer, TransformerOutput

__all__ = [
    "DistillationWeights",
    "GaussianTransformer",
    "SAULossWeights",
    "SpectralAdaptationUnit",
    "SpectralAutoencoder",
    "TargetScaler",
    "TransformerOutput",
    "distillation_loss",
    "gaussian_kl",
    "interval",
    "layer_weights",
    "sau_loss",
]
