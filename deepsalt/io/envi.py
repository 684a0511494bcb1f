"""ENVI reflectance cubes as AVIRIS-NG and AVIRIS-3 ship them: a text header beside a raw binary.

GDAL's ENVI driver reads the header (``samples``, ``lines``, ``bands``, ``interleave``, ``data
type``, ``byte order``, ``map info``/``coordinate system string``, ``data ignore value``) and the
pixels; this module takes the band table from the same header (``wavelength``, ``fwhm``, ``bbl``,
``wavelength units``) and states the scaling: ``reflectance scale factor`` when the header gives
one, else 1 for floating-point cubes (AVIRIS-NG/-3 store reflectance as float32) and 1/10000 for
integer cubes. GDAL reads a binary shorter than its header promises as zeros, so the file size is
checked here first.
"""

from __future__ import annotations

import fsspec
import numpy as np
import rasterio
from rasterio.errors import RasterioError

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout, file_scene, parse_time
from deepsalt.io.formats import SceneFormat
from deepsalt.io.paths import exists, gdal_path
from deepsalt.io.stac import SceneRef
from deepsalt.spectra import REFLECTANCE_SCALE, BandTable

# Binary file names that sit beside ``<stem>.hdr`` (AVIRIS-NG: no extension).
_BINARY_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw")
# Stored value of an empty pixel when the header gives no ``data ignore value`` (AVIRIS convention).
DEFAULT_IGNORE_VALUE = -9999.0
_MICROMETRE_UNITS = {"micrometers", "micrometer", "micrometres", "micrometre", "um", "µm", "microns"}


def binary_url(url: str) -> str:
    """The binary cube of ``url`` (the binary itself, or its ``.hdr``)."""
    if not url.lower().endswith(".hdr"):
        return url
    stem = url[: -len(".hdr")]
    for suffix in _BINARY_SUFFIXES:
        if exists(stem + suffix):
            return stem + suffix
    raise InputDataError(url, f"no binary cube beside the header (looked for {stem}[.img|.dat|.bsq|...])")


def envi_layout(url: str) -> SpectralLayout:
    """Band table (file order, with scaling) and ignore value of an ENVI reflectance cube."""
    binary = binary_url(url)
    with _open(binary) as ds:
        header = ds.tags(ns="ENVI")
        _check_size(binary, header, ds.dtypes[0])
        table = _band_table(binary, header, ds.count, np.dtype(ds.dtypes[0]))
        nodata = DEFAULT_IGNORE_VALUE if ds.nodata is None else float(ds.nodata)
    return SpectralLayout(table, nodata)


def describe_envi(url: str) -> SceneRef:
    """A SceneRef for a local or remote ENVI cube (footprint from its map info)."""
    binary = binary_url(url)
    with _open(binary) as ds:
        if ds.crs is None or ds.transform.is_identity:
            raise InputDataError(binary, "the header has no map info: cannot place the cube on the ground")
        start = parse_time(ds.tags(ns="ENVI").get("acquisition_time", "").strip("{} "))
        return file_scene(binary, SceneFormat.ENVI, ds.crs, ds.transform, ds.shape, start)


def _open(binary: str) -> rasterio.DatasetReader:
    try:
        ds = rasterio.open(gdal_path(binary))
    except RasterioError as exc:
        raise InputDataError(
            binary, f"cannot be opened as an ENVI cube (header missing or unreadable?): {exc}"
        ) from exc
    if ds.driver != "ENVI":
        ds.close()
        raise InputDataError(binary, f"is a {ds.driver} file, not an ENVI cube with a .hdr header")
    return ds


def _check_size(binary: str, header: dict[str, str], dtype: str) -> None:
    """The binary must hold exactly samples x lines x bands values after the header offset."""
    samples, lines, bands = (int(header[k]) for k in ("samples", "lines", "bands"))
    offset = int(header.get("header_offset", 0))
    expected = offset + samples * lines * bands * np.dtype(dtype).itemsize
    fs, path = fsspec.core.url_to_fs(binary)
    actual = fs.size(path)
    if actual != expected:
        raise InputDataError(
            binary,
            f"the header lists {bands} bands of {lines} x {samples} {dtype} values ({expected} bytes) "
            f"but the binary holds {actual} bytes: header and file disagree",
        )


def _band_table(binary: str, header: dict[str, str], count: int, dtype: np.dtype) -> BandTable:
    if "wavelength" not in header:
        raise InputDataError(
            binary, "the header has no 'wavelength' list: cannot tell which bands the cube holds"
        )
    wavelength = _numbers(binary, header, "wavelength", count)
    fwhm = _numbers(binary, header, "fwhm", count) if "fwhm" in header else _spacing(wavelength)
    good = _numbers(binary, header, "bbl", count) > 0 if "bbl" in header else np.ones(count, bool)
    units = header.get("wavelength_units", "").strip().lower()
    if units in _MICROMETRE_UNITS or (not units and np.nanmax(wavelength) < 20):
        wavelength, fwhm = wavelength * 1000.0, fwhm * 1000.0
    if "reflectance_scale_factor" in header:
        gain = 1.0 / float(header["reflectance_scale_factor"])
    else:
        gain = 1.0 if dtype.kind == "f" else 1.0 / REFLECTANCE_SCALE
    try:
        return BandTable(wavelength, fwhm, good, gain=np.full(count, gain), offset=np.zeros(count))
    except ValueError as exc:
        raise InputDataError(binary, f"unusable band table in the header: {exc}") from exc


def _numbers(binary: str, header: dict[str, str], key: str, count: int) -> np.ndarray:
    """A ``{ a, b, ... }`` header list as floats, checked against the band count."""
    try:
        values = np.array([float(v) for v in header[key].strip().strip("{}").split(",") if v.strip()])
    except ValueError as exc:
        raise InputDataError(binary, f"header field '{key}' is not a list of numbers: {exc}") from exc
    if values.size != count:
        raise InputDataError(binary, f"header field '{key}' has {values.size} values for {count} bands")
    return values


def _spacing(wavelength: np.ndarray) -> np.ndarray:
    """FWHM stand-in when a header gives none: the distance to the neighbouring bands."""
    ordered = np.sort(wavelength)
    step = np.gradient(ordered)
    return np.interp(wavelength, ordered, step)
