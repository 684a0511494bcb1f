"""What every scene reader hands to the mapping: the band layout and, where GDAL cannot read the
file itself, the stored values on the scene's own map grid.

Readers for formats GDAL reads directly (EnMAP GeoTIFF, ENVI) only give the layout; the mapping
warps the file with GDAL. Readers for HDF5/NetCDF products (EMIT, PRISMA) also give a
:class:`GriddedCube`, which the mapping reads window by window and warps from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime as Datetime
from typing import Protocol

import numpy as np
from affine import Affine
from pyproj import CRS
from rasterio.warp import transform_bounds

from deepsalt.io.formats import SceneFormat
from deepsalt.io.stac import SceneRef
from deepsalt.spectra import BandTable


@dataclass(frozen=True)
class SpectralLayout:
    """The stored bands of one scene: ``table`` lists them in file order, with the ``gain``/``offset``
    that turn stored values into reflectance; a pixel stored as ``nodata`` in every band has no data."""

    table: BandTable
    nodata: float


class GriddedCube(Protocol):
    """Stored values of a scene on its own north-up grid (``crs``, ``transform``, ``shape``)."""

    url: str
    crs: CRS
    transform: Affine
    shape: tuple[int, int]
    nodata: float

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """(bands, rows, cols) stored values, bands in the layout's order; ``nodata`` where empty."""
        ...

    def close(self) -> None: ...


def bbox_lonlat(crs: CRS, transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """Lon/lat bounding box of a grid, rotated or not (edges densified, so curved edges are inside)."""
    height, width = shape
    xs, ys = zip(*(transform @ (c, r) for c in (0, width) for r in (0, height)), strict=True)
    return tuple(transform_bounds(crs, "EPSG:4326", min(xs), min(ys), max(xs), max(ys), densify_pts=21))


def parse_time(text: str | bytes | None) -> Datetime | None:
    """An ISO 8601 time from a product's metadata, or None when absent or unreadable (it only orders
    scenes for compositing, so a product without one is still mapped)."""
    if isinstance(text, bytes):
        text = text.decode()
    try:
        return Datetime.fromisoformat(text.strip().replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def file_scene(
    href: str,
    scene_format: SceneFormat,
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    start: Datetime | None,
    **parts: object,
) -> SceneRef:
    """The SceneRef of a scene given as a file: its id is the file name without extension, its
    footprint the grid's; ``parts`` adds ``metadata_href``/``quality_hrefs`` where a format has them."""
    return SceneRef(
        id=href.rstrip("/").rsplit("/", 1)[-1].split(".")[0],
        datetime=start,
        cloud_cover=None,
        bbox=bbox_lonlat(crs, transform, shape),
        epsg=CRS.from_user_input(crs).to_epsg(),
        spectral_href=href,
        metadata_href=parts.pop("metadata_href", None),
        quality_hrefs=dict(parts.pop("quality_hrefs", {})),
        format=scene_format,
    )
