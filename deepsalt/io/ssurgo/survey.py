"""Per-pixel survey ECe and texture: the map-unit key raster joined to the map units' properties.

The key raster is the gSSURGO/gNATSGO ``MapunitRaster`` (pixel value = ``mukey``). It is read with
nearest-neighbour sampling only (a key is a category: averaging two keys gives a third, unrelated
unit), reprojected on the fly with GDAL onto whatever grid is asked, so no copy is ever written
except by ``write_survey_cogs``, whose output is meant to be a covariate raster.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
from affine import Affine
from fsspec.core import url_to_fs
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.paths import gdal_path
from deepsalt.io.ssurgo.aggregate import (
    DEFAULT_BOTTOM_CM,
    DEFAULT_TOP_CM,
    SURVEY_PROPERTIES,
    mapunit_properties,
)
from deepsalt.io.ssurgo.schema import SsurgoTable
from deepsalt.io.ssurgo.tables import read_tables

# In SurveyLayers.mukey: no map unit there (outside the raster, its nodata, or a key <= 0).
NO_MAPUNIT = 0
UNITS = {"ece": "dS/m", "sand": "%", "clay": "%"}
_STRIP_ROWS = 512
_KEY_DTYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"})


@dataclass(frozen=True)
class Survey:
    """An SSURGO export opened for sampling: where its key raster is, and each map unit's properties."""

    url: str
    raster_url: str
    mapunit_url: str
    properties: pd.DataFrame  # mapunit_properties(...): index mukey, columns ece, sand, clay
    top_cm: float
    bottom_cm: float


@dataclass(frozen=True)
class SurveyLayers:
    """Survey values on a grid (2-D) or at points (1-D); float32, NaN where there is no value."""

    mukey: np.ndarray  # int64, NO_MAPUNIT where no map unit
    ece: np.ndarray  # dS/m
    sand: np.ndarray  # %
    clay: np.ndarray  # %


def load_survey(url: str, top_cm: float = DEFAULT_TOP_CM, bottom_cm: float = DEFAULT_BOTTOM_CM) -> Survey:
    """Read the tables of the export in folder ``url`` and find its key raster."""
    tables = read_tables(url)
    return Survey(
        url=url,
        raster_url=find_mukey_raster(url),
        mapunit_url=tables.sources[SsurgoTable.MAPUNIT],
        properties=mapunit_properties(tables, top_cm, bottom_cm),
        top_cm=top_cm,
        bottom_cm=bottom_cm,
    )


def find_mukey_raster(folder_url: str) -> str:
    """The one GeoTIFF of map-unit keys in the export folder (or its ``spatial/``).

    A name with ``MapunitRaster`` or ``mukey`` in it wins; otherwise the folder must hold one GeoTIFF.
    """
    candidates = []
    for sub in ("", "spatial"):
        fs, path = url_to_fs(f"{folder_url.rstrip('/')}/{sub}".rstrip("/"))
        if fs.isdir(path):
            names = fs.ls(path, detail=False)
            candidates += [fs.unstrip_protocol(p) for p in names if p.lower().endswith((".tif", ".tiff"))]
    keyed = [
        u for u in candidates if any(k in posixpath.basename(u).lower() for k in ("mapunitraster", "mukey"))
    ]
    chosen = keyed or candidates
    if len(chosen) != 1:
        found = ", ".join(posixpath.basename(u) for u in chosen) or "none"
        raise InputDataError(
            folder_url,
            f"expected one map-unit key GeoTIFF (e.g. MapunitRaster_30m.tif) in the folder or spatial/, found {found}",
        )
    return chosen[0]


