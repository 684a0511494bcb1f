"""Spectral toolkit: band tables, SRF resampling, masks, reflectance scaling, MIR grids."""

from deepsalt.spectra.bands import BandTable
from deepsalt.spectra.masks import WATER_VAPOUR_WINDOWS, water_vapour_mask
from deepsalt.spectra.mir import KSSL_WAVENUMBERS, interpolate_mir
from deepsalt.spectra.resample import resample_to_bands, srf_weights
from deepsalt.spectra.scaling import ENMAP_NODATA, REFLECTANCE_SCALE, scale_reflectance

__all__ = [
    "ENMAP_NODATA",
    "KSSL_WAVENUMBERS",
    "REFLECTANCE_SCALE",
    "WATER_VAPOUR_WINDOWS",
    "BandTable",
    "interpolate_mir",
    "resample_to_bands",
    "scale_reflectance",
    "srf_weights",
    "water_vapour_mask",
]
