"""ASI PRISMA L2D surface reflectance (``PRS_L2D_STD_*.he5``, HDF5-EOS), as ASI ships it.

Layout: swath ``HDFEOS/SWATHS/PRS_L2D_HCO`` holds ``Data Fields/VNIR_Cube`` and
``Data Fields/SWIR_Cube``, uint16 stored as (lines, bands, samples), and ``Geolocation Fields/
Latitude``/``Longitude`` per pixel. Root attributes give the band centres and widths in cube order
(``List_Cw_Vnir``/``List_Fwhm_Vnir``, ``List_Cw_Swir``/``List_Fwhm_Swir``: decreasing wavelength,
0 for a band slot not in use, with ``List_Cw_*_Flags`` 1 for the bands in use), the scaling
(reflectance = ``L2Scale*Min`` + DN x (``L2Scale*Max`` - ``L2Scale*Min``) / 65535, per detector),
and the geocoded grid (``Epsg_Code``, ``Product_ULcorner_easting``/``_northing`` and
``Product_LRcorner_*``, centres of the corner pixels). A pixel with DN 0 in every band is empty; a
single band at DN 0 is a dark band (reflectance ``L2Scale*Min``), so :class:`PrismaCube` gives
empty pixels the value ``NODATA`` (-1, never a DN) instead.

The grid from the corners is checked against the per-pixel Latitude/Longitude, so a product whose
map metadata and geolocation disagree is refused instead of mapped in the wrong place.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout, file_scene, parse_time
from deepsalt.io.formats import SceneFormat
from deepsalt.io.hdf import HdfCube, attribute, member
from deepsalt.io.stac import SceneRef
from deepsalt.spectra import BandTable

SWATH = "HDFEOS/SWATHS/PRS_L2D_HCO"
DETECTORS = ("Vnir", "Swir")
DN_MAX = 65535.0
NODATA = -1.0  # what PrismaCube.read gives a pixel stored as DN 0 in every band
# Corner-grid and Latitude/Longitude may disagree by at most this many pixels.
GEOLOCATION_TOLERANCE_PX = 2.0


def prisma_layout(url: str) -> SpectralLayout:
    """Band table (VNIR bands in use, then SWIR, in cube order, with per-detector scaling)."""
    with PrismaCube(url) as cube:
        return SpectralLayout(cube.table, NODATA)


def describe_prisma(url: str) -> SceneRef:
    """A SceneRef for a PRISMA L2D file: footprint of its geocoded grid, acquisition start."""
    with PrismaCube(url) as cube:
        return file_scene(url, SceneFormat.PRISMA_L2D, cube.crs, cube.transform, cube.shape, cube.start)


class PrismaCube(HdfCube):
    """Both cubes' bands in use on the geocoded grid; see :class:`deepsalt.io.cube.GriddedCube`."""

    nodata = NODATA

    def _read_layout(self, f) -> None:
        url = self.url
        self._cubes, self._keep, tables = [], [], []
        for detector in DETECTORS:
            cube = member(
                f, url, f"{SWATH}/Data Fields/{detector.upper()}_Cube", f"the {detector.upper()} cube"
            )
            if cube.ndim != 3:
                raise InputDataError(
                    url, f"{cube.name} has {cube.ndim} dimensions, expected (lines, bands, samples)"
                )
            centre = np.asarray(attribute(f, url, f"List_Cw_{detector}"), dtype=float).ravel()
            width = np.asarray(attribute(f, url, f"List_Fwhm_{detector}"), dtype=float).ravel()
            if not (centre.size == width.size == cube.shape[1]):
                raise InputDataError(
                    url,
                    f"List_Cw_{detector} has {centre.size} entries but {cube.name} holds {cube.shape[1]} bands",
                )
            in_use = centre > 0
            if f"List_Cw_{detector}_Flags" in f.attrs:
                in_use &= np.asarray(f.attrs[f"List_Cw_{detector}_Flags"]).ravel() > 0
            low, high = (float(attribute(f, url, f"L2Scale{detector}{end}")) for end in ("Min", "Max"))
            keep = np.flatnonzero(in_use)
            n = keep.size
            tables.append((centre[keep], width[keep], np.full(n, (high - low) / DN_MAX), np.full(n, low)))
            self._cubes.append(cube)
            self._keep.append(keep)
        if self._cubes[0].shape[::2] != self._cubes[1].shape[::2]:
            raise InputDataError(url, "the VNIR and SWIR cubes cover different grids")
        centre, width, gain, offset = (np.concatenate(parts) for parts in zip(*tables, strict=True))
        self.table = BandTable(centre, width, np.ones(centre.size, bool), gain=gain, offset=offset)
        self.shape = (self._cubes[0].shape[0], self._cubes[0].shape[2])
        self.crs = _crs(url, attribute(f, url, "Epsg_Code"))
        self.transform = _grid(f, url, self.shape)
        _check_geolocation(f, url, self.crs, self.transform, self.shape)
        self.start = parse_time(f.attrs.get("Product_StartTime"))

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        parts = [cube[rows, :, cols][:, keep, :] for cube, keep in zip(self._cubes, self._keep, strict=True)]
        dn = np.concatenate([np.moveaxis(p, 1, 0) for p in parts]).astype(np.float32)
        dn[:, np.all(dn == 0, axis=0)] = NODATA
        return dn


def _crs(url: str, code: object) -> CRS:
    try:
        return CRS.from_epsg(int(code))
    except (CRSError, TypeError, ValueError) as exc:
        raise InputDataError(
            url, f"root attribute 'Epsg_Code' ({code!r}) is not an EPSG code: {exc}"
        ) from exc


def _grid(f, url: str, shape: tuple[int, int]) -> Affine:
    """North-up grid through the centres of the upper-left and lower-right pixels."""
    rows, cols = shape
    ul_e, ul_n, lr_e, lr_n = (
        float(attribute(f, url, f"Product_{corner}corner_{axis}"))
        for corner, axis in (("UL", "easting"), ("UL", "northing"), ("LR", "easting"), ("LR", "northing"))
    )
    if rows < 2 or cols < 2 or not (lr_e > ul_e and ul_n > lr_n):
        raise InputDataError(url, "Product_ULcorner/LRcorner do not span the cubes' grid")
    dx, dy = (lr_e - ul_e) / (cols - 1), (ul_n - lr_n) / (rows - 1)
    return Affine(dx, 0.0, ul_e - dx / 2, 0.0, -dy, ul_n + dy / 2)


def _check_geolocation(f, url: str, crs: CRS, transform: Affine, shape: tuple[int, int]) -> None:
    """The centre pixel's Latitude/Longitude must fall where the corner grid puts that pixel."""
    row, col = shape[0] // 2, shape[1] // 2
    lat = float(member(f, url, f"{SWATH}/Geolocation Fields/Latitude", "per-pixel latitude")[row, col])
    lon = float(member(f, url, f"{SWATH}/Geolocation Fields/Longitude", "per-pixel longitude")[row, col])
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    gx, gy = transform @ (col + 0.5, row + 0.5)
    off = float(np.hypot(x - gx, y - gy))
    if off > GEOLOCATION_TOLERANCE_PX * abs(transform.a):
        raise InputDataError(
            url,
            f"the centre pixel's Latitude/Longitude lies {off:.0f} m from where Epsg_Code and the "
            "Product_*corner attributes put it: map metadata and geolocation disagree",
        )