def survey_on_grid(
    survey: Survey | str,
    crs: CRS | str,
    transform: Affine,
    shape: tuple[int, int],
    *,
    top_cm: float | None = None,
    bottom_cm: float | None = None,
) -> SurveyLayers:
    """Survey layers on the grid ``crs``/``transform``/``shape`` (nearest map unit of each pixel centre)."""
    survey = _as_survey(survey, top_cm, bottom_cm)
    with _open(survey.raster_url) as ds:
        fill = _fill(ds)
        keys = np.full(shape, fill, dtype=ds.dtypes[0])
        try:
            reproject(
                source=rasterio.band(ds, 1),
                destination=keys,
                src_nodata=ds.nodata,
                dst_nodata=fill,
                dst_transform=transform,
                dst_crs=CRS.from_user_input(crs),
                resampling=Resampling.nearest,
            )
        except RasterioError as exc:
            raise InputDataError(survey.raster_url, f"cannot warp the map-unit key raster: {exc}") from exc
    return _layers(survey, keys, fill)


def sample_survey(
    survey: Survey | str,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    top_cm: float | None = None,
    bottom_cm: float | None = None,
) -> SurveyLayers:
    """Survey layers at WGS84 points (the map unit of the key-raster pixel each point falls in)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError(f"lon and lat must be 1-D of one length, got {lon.shape} and {lat.shape}")
    survey = _as_survey(survey, top_cm, bottom_cm)
    with _open(survey.raster_url) as ds:
        fill = _fill(ds)
        keys = np.full(lon.shape, fill, dtype=ds.dtypes[0])
        if lon.size:
            x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
            for i, value in enumerate(ds.sample(zip(x, y, strict=True), indexes=1, masked=True)):
                if not np.ma.is_masked(value):
                    keys[i] = value[0]
    return _layers(survey, keys, fill)


def write_survey_cogs(
    survey: Survey | str,
    out_url: str,
    *,
    top_cm: float | None = None,
    bottom_cm: float | None = None,
    source: str | None = None,
) -> dict[str, str]:
    """``<out_url>/ece.tif``, ``sand.tif``, ``clay.tif`` on the key raster's own grid; returns their URLs.

    ``source`` is how the rasters' tags name the export (default: its URL; a generator writing into
    a staging folder passes a path relative to what it publishes, so the bytes do not depend on it).

    The raster is processed in strips, so a state-wide 10 m raster never sits in memory; the COGs are
    built in a temporary folder and copied out only when all three are complete.
    """
    survey = _as_survey(survey, top_cm, bottom_cm)
    fs, root = url_to_fs(out_url)
    with tempfile.TemporaryDirectory() as tmp, _open(survey.raster_url) as ds:
        fill = _fill(ds)
        tiled = {name: Path(tmp) / f"{name}.tiled.tif" for name in SURVEY_PROPERTIES}
        profile = dict(
            driver="GTiff", width=ds.width, height=ds.height, count=1, dtype="float32", crs=ds.crs,
            transform=ds.transform, nodata=np.nan, tiled=True, blockxsize=512, blockysize=512,
            compress="deflate", bigtiff="IF_SAFER",
        )  # fmt: skip
        with ExitStack() as stack:
            outputs = {
                name: stack.enter_context(rasterio.open(path, "w", **profile)) for name, path in tiled.items()
            }
            for row in range(0, ds.height, _STRIP_ROWS):
                window = Window(0, row, ds.width, min(_STRIP_ROWS, ds.height - row))
                layers = _layers(survey, ds.read(1, window=window), fill)
                for name, dst in outputs.items():
                    dst.write(getattr(layers, name), 1, window=window)
            for name, dst in outputs.items():
                dst.update_tags(**_tags(survey, name, source or survey.url))
        fs.makedirs(root, exist_ok=True)
        cogs = {}
        for name, path in tiled.items():
            cogs[name] = Path(tmp) / f"{name}.tif"
            rasterio.shutil.copy(
                path, cogs[name], driver="COG", compress="deflate", predictor="YES", blocksize=512,
                overviews="auto", overview_resampling="average",
            )  # fmt: skip
        written = {}
        for name, cog in cogs.items():
            target = f"{root.rstrip('/')}/{name}.tif"
            fs.put_file(str(cog), target)
            written[name] = fs.unstrip_protocol(target)
    return written


def _tags(survey: Survey, name: str, source: str) -> dict[str, str]:
    return {
        "units": UNITS[name],
        "ssurgo_column": SURVEY_PROPERTIES[name],
        "depth_cm": f"{survey.top_cm:g}-{survey.bottom_cm:g}",
        "aggregation": "component-weighted (comppct_r) mean of thickness-weighted horizon means",
        "source": source,
    }


def _as_survey(survey: Survey | str, top_cm: float | None, bottom_cm: float | None) -> Survey:
    """``survey`` itself, or the export at that URL loaded for the depth interval (default 0-30 cm)."""
    if not isinstance(survey, Survey):
        top = DEFAULT_TOP_CM if top_cm is None else top_cm
        return load_survey(survey, top, DEFAULT_BOTTOM_CM if bottom_cm is None else bottom_cm)
    asked = (
        survey.top_cm if top_cm is None else top_cm,
        survey.bottom_cm if bottom_cm is None else bottom_cm,
    )
    if asked != (survey.top_cm, survey.bottom_cm):
        raise ValueError(
            f"survey was loaded for {survey.top_cm:g}-{survey.bottom_cm:g} cm, not {asked[0]:g}-{asked[1]:g} cm"
        )
    return survey


@contextmanager
def _open(url: str) -> Iterator[rasterio.DatasetReader]:
    """The key raster; a GDAL error while it is open (reading a block, say) is reported as naming it."""
    try:
        with rasterio.open(gdal_path(url)) as ds:
            if ds.crs is None:
                raise InputDataError(url, "map-unit key raster has no CRS")
            if ds.dtypes[0] not in _KEY_DTYPES:
                raise InputDataError(url, f"map-unit keys cannot be stored as {ds.dtypes[0]}")
            yield ds
    except RasterioError as exc:
        raise InputDataError(url, f"cannot read the map-unit key raster: {exc}") from exc


def _fill(ds: rasterio.DatasetReader) -> float:
    """The value that marks 'no map unit': the raster's nodata, or 0 (no mukey is 0) when it has none."""
    return ds.nodata if ds.nodata is not None else NO_MAPUNIT


