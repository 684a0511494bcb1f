"""The output Zarr v3 store: skeleton, per-tile region writes and per-tile completion records.

The root group holds the map's identity (product hash, lineage); the full-resolution variables live
in its child group ``0``, the first level of the pyramid (see ``deepsalt.mapping.conventions``).
The whole skeleton (metadata, coordinates, CF ``spatial_ref``) is written once, before any tile,
so workers only ever write array shards. A tile's completion record (``_tiles/<id>.json``) is
written after all of its data; a run killed mid-tile leaves no record and the tile is redone.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dask.array as da
import fsspec
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from fsspec.implementations.local import LocalFileSystem
from zarr.codecs import ZstdCodec

from deepsalt import __version__
from deepsalt.errors import DeepSaltError
from deepsalt.mapping.conventions import level_attrs, level_path
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import FLAG_MASKS, FLAG_MEANINGS, Quality
from deepsalt.mapping.tiles import Tile

RECORDS = "_tiles"
FULL_RESOLUTION = level_path(0)


@dataclass(frozen=True)
class Variable:
    name: str
    dtype: str
    fill: float | int
    attrs: Mapping[str, Any]


VARIABLES = (
    Variable(
        "ece",
        "float32",
        np.nan,
        {"units": "dS/m", "long_name": "soil salinity, ECe of the saturated paste extract"},
    ),
    Variable(
        "ece_std", "float32", np.nan, {"units": "dS/m", "long_name": "predictive standard deviation of ECe"}
    ),
    Variable(
        "domain_score",
        "float32",
        np.nan,
        {
            "units": "1",
            "long_name": "distance of the pixel's latent from the training distribution (large = extrapolating)",
        },
    ),
    Variable(
        "quality",
        "uint8",
        int(Quality.NODATA),
        {"long_name": "quality flags", "flag_masks": FLAG_MASKS, "flag_meanings": FLAG_MEANINGS},
    ),
)


class StoreMismatchError(DeepSaltError):
    """An existing store was made with other settings; resuming into it would mix two maps."""


def georeference(ds: xr.Dataset, grid: Grid) -> xr.Dataset:
    """Attach projected x/y coordinates, the CF ``spatial_ref`` (crs_wkt + GeoTransform) and the
    ``spatial:``/``proj:`` convention attributes."""
    ds = ds.assign_coords(y=grid.y_coords(), x=grid.x_coords())
    ds = ds.assign_attrs({"Conventions": "CF-1.10", **level_attrs(grid)})
    ds.x.attrs.update(units="m", standard_name="projection_x_coordinate")
    ds.y.attrs.update(units="m", standard_name="projection_y_coordinate")
    return ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def layout(shape: tuple[int, int], chunk: int, shard: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(chunk shape, shard shape) for an array: shards hold whole chunks, small arrays one shard."""
    inner = tuple(min(chunk, n) for n in shape)
    outer = tuple(min(shard, -(-n // c) * c) for n, c in zip(shape, inner, strict=True))
    return inner, outer  # type: ignore[return-value]


def set_encoding(ds: xr.Dataset, chunk: int, shard: int) -> xr.Dataset:
    """512-px chunks inside shards, zstd, fill values (on ``var.encoding``: keeps grid_mapping)."""
    chunk_shape, shard_shape = layout((ds.sizes["y"], ds.sizes["x"]), chunk, shard)
    for var in VARIABLES:
        ds[var.name].encoding = {
            "chunks": chunk_shape,
            "shards": shard_shape,
            "compressors": (ZstdCodec(level=3),),
            "fill_value": var.fill,
        }
    return ds


def skeleton(grid: Grid, chunk: int, shard: int) -> xr.Dataset:
    """Lazy dataset of the full map (nothing computed) carrying coordinates, CRS and encodings."""
    _, blocks = layout(grid.shape, chunk, shard)
    data_vars = {
        var.name: xr.Variable(
            ("y", "x"), da.full(grid.shape, var.fill, dtype=var.dtype, chunks=blocks), attrs=dict(var.attrs)
        )
        for var in VARIABLES
    }
    ds = georeference(xr.Dataset(data_vars), grid)
    return set_encoding(ds, chunk, shard)


def store_exists(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(f"{path}/zarr.json")


def create_or_check(url: str, grid: Grid, chunk: int, shard: int, attrs: Mapping[str, Any]) -> bool:
    """Create the store skeleton, or check an existing one was made by the same settings.

    Returns True when an existing store is resumed.
    """
    if store_exists(url):
        found = zarr.open_group(url, mode="r").attrs.get("product_hash")
        if found != attrs["product_hash"]:
            raise StoreMismatchError(
                f"{url}: existing store was made with other settings (product hash {found}, "
                f"this run {attrs['product_hash']}); choose another output.url or delete it"
            )
        if store_exists(f"{url}/{FULL_RESOLUTION}"):
            return True
    else:
        zarr.create_group(url, attributes=dict(attrs), zarr_format=3)
    ds = skeleton(grid, chunk, shard)
    ds.to_zarr(url, group=FULL_RESOLUTION, mode="w-", compute=False, zarr_format=3, consolidated=False)
    return False


def write_tile(url: str, tile: Tile, arrays: Mapping[str, np.ndarray]) -> None:
    """Write one tile's arrays into their (shard-aligned) region of the store."""
    ys, xs = tile.slices()
    for name, values in arrays.items():
        target = zarr.open_array(url, path=f"{FULL_RESOLUTION}/{name}", mode="r+")
        target[ys, xs] = values


def write_record(url: str, tile: Tile, status: str, **fields: Any) -> None:
    """Record a tile's outcome; call only after its data is written."""
    record = {"tile": tile.id, "status": status, "time": datetime.now(UTC).isoformat(), **fields}
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(f"{path}/{RECORDS}", exist_ok=True)
    fs.pipe_file(f"{path}/{RECORDS}/{tile.id}.json", json.dumps(record).encode())


def read_record(url: str, tile: Tile) -> dict[str, Any] | None:
    """The tile's completion record, or None when absent or half-written."""
    fs, path = fsspec.core.url_to_fs(url)
    try:
        record = json.loads(fs.cat_file(f"{path}/{RECORDS}/{tile.id}.json"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def read_records(url: str) -> dict[str, dict[str, Any]]:
    """Completion records by tile id; unreadable (half-written) records count as absent."""
    fs, path = fsspec.core.url_to_fs(url)
    files = fs.glob(f"{path}/{RECORDS}/*.json")
    if not files:
        return {}
    records = {}
    for blob in fs.cat(files, on_error="omit").values():
        try:
            record = json.loads(blob)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        records[record["tile"]] = record
    return records


def consolidate(url: str) -> None:
    """Write consolidated metadata (zarr-python's v3 extension, which xarray reads)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        zarr.consolidate_metadata(url)


def update_attrs(url: str, attrs: Mapping[str, Any]) -> None:
    zarr.open_group(url, mode="r+").attrs.update(dict(attrs))


def url_for(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A URL for ``path`` on ``fs``: plain path when local, ``proto://...`` otherwise."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def base_attrs(product_hash: str, config_hash: str, lineage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "title": "DeepSalt soil salinity map",
        "product_hash": product_hash,
        "config_hash": config_hash,
        "software": "deepsalt",
        "software_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "model_lineage": json.dumps(dict(lineage), sort_keys=True, default=str),
        "Conventions": "CF-1.10",
    }
