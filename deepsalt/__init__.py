"""DeepSalt: soil salinity (ECe, dS/m) maps from EnMAP hyperspectral imagery.

Laboratory mid-infrared spectra teach a satellite model through a Spectral Adaptation Unit and
teacher-student distillation; the student maps mosaics across a Ray cluster into sharded Zarr.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepsalt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
