"""The output Zarr v3 store: skeleton, product identity check and per-tile region writes.

The root group holds the map's identity (product hash, lineage) and the full-resolution variables, the
first level of the pyramid; coarser levels are its child groups (see ``deepsalt.mapping.conventions``).
The whole skeleton (metadata, coordinates, CF ``spatial_ref``) is written once, before any tile,
so workers only ever write array shards. The store's attributes record the product identity
(:mod:`deepsalt.mapping.identity`); a run with another identity is refused before it writes.
Per-tile completion records are in :mod:`deepsalt.mapping.records`, the writer's lease in
:mod:`deepsalt.mapping.lease`.

xarray, rioxarray and dask are imported by the functions that build datasets, not with the
module: the mapping actors only write tiles (zarr alone), and import this module at every start.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from deepsalt import __version__
from deepsalt.errors import OutputError
from deepsalt.mapping.conventions import level_attrs, level_dims
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.identity import differences, product_hash
from deepsalt.mapping.lease import LEASE
from deepsalt.mapping.quality import FLAG_MASKS, FLAG_MEANINGS, Quality
from deepsalt.mapping.records import RECORDS
from deepsalt.mapping.tiles import Tile

if TYPE_CHECKING:
    import xarray as xr

# where DeepSalt before the root-level layout kept the full-resolution map; such a store is not resumed
OLD_FULL_RESOLUTION_GROUP = "0"


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


class StoreMismatchError(OutputError):
    """An existing store was made from other inputs; resuming into it would mix two maps."""


def georeference(ds: xr.Dataset, grid: Grid, level: int = 0) -> xr.Dataset:
    """Attach the level's projected coordinates (on ``ds``'s dimensions, named by ``level_dims``), the
    CF ``spatial_ref`` (crs_wkt + GeoTransform) and the ``spatial:``/``proj:`` convention attributes.

    The coordinates carry CF ``axis`` and ``standard_name``: that is how rioxarray finds the spatial
    dimensions of a level whose dimensions are not called ``y``/``x``.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    y, x = level_dims(level)
    ds = ds.assign_coords({y: grid.y_coords(), x: grid.x_coords()})
    ds = ds.assign_attrs({"Conventions": "CF-1.10", **level_attrs(grid, level)})
    ds[x].attrs.update(units="m", standard_name="projection_x_coordinate", axis="X")
    ds[y].attrs.update(units="m", standard_name="projection_y_coordinate", axis="Y")
    return ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def layout(shape: tuple[int, int], chunk: int, shard: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(chunk shape, shard shape) for an array: shards hold whole chunks, small arrays one shard."""
    inner = tuple(min(chunk, n) for n in shape)
    outer = tuple(min(shard, -(-n // c) * c) for n, c in zip(shape, inner, strict=True))
    return inner, outer  # type: ignore[return-value]


def set_encoding(ds: xr.Dataset, chunk: int, shard: int) -> xr.Dataset:
    """512-px chunks inside shards, zstd, fill values (on ``var.encoding``: keeps grid_mapping)."""
    first = ds[VARIABLES[0].name]
    chunk_shape, shard_shape = layout(first.shape, chunk, shard)  # type: ignore[arg-type]
    for var in VARIABLES:
        ds[var.name].encoding = {
            "chunks": chunk_shape,
            "shards": shard_shape,
            "compressors": (ZstdCodec(level=3),),
            "fill_value": var.fill,
        }
    return ds


def skeleton(grid: Grid, chunk: int, shard: int, attrs: Mapping[str, Any]) -> xr.Dataset:
    """Lazy dataset of the full map (nothing computed) carrying coordinates, CRS, encodings and the
    root's attributes ``attrs``."""
    import dask.array as da
    import xarray as xr

    _, blocks = layout(grid.shape, chunk, shard)
    data_vars = {
        var.name: xr.Variable(
            ("y", "x"), da.full(grid.shape, var.fill, dtype=var.dtype, chunks=blocks), attrs=dict(var.attrs)
        )
        for var in VARIABLES
    }
    ds = georeference(xr.Dataset(data_vars, attrs=dict(attrs)), grid)
    return set_encoding(ds, chunk, shard)


def store_exists(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(f"{path}/zarr.json")


# What a run itself puts in a store folder before its skeleton (lease, records, lease temp files).
_OWN_ENTRIES = (LEASE, RECORDS)


@contextlib.contextmanager
def own_entries_quiet() -> Iterator[None]:
    """Silence zarr's warning about the run's own lease and tile records at the store's root.

    zarr warns about every object in a group that is not a Zarr node whenever it lists the group
    (opening the root without consolidated metadata, consolidating). Those two sit at the root by
    design, so that warning tells a user nothing; warnings about anything else still show.
    """
    names = "|".join(re.escape(name) for name in _OWN_ENTRIES)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=rf"Object at ({names})\b.*not recognized as a component", category=UserWarning
        )
        yield


def check_output(url: str) -> None:
    """Refuse an output that is a file, or a folder holding something other than a DeepSalt map.

    ``info`` (not ``exists``/``isfile``, which some filesystems answer False on any error) lets an
    unreachable object store or a permission problem surface here, before any work.
    """
    fs, path = fsspec.core.url_to_fs(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return
    if info["type"] != "directory":
        raise OutputError(url, "exists and is a file, not a map store; choose another output.url")
    if store_exists(url):
        return
    foreign = sorted(
        name
        for name in (posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))
        if not name.startswith(_OWN_ENTRIES)
    )
    if foreign:
        raise OutputError(
            url,
            f"exists and is not a DeepSalt map (it holds {', '.join(foreign[:3])}); "
            "choose another output.url or an empty folder",
        )


def create_or_check(
    url: str, grid: Grid, chunk: int, shard: int, attrs: Mapping[str, Any], restart: bool = False
) -> bool:
    """Create the store skeleton, or check an existing one holds the same product in this layout.

    ``attrs`` carries ``product_identity`` (field → value). A store with another identity, or one
    written in the older layout (full resolution in group ``0``), is refused with what differs,
    unless ``restart`` discards it. Returns True when an existing store is resumed. Call while
    holding the store's lease.
    """
    if store_exists(url):
        stored = zarr.open_group(url, mode="r").attrs.asdict()
        changed = differences(stored.get("product_identity") or {}, attrs["product_identity"])
        if _has_old_layout(url):
            changed.append(
                f"layout: store keeps its full-resolution map in group '{OLD_FULL_RESOLUTION_GROUP}' "
                "(written by an older DeepSalt), this version keeps it at the store's root"
            )
        if changed and not restart:
            raise StoreMismatchError(
                url,
                "this store was made from other inputs, so resuming would mix two maps: "
                + "; ".join(changed)
                + ". Map into another output.url, or rerun with --restart to discard this store",
            )
        if changed:
            clear(url)
        elif store_exists(f"{url}/{VARIABLES[0].name}"):
            return True
    # "a": the root group may already exist (a first attempt stopped before its arrays were written)
    skeleton(grid, chunk, shard, attrs).to_zarr(
        url, mode="a", compute=False, zarr_format=3, consolidated=False
    )
    return False


def _has_old_layout(url: str) -> bool:
    """Whether the store keeps its full-resolution arrays in group ``0`` instead of at its root."""
    name = VARIABLES[0].name
    return store_exists(f"{url}/{OLD_FULL_RESOLUTION_GROUP}/{name}") and not store_exists(f"{url}/{name}")


def clear(url: str) -> None:
    """Delete a store's content, keeping the lease of the run that clears it."""
    fs, path = fsspec.core.url_to_fs(url)
    for entry in fs.ls(path, detail=False):
        if posixpath.basename(entry.rstrip("/")) != LEASE:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(entry, recursive=True)


def write_tile(url: str, tile: Tile, arrays: Mapping[str, np.ndarray]) -> None:
    """Write one tile's arrays into their (shard-aligned) region of the store."""
    ys, xs = tile.slices()
    for name, values in arrays.items():
        target = zarr.open_array(url, path=name, mode="r+")
        target[ys, xs] = values


def clear_tile(url: str, tile: Tile) -> None:
    """Put the fill values back into a tile's region (a tile whose scenes left the catalogue)."""
    shape = (tile.height, tile.width)
    write_tile(url, tile, {var.name: np.full(shape, var.fill, dtype=var.dtype) for var in VARIABLES})


def consolidate(url: str) -> None:
    """Write consolidated metadata (zarr-python's v3 extension, which xarray reads)."""
    with own_entries_quiet(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        zarr.consolidate_metadata(url)


def update_attrs(url: str, attrs: Mapping[str, Any]) -> None:
    zarr.open_group(url, mode="r+").attrs.update(dict(attrs))


def base_attrs(identity: Mapping[str, str], config_hash: str, lineage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "title": "DeepSalt soil salinity map",
        "product_hash": product_hash(identity),
        "product_identity": dict(identity),
        "config_hash": config_hash,
        "software": "deepsalt",
        "software_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "model_lineage": json.dumps(dict(lineage), sort_keys=True, default=str),
        "Conventions": "CF-1.10",
    }
