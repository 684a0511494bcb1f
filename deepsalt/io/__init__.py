"""Readers: EnMAP L2A scenes, lab spectra, covariate rasters, STAC search."""

from deepsalt.io.enmap import open_enmap, open_enmap_quality

__all__ = ["open_enmap", "open_enmap_quality"]
