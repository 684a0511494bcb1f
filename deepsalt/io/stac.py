"""Find EnMAP L2A scenes in a STAC API (DLR's catalogue or any other) with pystac-client.

Cloud cover is filtered here, on the client: not every STAC API implements the query/filter
extensions (rustac's server ignores them), and DLR publishes ``eo:cloud_cover`` as a string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime as Datetime
from typing import Any

from pystac_client import Client
from pystac_client.exceptions import APIError

from deepsalt.errors import InputDataError
from deepsalt.io.formats import SceneFormat
from deepsalt.io.layout import file_role
from deepsalt.logs import get_logger
from deepsalt.spectra import BandTable

log = get_logger(__name__)

# Asset keys that name the parts of an item when the href does not follow DLR's file names.
_KEY_ROLES = {"spectral_image": "spectral", "image": "spectral", "metadata": "metadata"}


@dataclass(frozen=True)
class SceneRef:
    """What a reader needs to know about one scene, without opening it."""

    id: str
    datetime: Datetime | None
    cloud_cover: float | None
    bbox: tuple[float, float, float, float]
    epsg: int | None
    spectral_href: str
    metadata_href: str | None
    quality_hrefs: dict[str, str] = field(default_factory=dict)
    bands: BandTable | None = None
    format: SceneFormat = SceneFormat.ENMAP_L2A  # which reader opens spectral_href


def search_scenes(
    api_url: str,
    bbox: Sequence[float],
    datetime: str | None = None,
    max_cloud_cover: float | None = None,
    collection: str = "ENMAP_HSI_L2A",
    page_size: int = 100,
) -> list[SceneRef]:
    """Items of ``collection`` intersecting ``bbox`` (lon/lat) in ``datetime`` ("a/b" range), all pages.

    Items whose cloud cover exceeds ``max_cloud_cover`` (percent) or is not stated are dropped
    when a maximum is given.
    """
    try:
        client = Client.open(api_url)
        search = client.search(collections=[collection], bbox=list(bbox), datetime=datetime, limit=page_size)
        items = list(search.items_as_dicts())
    except APIError as exc:
        detail = str(exc).strip() or f"HTTP {getattr(exc, 'status_code', None) or 'error'}"
        raise InputDataError(api_url, f"STAC search failed: {detail}") from exc
    scenes = [scene_ref(item) for item in items]
    kept = [s for s in scenes if _clear_enough(s, max_cloud_cover)]
    log.info(
        "STAC search",
        extra={"api": api_url, "collection": collection, "found": len(scenes), "kept": len(kept)},
    )
    return kept


def scene_ref(item: dict[str, Any]) -> SceneRef:
    """Read one STAC item (as a dict) into a SceneRef."""
    item_id = str(item.get("id", "<STAC item>"))
    props = item.get("properties", {})
    hrefs: dict[str, str] = {}
    epsg = _epsg(props)
    for key, asset in item.get("assets", {}).items():
        role = file_role(asset.get("href", "")) or _KEY_ROLES.get(key.lower())
        if role and role not in hrefs:
            hrefs[role] = asset["href"]
            if role == "spectral":
                epsg = _epsg(asset) or epsg
    if "spectral" not in hrefs:
        raise InputDataError(item_id, "STAC item has no SPECTRAL_IMAGE asset")
    try:
        bands: BandTable | None = BandTable.from_stac_item(item)
    except InputDataError:
        bands = None
    return SceneRef(
        id=item_id,
        datetime=_parse_datetime(props.get("datetime") or props.get("start_datetime")),
        cloud_cover=_float(props.get("eo:cloud_cover")),
        bbox=tuple(item["bbox"]),
        epsg=epsg,
        spectral_href=hrefs.pop("spectral"),
        metadata_href=hrefs.pop("metadata", None),
        quality_hrefs=hrefs,
        bands=bands,
    )


def _clear_enough(scene: SceneRef, max_cloud_cover: float | None) -> bool:
    if max_cloud_cover is None:
        return True
    return scene.cloud_cover is not None and scene.cloud_cover <= max_cloud_cover


def _epsg(mapping: dict[str, Any]) -> int | None:
    if mapping.get("proj:epsg") is not None:
        return int(mapping["proj:epsg"])
    code = str(mapping.get("proj:code") or "")
    return int(code.split(":")[1]) if code.upper().startswith("EPSG:") else None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _parse_datetime(value: str | None) -> Datetime | None:
    return None if value is None else Datetime.fromisoformat(value.replace("Z", "+00:00"))