def _layers(survey: Survey, keys: np.ndarray, fill: float) -> SurveyLayers:
    """Join raw key-raster values to the map units' properties."""
    valid = keys != fill
    if keys.dtype.kind == "f":
        valid &= np.isfinite(keys)
        if np.any(keys[valid] != np.round(keys[valid])):
            raise InputDataError(survey.raster_url, "map-unit keys must be whole numbers")
    mukey = np.full(keys.shape, NO_MAPUNIT, dtype=np.int64)
    mukey[valid] = keys[valid].astype(np.int64)
    mukey[mukey < 0] = NO_MAPUNIT
    known = survey.properties.index.to_numpy(np.int64)
    present = np.unique(mukey[mukey != NO_MAPUNIT])
    unknown = present[~np.isin(present, known)]
    if unknown.size:
        listed = ", ".join(str(k) for k in unknown[:5]) + (", …" if unknown.size > 5 else "")
        raise InputDataError(
            survey.raster_url,
            f"{unknown.size} map unit key(s) in the raster are not in {survey.mapunit_url}: {listed}",
        )
    have = mukey != NO_MAPUNIT
    rows = np.searchsorted(known, mukey[have])
    values = survey.properties[list(SURVEY_PROPERTIES)].to_numpy(np.float32)
    layers = {}
    for column, name in enumerate(SURVEY_PROPERTIES):
        layer = np.full(keys.shape, np.nan, dtype=np.float32)
        layer[have] = values[rows, column]
        layers[name] = layer
    return SurveyLayers(mukey=mukey, **layers)
