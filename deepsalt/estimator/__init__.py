"""The DeepSalt method for users' own tables (scikit-learn), and the baselines to compare it with.

``DeepSaltRegressor`` (:mod:`deepsalt.estimator.regressor`), ``TunedPLSR`` and ``TunedSVR``
(:mod:`deepsalt.estimator.baselines`) read ``X`` alike: the spectrum along ``wavelengths``, then
covariates.
"""

from deepsalt.estimator.baselines import TunedPLSR, TunedSVR
from deepsalt.estimator.regressor import DeepSaltRegressor
from deepsalt.estimator.spectra import PRETREATMENTS, pretreat

__all__ = ["PRETREATMENTS", "DeepSaltRegressor", "TunedPLSR", "TunedSVR", "pretreat"]
