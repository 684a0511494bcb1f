"""The STAC item describing a map, with the Zarr store as its data asset.

It follows the STAC best practices for Zarr: the asset points at the store's root group (the
``multiscales`` group, hence the ``profile=multiscales`` media type), a ``store`` link names the
store, and the variables are the asset's ``bands`` with unit, nodata and data type (the quality
flags described by classification bit fields). Every prefixed field belongs to an extension the
item declares.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fsspec
import pystac
from pystac.extensions.classification import Bitfield, Classification
from pystac.extensions.projection import ProjectionExtension

from deepsalt import __version__
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import FLAG_DESCRIPTIONS, Quality
from deepsalt.mapping.store import VARIABLES, Variable

CLASSIFICATION_EXT = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
ZARR_EXT = "https://stac-extensions.github.io/zarr/v1.1.0/schema.json"
ZARR_MEDIA_TYPE = "application/vnd.zarr; version=3"
ZARR_MULTISCALES_MEDIA_TYPE = f"{ZARR_MEDIA_TYPE}; profile=multiscales"
DATA_ASSET = "data"


def default_item_url(store_url: str) -> str:
    return f"{store_url.removesuffix('.zarr')}.stac-item.json"


def _interval(value: str | None) -> tuple[datetime | None, datetime | None]:
    if not value:
        return None, None
    start, _, end = value.partition("/")
    parse = lambda s: None if s in ("", "..") else datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return parse(start), parse(end or start)


def quality_bitfields() -> list[dict[str, Any]]:
    """One single-bit field per quality flag, as the classification extension describes bit masks."""
    fields = []
    for flag in Quality:
        name = str(flag.name).lower()
        fields.append(
            Bitfield.create(
                offset=int(flag).bit_length() - 1,
                length=1,
                name=name,
                description=FLAG_DESCRIPTIONS[flag],
                classes=[
                    Classification.create(value=0, name=f"not_{name}"),
                    Classification.create(value=1, name=name, description=FLAG_DESCRIPTIONS[flag]),
                ],
            ).to_dict()
        )
    return fields


def band(variable: Variable) -> dict[str, Any]:
    """A STAC band for a store variable: its unit, nodata and data type, from the store's own table."""
    entry: dict[str, Any] = {
        "name": variable.name,
        "description": variable.attrs["long_name"],
        "data_type": variable.dtype,
    }
    if "units" in variable.attrs:
        entry["unit"] = variable.attrs["units"]
    if isinstance(variable.fill, float) and math.isnan(variable.fill):
        entry["nodata"] = "nan"
    if variable.name == "quality":
        entry["classification:bitfields"] = quality_bitfields()
    return entry


def _lineage(config: MapConfig, lineage: Mapping[str, Any], product_hash: str) -> str:
    models = ", ".join(f"{key} {value}" for key, value in sorted(lineage.items()))
    return (
        f"ECe predicted per pixel from EnMAP L2A reflectance and soil/climate covariates by the DeepSalt "
        f"student ({models}); config hash {config.config_hash()}, product hash {product_hash}"
    )


def build_item(
    store_url: str, grid: Grid, config: MapConfig, lineage: Mapping[str, Any], product_hash: str
) -> pystac.Item:
    west, south, east, north = grid.bounds_lonlat()
    start, end = _interval(config.region.datetime)
    created = datetime.now(UTC)
    item = pystac.Item(
        id=store_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr"),
        geometry={
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        bbox=[west, south, east, north],
        datetime=None if start else created,
        start_datetime=start.replace(tzinfo=start.tzinfo or UTC) if start else None,
        end_datetime=end.replace(tzinfo=end.tzinfo or UTC) if end else None,
        properties={
            "created": created.isoformat(),
            "processing:level": "L4",
            "processing:software": {"deepsalt": __version__},
            "processing:lineage": _lineage(config, lineage, product_hash),
        },
        stac_extensions=[CLASSIFICATION_EXT, PROCESSING_EXT, ZARR_EXT],
    )
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    authority = grid.crs.to_authority()
    projection.apply(
        code=":".join(authority) if authority else None,
        wkt2=None if authority else grid.crs.to_wkt(),
        shape=list(grid.shape),
        transform=list(grid.transform)[:6],
        bbox=list(grid.bounds),
    )
    item.add_link(pystac.Link(rel="store", target=store_url, media_type=ZARR_MEDIA_TYPE, title="Zarr store"))
    item.add_asset(
        DATA_ASSET,
        pystac.Asset(
            href=store_url,
            media_type=ZARR_MULTISCALES_MEDIA_TYPE,
            roles=["data"],
            title="Soil salinity map: full resolution at the root, its coarser levels 1, 2, ... as child groups",
            extra_fields={
                "zarr:consolidated": True,
                "zarr:node_type": "group",
                "zarr:zarr_format": 3,
                "bands": [band(variable) for variable in VARIABLES],
            },
        ),
    )
    return item


def write_item(
    item_url: str,
    store_url: str,
    grid: Grid,
    config: MapConfig,
    lineage: Mapping[str, Any],
    product_hash: str,
) -> None:
    item = build_item(store_url, grid, config, lineage, product_hash)
    with fsspec.open(item_url, "w") as f:
        json.dump(item.to_dict(include_self_link=False), f, indent=1, default=str)
