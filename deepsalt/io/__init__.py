"""Readers: EnMAP L2A scenes, lab spectra, covariate rasters, STAC search.

The names below are imported on first use (PEP 562): the mapping actors import the scene layouts
from this package and must not pay for the xarray readers on every start.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepsalt.io.enmap import open_enmap, open_enmap_quality
    from deepsalt.io.lab import read_lab_spectra

_HOME = {
    "open_enmap": "deepsalt.io.enmap",
    "open_enmap_quality": "deepsalt.io.enmap",
    "read_lab_spectra": "deepsalt.io.lab",
}
__all__ = ["open_enmap", "open_enmap_quality", "read_lab_spectra"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)
