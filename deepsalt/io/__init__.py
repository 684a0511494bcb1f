"""Readers: EnMAP L2A scenes, lab spectra, covariate rasters, STAC search.

The names below are imported on first use (:mod:`deepsalt.lazy`): the mapping actors import the
scene layouts from this package and do not need the xarray readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepsalt.lazy import lazy_names

if TYPE_CHECKING:
    from deepsalt.io.enmap import open_enmap, open_enmap_quality
    from deepsalt.io.lab import read_lab_spectra

__all__ = ["open_enmap", "open_enmap_quality", "read_lab_spectra"]
__getattr__ = lazy_names(
    __name__,
    {
        "open_enmap": "deepsalt.io.enmap",
        "open_enmap_quality": "deepsalt.io.enmap",
        "read_lab_spectra": "deepsalt.io.lab",
    },
)
