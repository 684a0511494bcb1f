"""Open EnMAP L2A reflectance lazily, in the units and layout the rest of DeepSalt expects.

Opening reads headers, the band table and a couple of blocks (the block stored last in the file,
which catches truncation, and the centre block of one band, which rejects scenes without a valid
pixel); the pixels themselves stay on disk as dask chunks until a caller computes a window, so the
band table, CRS, transform and bounds of many scenes are cheap to get.

xarray and rioxarray are imported by the readers that return their objects, not with the module:
the mapping actors use only this module's layouts and descriptions, and import it at every start.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout, file_scene, parse_time
from deepsalt.io.formats import SceneFormat
from deepsalt.io.layout import EnmapProduct, locate_product
from deepsalt.io.paths import gdal_path
from deepsalt.io.stac import SceneRef
from deepsalt.logs import get_logger
from deepsalt.spectra import ENMAP_NODATA, REFLECTANCE_SCALE, BandTable, scale_reflectance

if TYPE_CHECKING:
    import xarray as xr

log = get_logger(__name__)

DEFAULT_CHUNKS: dict[str, int] = {"band": -1, "y": 256, "x": 256}
MASK_NAMES = ("cloud", "cloud_shadow", "haze", "cirrus", "snow", "water", "background")
# QL_QUALITY_CLASSES values (docs/MODULES.md): 0 background, 1 land, 2 water.
_CLASS_VALUE = {"background": 0, "water": 2}
_PROBE = 256  # pixels per side of the decimated validity look


def open_enmap(url: str, chunks: dict[str, int] | None = None) -> xr.DataArray:
    """EnMAP L2A reflectance as a lazy ``(band, y, x)`` float32 DataArray in [0, 1], NaN = nodata.

    ``url`` is a DLR product folder or zip, a ``*-SPECTRAL_IMAGE.TIF`` inside one, or a single
    GeoTIFF whose bands carry ``wavelength``/``fwhm`` tags; local or remote (s3://, http(s)://).
    Coordinates ``wavelength``/``fwhm`` (nm) and ``good_band`` come from METADATA.XML when the
    product has one, else from the band tags. CRS and transform are set (``.rio``).
    """
    product = locate_product(url)
    source = _describe_source(product)
    with _raster(product.spectral, source) as ds:
        _check_complete(ds, source)
        table = _band_table(product, ds, source)
        _check_georeferencing(ds, source)
        scaling = _scaling(product, ds, table)
        _check_has_data(ds, source, table, scaling.nodata)
        crs, transform = ds.crs, ds.transform
    stored = _open_lazy(product.spectral, source, chunks)
    reflectance = scaling.reflectance(stored)
    reflectance = reflectance.assign_coords(
        wavelength=("band", table.wavelength),
        fwhm=("band", table.fwhm),
        good_band=("band", table.good),
    )
    reflectance.attrs = {"long_name": "surface reflectance", "units": "1", "source": url}
    reflectance.name = "reflectance"
    reflectance = reflectance.rio.write_crs(crs).rio.write_transform(transform).rio.write_nodata(np.nan)
    log.debug(
        "opened EnMAP scene",
        extra={"url": url, "bands": table.n_bands, "shape": reflectance.shape[1:], "crs": crs.to_string()},
    )
    return reflectance


@dataclass(frozen=True)
class StoredScaling:
    """Where a product's spectral image is and how its stored values become reflectance (the
    arguments :func:`open_enmap` gives ``scale_reflectance``), for readers that take pixels from the
    file themselves."""

    spectral_url: str
    nodata: float
    gain: np.ndarray | float
    offset: np.ndarray | float

    def reflectance(self, stored: Any) -> Any:
        """Stored values ``[..., band, y, x]`` (all the image's bands) → reflectance, NaN = nodata."""
        return scale_reflectance(stored, nodata=self.nodata, gain=self.gain, offset=self.offset)

    def select(self, bands: np.ndarray) -> StoredScaling:
        """The scaling of ``bands`` (indices into the image's bands) alone."""
        return replace(
            self,
            gain=np.asarray(self.gain)[bands] if np.ndim(self.gain) else self.gain,
            offset=np.asarray(self.offset)[bands] if np.ndim(self.offset) else self.offset,
        )


def stored_scaling(url: str) -> StoredScaling:
    """The :class:`StoredScaling` of an EnMAP product (as :func:`open_enmap` takes it; reads headers)."""
    product = locate_product(url)
    source = _describe_source(product)
    with _raster(product.spectral, source) as ds:
        return _scaling(product, ds, _band_table(product, ds, source))


def _scaling(product: EnmapProduct, ds: rasterio.DatasetReader, table: BandTable) -> StoredScaling:
    nodata = ENMAP_NODATA if ds.nodata is None else ds.nodata
    gain, offset = _gain_offset(table, ds)
    return StoredScaling(product.spectral, nodata, gain, offset)


def open_enmap_quality(url: str, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Boolean ``(y, x)`` masks (True = flagged) on the spectral image's grid, lazily.

    Masks whose layer the product lacks (always the case for a single GeoTIFF) are all False.
    """
    import xarray as xr

    product = locate_product(url)
    grid = _open_lazy(product.spectral, url, chunks).isel(band=0, drop=True)
    plane_chunks = {"y": grid.chunks[0][0], "x": grid.chunks[1][0]} if grid.chunks else None
    masks: dict[str, xr.DataArray] = {}
    for name in MASK_NAMES:
        layer = "classes" if name in _CLASS_VALUE else name
        if layer not in product.quality:
            masks[name] = xr.zeros_like(grid, dtype=bool)
            continue
        values = _open_lazy(product.quality[layer], url, plane_chunks).isel(band=0, drop=True)
        if values.shape != grid.shape:
            raise InputDataError(
                url,
                f"quality layer '{layer}' is {values.shape[0]}x{values.shape[1]} px but the spectral image is {grid.shape[0]}x{grid.shape[1]}",
            )
        target = _CLASS_VALUE.get(name, 1)
        masks[name] = (values == target).assign_coords(x=grid.x, y=grid.y)
    return xr.Dataset(masks).rio.write_crs(grid.rio.crs).rio.write_transform(grid.rio.transform())


def _describe_source(product: EnmapProduct) -> str:
    """The user's URL, plus the spectral image's file name when the URL is a folder or zip."""
    name = posixpath.basename(product.spectral)
    return product.url if product.url.rstrip("/").endswith(name) else f"{product.url} [{name}]"


def _reason(exc: BaseException) -> str:
    """GDAL's own words: the innermost cause of a rasterio error (the outer ones say 'see previous')."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)


@contextmanager
def _raster(path: str, url: str) -> Iterator[rasterio.DatasetReader]:
    try:
        with rasterio.open(path) as ds:
            yield ds
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read raster {path}: {_reason(exc)}") from exc


def _open_lazy(path: str, url: str, chunks: dict[str, int] | None) -> xr.DataArray:
    import rioxarray  # also registers the .rio accessor the readers use
    import xarray as xr

    try:
        stored = rioxarray.open_rasterio(path, chunks=chunks or DEFAULT_CHUNKS, mask_and_scale=False)
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read raster {path}: {_reason(exc)}") from exc
    if not isinstance(stored, xr.DataArray):
        raise InputDataError(url, f"{path} holds several subdatasets; expected a single GeoTIFF")
    return stored


def _band_table(product: EnmapProduct, ds: rasterio.DatasetReader, source: str) -> BandTable:
    """The product's band table, checked against the image's band count."""
    if product.metadata is not None:
        table, source = BandTable.from_metadata_xml(product.metadata), product.metadata
    else:
        try:
            table, source = BandTable.from_band_tags(ds), ds.name
        except InputDataError as exc:
            raise InputDataError(source, exc.message) from exc
    if table.n_bands != ds.count:
        raise InputDataError(
            source, f"the image has {ds.count} bands but the band table from {source} lists {table.n_bands}"
        )
    return table


def _gain_offset(table: BandTable, ds: rasterio.DatasetReader) -> tuple[Any, Any]:
    """Per-band scaling: METADATA.XML/STAC gain when known, else GDAL scales, else 1/10000."""
    if table.gain is not None:
        return table.gain, table.offset
    if any(s != 1.0 for s in ds.scales) or any(o != 0.0 for o in ds.offsets):
        return np.array(ds.scales), np.array(ds.offsets)
    return 1.0 / REFLECTANCE_SCALE, 0.0


def _check_georeferencing(ds: rasterio.DatasetReader, url: str) -> None:
    crs: CRS | None = ds.crs
    if crs is None:
        raise InputDataError(url, "the image has no CRS: cannot place its pixels on the ground")
    if not (crs.is_projected or crs.is_geographic):
        raise InputDataError(
            url, f"the image's CRS is not a known geographic or projected CRS: {crs.to_wkt()[:120]}"
        )
    if ds.transform.is_identity:
        raise InputDataError(url, "the image has no geotransform: cannot place its pixels on the ground")


def _check_complete(ds: rasterio.DatasetReader, url: str) -> None:
    """Read the block stored last in the file: the part that truncation removes first."""
    band, window = _last_stored_block(ds)
    try:
        ds.read(band, window=window)
    except RasterioError as exc:
        raise InputDataError(url, f"the image is truncated or corrupt: {_reason(exc)}") from exc


def _last_stored_block(ds: rasterio.DatasetReader) -> tuple[int, Window]:
    """(band, window) of the block with the largest TIFF file offset (metadata only, no pixels).

    Falls back to the bottom-right block of the last band for formats without block offsets.
    """
    best = (-1, ds.count, Window(ds.width - 1, ds.height - 1, 1, 1))
    for band in range(1, ds.count + 1):
        for (row, col), window in ds.block_windows(band):
            offset = ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
            if offset is not None and int(offset) > best[0]:
                best = (int(offset), band, window)
    return best[1], best[2]


def _check_has_data(ds: rasterio.DatasetReader, url: str, table: BandTable, nodata: float) -> None:
    """Reject a scene without a single valid pixel in its first usable band.

    Looks are ordered by cost: the block at the centre (one block; valid in any real scene, whose
    nodata is the swath's corners), then a decimated read (served by overviews in a COG), and the
    full band only to confirm an apparently empty scene.
    """
    usable = np.flatnonzero(table.usable())
    band = int(usable[0]) + 1 if usable.size else 1
    block_h, block_w = ds.block_shapes[band - 1]
    row, col = (ds.height // 2) // block_h, (ds.width // 2) // block_w
    looks = (
        lambda: ds.read(band, window=ds.block_window(band, row, col)),
        lambda: ds.read(band, out_shape=(min(ds.height, _PROBE), min(ds.width, _PROBE))),
        lambda: ds.read(band),
    )
    try:
        if any(_any_valid(look(), nodata) for look in looks):
            return
    except RasterioError as exc:
        raise InputDataError(url, f"the image is truncated or corrupt: {_reason(exc)}") from exc
    raise InputDataError(
        url, f"every pixel of band {band} ({table.wavelength[band - 1]:.1f} nm) is nodata: empty scene"
    )


def _any_valid(values: np.ndarray, nodata: float) -> bool:
    return bool(np.any(np.isfinite(values) & (values != nodata)))


def enmap_layout(scene: SceneRef) -> SpectralLayout:
    """The band table of an EnMAP scene: its METADATA.XML when it has one (band centres, scaling and
    the product's own nodata bands), else the STAC item's ``eo:bands``, else the image's band tags."""
    if scene.metadata_href is not None:
        table = BandTable.from_metadata_xml(scene.metadata_href)
    elif scene.bands is not None:
        table = scene.bands
    else:
        table = BandTable.from_band_tags(gdal_path(scene.spectral_href))
    return SpectralLayout(table, ENMAP_NODATA)


def describe_enmap(url: str) -> SceneRef:
    """A SceneRef for a local or remote EnMAP product (folder, .zip, SPECTRAL_IMAGE or tagged GeoTIFF)."""
    product = locate_product(url)
    with _raster(product.spectral, url) as ds:
        _check_georeferencing(ds, url)
        tags = ds.tags()
        start = parse_time(tags.get("start_time") or tags.get("TIFFTAG_DATETIME"))
        scene = file_scene(
            product.spectral,
            SceneFormat.ENMAP_L2A,
            ds.crs,
            ds.transform,
            ds.shape,
            start,
            metadata_href=product.metadata,
            quality_hrefs=product.quality,
        )
    return replace(scene, id=scene.id.removesuffix("-SPECTRAL_IMAGE"))
