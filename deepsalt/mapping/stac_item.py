"""The STAC item describing a map, with the Zarr store as its data asset."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fsspec
import pystac

from deepsalt import __version__
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.grid import Grid

PROJECTION_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def default_item_url(store_url: str) -> str:
    return f"{store_url.removesuffix('.zarr')}.stac-item.json"


def _interval(value: str | None) -> tuple[datetime | None, datetime | None]:
    if not value:
        return None, None
    start, _, end = value.partition("/")
    parse = lambda s: None if s in ("", "..") else datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return parse(start), parse(end or start)


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
            "proj:wkt2": grid.crs.to_wkt(),
            "proj:shape": list(grid.shape),
            "proj:transform": list(grid.transform)[:6],
            "deepsalt:version": __version__,
            "deepsalt:config_hash": config.config_hash(),
            "deepsalt:product_hash": product_hash,
            "deepsalt:model_lineage": dict(lineage),
        },
        stac_extensions=[PROJECTION_EXT],
    )
    authority = grid.crs.to_authority()
    if authority:
        item.properties["proj:code"] = ":".join(authority)
    item.add_asset(
        "zarr",
        pystac.Asset(
            href=store_url,
            media_type="application/vnd+zarr; version=3",
            roles=["data"],
            title="ECe map (ece, ece_std, domain_score, quality) with pyramid/<k> overviews",
            extra_fields={
                "xarray:open_kwargs": {"engine": "zarr", "consolidated": True, "decode_coords": "all"}
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
