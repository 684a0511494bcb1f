"""Readers: EnMAP L2A scenes, lab spectra, covariate rasters, STAC search."""

from deepsalt.io.enmap import open_enmap, open_enmap_quality
from deepsalt.io.lab import read_lab_spectra

__all__ = ["open_enmap", "open_enmap_quality", "read_lab_spectra"]
