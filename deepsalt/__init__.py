"""DeepSalt: soil salinity (ECe, dS/m) maps from EnMAP hyperspectral imagery.

Laboratory mid-infrared spectra teach a satellite model through a Spectral Adaptation Unit and
teacher-student distillation; the student maps mosaics across a Ray cluster into sharded Zarr.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepsalt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["DeepSaltRegressor", "__version__"]


def __getattr__(name: str):
    """``deepsalt.DeepSaltRegressor`` without importing torch and scikit-learn on ``import deepsalt``."""
    if name == "DeepSaltRegressor":
        from deepsalt.estimator import DeepSaltRegressor

        return DeepSaltRegressor
    raise AttributeError(f"module 'deepsalt' has no attribute {name!r}")
