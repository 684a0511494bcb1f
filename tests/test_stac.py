"""deepsalt.io.stac against a real STAC API server (rustac) holding DLR's real ENMAP_HSI_L2A item
and copies of it moved in place, time and cloud cover."""

from __future__ import annotations

import copy
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepsalt.errors import InputDataError
from deepsalt.io.stac import scene_ref, search_scenes
from tests.conftest import FIXTURES
from tests.support.services import free_port

REAL_ITEM = json.loads(next((FIXTURES / "enmap").glob("*.stac_item.json")).read_text())
COLLECTION = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "ENMAP_HSI_L2A",
    "description": "EnMAP HSI L2A (test copy)",
    "license": "proprietary",
    "extent": {
        "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
        "temporal": {"interval": [["2022-01-01T00:00:00Z", None]]},
    },
    "links": [],
}
REAL_BBOX = REAL_ITEM["bbox"]  # Mozambique/South Africa border, 2024-06-30


def moved(index: int, lon_shift: float, when: datetime, cloud: float) -> dict[str, Any]:
    """The real item moved by ``lon_shift`` degrees, re-dated and with another cloud cover."""
    item = copy.deepcopy(REAL_ITEM)
    item["id"] = f"{REAL_ITEM['id']}-copy{index:02d}"
    west, south, east, north = item["bbox"]
    item["bbox"] = [west + lon_shift, south, east + lon_shift, north]
    item["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[west + lon_shift, south], [east + lon_shift, south], [east + lon_shift, north],
                         [west + lon_shift, north], [west + lon_shift, south]]],
    }  # fmt: skip
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    item["properties"].update({"datetime": stamp, "start_datetime": stamp, "end_datetime": stamp})
    item["properties"]["eo:cloud_cover"] = str(cloud)  # DLR publishes it as a string
    return item


def copies() -> list[dict[str, Any]]:
    start = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    return [
        moved(
            i,
            lon_shift=0.0 if i % 2 == 0 else 20.0,
            when=start + timedelta(days=30 * i),
            cloud=(i * 17) % 100,
        )
        for i in range(14)
    ]


def test_real_item_read_into_scene_ref():
    scene = scene_ref(REAL_ITEM)
    assert scene.id == "ENMAP01-____L2A-DT0000080454_20240630T082045Z_001_V010402_20240701T122237Z"
    assert scene.spectral_href.endswith(f"{scene.id}-SPECTRAL_IMAGE_COG.TIF")
    assert scene.spectral_href.startswith("https://download.geoservice.dlr.de/ENMAP/files/L2A/2024/06/30/")
    assert scene.metadata_href.endswith(f"{scene.id}-METADATA.XML")
    assert scene.quality_hrefs["cloud"].endswith("-QL_QUALITY_CLOUD_COG.TIF")
    assert scene.quality_hrefs["cloud_shadow"].endswith("-QL_QUALITY_CLOUDSHADOW_COG.TIF")
    assert set(scene.quality_hrefs) == {
        "cloud",
        "cloud_shadow",
        "haze",
        "cirrus",
        "snow",
        "classes",
        "testflags",
    }
    assert scene.epsg == 32736
    assert scene.cloud_cover == 0.0
    assert scene.datetime == datetime(2024, 6, 30, 8, 20, 45, tzinfo=UTC)
    assert scene.bands is not None and scene.bands.n_bands == 224
    assert scene.bands.wavelength[0] == pytest.approx(418.416)
    assert scene.bands.wavelength[-1] == pytest.approx(2445.53, abs=1.0)


def test_item_without_spectral_image_is_an_error():
    item = copy.deepcopy(REAL_ITEM)
    item["assets"] = {k: v for k, v in item["assets"].items() if k != "image"}
    with pytest.raises(InputDataError, match=r"DT0000080454.*: STAC item has no SPECTRAL_IMAGE asset"):
        scene_ref(item)


def test_search_finds_the_real_item(stac_api_factory):
    api = stac_api_factory(COLLECTION, [REAL_ITEM])
    found = search_scenes(api, bbox=[32.7, -25.1, 32.8, -25.0], datetime="2024-06-01/2024-07-31")
    assert [s.id for s in found] == [REAL_ITEM["id"]]
    assert found[0].bands.n_bands == 224
    assert found[0].spectral_href == REAL_ITEM["assets"]["image"]["href"]
    assert search_scenes(api, bbox=[32.7, -25.1, 32.8, -25.0], datetime="2023-01-01/2023-12-31") == []
    assert search_scenes(api, bbox=[10.0, 50.0, 11.0, 51.0]) == []


def test_search_bbox_dates_clouds_across_pages(stac_api_factory):
    items = [REAL_ITEM, *copies()]
    api = stac_api_factory(COLLECTION, items)
    bbox = [32.6, -25.2, 32.9, -24.9]  # the real footprint, not the copies shifted 20° east
    window = "2024-03-01T00:00:00Z/2024-09-30T23:59:59Z"
    found = search_scenes(api, bbox=bbox, datetime=window, max_cloud_cover=50, page_size=2)
    lo, hi = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 9, 30, 23, 59, 59, tzinfo=UTC)
    expected = {
        item["id"]
        for item in items
        if item["bbox"][0] < 33.0
        and lo <= datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00")) <= hi
        and float(item["properties"]["eo:cloud_cover"]) <= 50
    }
    assert len(expected) >= 3  # more than one page of 2
    assert {s.id for s in found} == expected
    assert all(s.cloud_cover <= 50 for s in found)
    # the server does page (so the results above came from following "next" links)
    with urllib.request.urlopen(f"{api}/search?limit=2") as response:
        first_page = json.load(response)
    assert len(first_page["features"]) == 2
    assert any(link["rel"] == "next" for link in first_page["links"])
    every_page = search_scenes(api, bbox=[-180, -90, 180, 90], page_size=4)
    assert len(every_page) == len(items)


def test_search_against_a_dead_server_names_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InputDataError, match=rf"{url}: STAC search failed"):
        search_scenes(url, bbox=[0, 0, 1, 1])
