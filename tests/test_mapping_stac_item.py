"""The map's STAC item validates, offline, against STAC 1.1 and every extension it declares."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pystac
import pytest
from pystac.validation import validate_dict
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from referencing import Registry, Resource

from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.stac_item import CLASSIFICATION_EXT, build_item
from tests.support.small_map import GRID

SCHEMAS = Path(__file__).parent / "fixtures" / "stac_schemas"
EXTENSION_SCHEMAS = {
    schema["$id"].rstrip("#"): schema
    for schema in (json.loads(path.read_text()) for path in SCHEMAS.glob("*.json"))
}
STORE = "s3://bucket/maps/demo.zarr"


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's validator with the STAC core schemas it ships and ours; it never fetches one."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache.update(copy.deepcopy(EXTENSION_SCHEMAS))

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri.rstrip("#") not in self.schema_cache:
            raise AssertionError(f"validation would fetch {schema_uri}: ship it in {SCHEMAS}")
        return super()._get_schema(schema_uri.rstrip("#"))


@pytest.fixture(scope="module")
def item() -> dict[str, Any]:
    config = MapConfig.model_validate(
        {
            "region": {"bounds": GRID.bounds, "datetime": "2024-05-01/2024-09-30"},
            "inputs": {"stac_url": "http://stac", "covariates_url": "/cov"},
            "model": {"student_url": "/student"},
            "output": {"url": STORE},
        }
    )
    return build_item(STORE, GRID, config, {"checkpoint_id": "x"}, "p" * 16).to_dict(include_self_link=False)


def test_item_validates_against_core_and_every_declared_extension(item: dict[str, Any]):
    validated = validate_dict(item, validator=OfflineValidator())
    assert set(item["stac_extensions"]) == set(EXTENSION_SCHEMAS)
    assert set(EXTENSION_SCHEMAS) <= set(validated)
    assert any("item-spec" in uri for uri in validated) and item["stac_version"] == "1.1.0"


def test_every_prefixed_field_belongs_to_a_declared_extension(item: dict[str, Any]):
    def prefixes(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = {key.split(":")[0] for key in node if ":" in key}
            return own.union(*(prefixes(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(prefixes(v) for v in node))
        return set()

    names = {"proj": "projection"}
    used = prefixes({k: v for k, v in item.items() if k != "links"})
    assert used == {"proj", "classification", "processing", "zarr"}
    for prefix in used:
        assert any(f"/{names.get(prefix, prefix)}/" in uri for uri in item["stac_extensions"]), prefix


def test_invalid_fields_fail_validation(item: dict[str, Any]):
    broken = copy.deepcopy(item)
    broken["properties"]["proj:shape"] = [150]
    with pytest.raises(pystac.STACValidationError, match="projection"):
        validate_dict(broken, validator=OfflineValidator())
    broken = copy.deepcopy(item)
    broken["assets"]["data"]["zarr:node_type"] = "folder"
    with pytest.raises(pystac.STACValidationError, match="zarr"):
        validate_dict(broken, validator=OfflineValidator())


def test_quality_bitfields_follow_the_classification_schema_and_decode_the_flags(item: dict[str, Any]):
    bands = {b["name"]: b for b in item["assets"]["data"]["bands"]}
    bitfields = bands["quality"]["classification:bitfields"]
    # STAC 1.1 bands are not reached by the extension's own schema: check them against its definition
    registry = Registry().with_resource(
        CLASSIFICATION_EXT, Resource.from_contents(EXTENSION_SCHEMAS[CLASSIFICATION_EXT])
    )
    validator = jsonschema.Draft7Validator(
        {"$ref": f"{CLASSIFICATION_EXT}#/definitions/fields"}, registry=registry
    )
    validator.validate({"classification:bitfields": bitfields})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"classification:bitfields": [{"offset": -1, "length": 1, "classes": []}]})
    value = int(Quality.CLOUD | Quality.WATER)
    set_flags = {
        field["name"] for field in bitfields if (value >> field["offset"]) & ((1 << field["length"]) - 1) == 1
    }
    assert set_flags == {"cloud", "water"}


def test_asset_is_the_multiscales_store_with_units_nodata_and_types(item: dict[str, Any]):
    parsed = pystac.Item.from_dict(item)
    asset = parsed.assets["data"]
    assert asset.href == STORE
    assert asset.media_type == "application/vnd.zarr; version=3; profile=multiscales"
    assert asset.extra_fields["zarr:node_type"] == "group" and asset.extra_fields["zarr:zarr_format"] == 3
    store_links = parsed.get_links("store")
    assert [link.href for link in store_links] == [STORE]
    assert store_links[0].media_type == "application/vnd.zarr; version=3"
    bands = {b["name"]: b for b in asset.extra_fields["bands"]}
    assert bands["ece"] | {"description": ""} == {
        "name": "ece",
        "description": "",
        "unit": "dS/m",
        "nodata": "nan",
        "data_type": "float32",
    }
    assert bands["ece_std"]["unit"] == "dS/m" and bands["domain_score"]["data_type"] == "float32"
    assert bands["quality"]["data_type"] == "uint8" and "nodata" not in bands["quality"]
    assert parsed.properties["proj:code"] == "EPSG:5070" and parsed.properties["proj:shape"] == [150, 200]
    assert parsed.properties["proj:transform"] == list(GRID.transform)[:6]
    assert parsed.properties["start_datetime"].startswith("2024-05-01")
    west, south, east, north = parsed.bbox
    assert west < east and south < north and -130 < west < -60
    assert "checkpoint_id x" in parsed.properties["processing:lineage"]
    assert f"product hash {'p' * 16}" in parsed.properties["processing:lineage"]
