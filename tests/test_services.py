"""The shared fixtures are real services: prove each one does its job."""

from __future__ import annotations

import copy

import pytest


def test_s3_roundtrip_through_s3fs(s3):
    fs = s3.filesystem()
    fs.pipe(f"{s3.bucket}/hello/world.bin", b"salt\x00flats")
    assert fs.cat(f"{s3.bucket}/hello/world.bin") == b"salt\x00flats"
    assert fs.ls(f"{s3.bucket}/hello") == [f"{s3.bucket}/hello/world.bin"]


def test_s3_reachable_through_fsspec_urls(s3):
    import fsspec

    with fsspec.open(s3.url("a/b.txt"), "w") as f:
        f.write("ECe")
    with fsspec.open(s3.url("a/b.txt"), "r") as f:
        assert f.read() == "ECe"


def test_ray_task_runs_on_local_cluster(ray_cluster):
    import ray

    assert ray_cluster["CPU"] == 2
    assert ray_cluster["GPU"] == 2  # fake GPUs: scheduling paths run on CPU

    @ray.remote(num_cpus=0.5, num_gpus=1)
    def square(x: int) -> tuple[int, list[int]]:
        return x * x, ray.get_gpu_ids()

    value, gpu_ids = ray.get(square.remote(7))
    assert value == 49
    assert len(gpu_ids) == 1


COLLECTION = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "ENMAP_HSI_L2A",
    "description": "test collection",
    "license": "proprietary",
    "extent": {
        "spatial": {"bbox": [[-180, -90, 180, 90]]},
        "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
    },
    "links": [],
}


def _item(item_id: str, lon: float, lat: float, when: str) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "ENMAP_HSI_L2A",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]
            ],
        },
        "bbox": [lon, lat, lon + 0.1, lat + 0.1],
        "properties": {"datetime": when},
        "assets": {},
        "links": [],
    }


@pytest.mark.parametrize(
    "bbox, expected", [((10.0, 50.0, 11.0, 51.0), {"in-a", "in-b"}), ((0, 0, 1, 1), set())]
)
def test_stac_search_returns_exactly_the_items_in_bbox(stac_api_factory, bbox, expected):
    from pystac_client import Client

    items = [
        _item("in-a", 10.2, 50.2, "2024-06-01T10:00:00Z"),
        _item("in-b", 10.6, 50.7, "2024-07-01T10:00:00Z"),
        _item("out", 20.0, 40.0, "2024-06-01T10:00:00Z"),
    ]
    root = stac_api_factory(copy.deepcopy(COLLECTION), items)
    client = Client.open(root)
    found = {i.id for i in client.search(collections=["ENMAP_HSI_L2A"], bbox=bbox).items()}
    assert found == expected


def test_stac_search_filters_by_datetime(stac_api_factory):
    from pystac_client import Client

    items = [
        _item("june", 10.2, 50.2, "2024-06-01T10:00:00Z"),
        _item("july", 10.6, 50.7, "2024-07-15T10:00:00Z"),
    ]
    root = stac_api_factory(copy.deepcopy(COLLECTION), items)
    search = Client.open(root).search(
        collections=["ENMAP_HSI_L2A"], bbox=(10, 50, 11, 51), datetime="2024-07-01/2024-07-31"
    )
    assert [i.id for i in search.items()] == ["july"]
