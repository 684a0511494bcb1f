"""NASA EMIT L2A surface reflectance (``EMIT_L2A_RFL_*.nc``, NetCDF-4), as the EMIT SDS writes it.

Layout: ``reflectance`` (downtrack, crosstrack, bands) float32 in [0, 1] with ``_FillValue``
-9999, in sensor geometry; group ``sensor_band_parameters`` with ``wavelengths`` and ``fwhm`` (nm)
and ``good_wavelengths`` (1 = usable); group ``location`` with per-pixel ``lat``/``lon`` and the
geometry lookup table ``glt_x``/``glt_y`` (ortho_y, ortho_x): for each cell of the orthorectified
grid, the 1-based crosstrack/downtrack pixel to take, 0 where no pixel falls. The root attributes
``geotransform`` (GDAL order) and ``spatial_ref`` (WKT, EPSG:4326) place that grid.

:class:`EmitCube` orthorectifies through the GLT window by window, reading only the swath rows and
columns a window needs.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout, file_scene, parse_time
from deepsalt.io.formats import SceneFormat
from deepsalt.io.hdf import HdfCube, attribute, member, open_hdf5
from deepsalt.io.stac import SceneRef
from deepsalt.spectra import BandTable

BANDS = "sensor_band_parameters"
DEFAULT_FILL = -9999.0


def emit_layout(url: str) -> SpectralLayout:
    """Band table (reflectance is stored as is: gain 1) and fill value of an EMIT L2A file."""
    with ExitStack() as stack:
        f = open_hdf5(url, stack)
        reflectance = member(f, url, "reflectance", "the surface reflectance cube")
        if BANDS not in f:
            raise InputDataError(
                url,
                f"has no '{BANDS}' group (wavelengths, fwhm, good_wavelengths): not an EMIT L2A reflectance file",
            )
        wavelength = member(f, url, f"{BANDS}/wavelengths", "band centres in nm")[()]
        fwhm = member(f, url, f"{BANDS}/fwhm", "band widths in nm")[()]
        good = member(f, url, f"{BANDS}/good_wavelengths", "usable-band flags")[()] > 0
        n = reflectance.shape[-1]
        if not (wavelength.shape == fwhm.shape == good.shape == (n,)):
            raise InputDataError(url, f"'{BANDS}' lists {wavelength.size} bands but 'reflectance' holds {n}")
        table = BandTable(wavelength, fwhm, good, gain=np.ones(n), offset=np.zeros(n))
        return SpectralLayout(table, _fill_value(reflectance))


def describe_emit(url: str) -> SceneRef:
    """A SceneRef for an EMIT L2A file: footprint of its orthorectified grid, acquisition start."""
    with EmitCube(url) as cube:
        return file_scene(url, SceneFormat.EMIT_L2A, cube.crs, cube.transform, cube.shape, cube.start)


class EmitCube(HdfCube):
    """The reflectance on the orthorectified (GLT) grid; see :class:`deepsalt.io.cube.GriddedCube`."""

    def _read_layout(self, f) -> None:
        url = self.url
        self._reflectance = member(f, url, "reflectance", "the surface reflectance cube")
        self._glt_x = member(f, url, "location/glt_x", "the geometry lookup table")
        self._glt_y = member(f, url, "location/glt_y", "the geometry lookup table")
        self.nodata = _fill_value(self._reflectance)
        self.shape = tuple(self._glt_x.shape)
        if self._glt_y.shape != self.shape or self._reflectance.ndim != 3:
            raise InputDataError(url, "glt_x/glt_y or reflectance have unexpected shapes")
        geotransform = np.asarray(attribute(f, url, "geotransform"), dtype=float).ravel()
        if geotransform.size != 6:
            raise InputDataError(url, f"root attribute 'geotransform' has {geotransform.size} values, not 6")
        self.transform = Affine.from_gdal(*geotransform)
        self.crs = _crs(url, attribute(f, url, "spatial_ref"))
        self.start = parse_time(f.attrs.get("time_coverage_start"))

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        # A negative GLT entry points at a neighbour that fills a gap in the swath: use its magnitude.
        glt_x = np.abs(self._glt_x[rows, cols].astype(np.int64))
        glt_y = np.abs(self._glt_y[rows, cols].astype(np.int64))
        n_bands = self._reflectance.shape[-1]
        out = np.full((n_bands, *glt_x.shape), self.nodata, dtype=np.float32)
        valid = (glt_x > 0) & (glt_y > 0)
        if valid.any():
            line, sample = glt_y[valid] - 1, glt_x[valid] - 1
            l0, s0 = int(line.min()), int(sample.min())
            swath = self._reflectance[l0 : int(line.max()) + 1, s0 : int(sample.max()) + 1, :]
            out[:, valid] = swath[line - l0, sample - s0, :].T
        return out


def _fill_value(dataset) -> float:
    fill = dataset.attrs.get("_FillValue")
    return DEFAULT_FILL if fill is None else float(np.asarray(fill).ravel()[0])


def _crs(url: str, wkt: object) -> CRS:
    try:
        return CRS.from_user_input(wkt.decode() if isinstance(wkt, bytes) else str(wkt))
    except CRSError as exc:
        raise InputDataError(url, f"root attribute 'spatial_ref' is not a CRS: {exc}") from exc
