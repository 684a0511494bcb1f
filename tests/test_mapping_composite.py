"""Compositing checks its evidence: a scene whose values are unusable does not win a pixel.

Two extra scenes cover scene A's ground and rank before it (less cloud): one whose file is all
NaN, one written with reflectance ×100. Each tile is mapped in process by the real
:class:`TileMapper` from real files; the result must equal the map made without those scenes,
and the tile must name them as not used. A scene with a few bad pixels is still used, and those pixels come from the next scene.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from deepsalt.io.covariates import covariate_urls
from deepsalt.io.stac import scene_ref
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.predictor import InferenceSettings
from deepsalt.mapping.tiles import Tile, plan_tiles
from deepsalt.mapping.worker import MappingJob, TileMapper
from tests.support.mapping_world import (
    GRID_CRS,
    PREDICTOR,
    SCENES,
    SceneSpec,
    World,
    build_world,
    map_config,
    write_scene,
)

SAME_GROUND_AS_A = SCENES["SCENE_A"]


def write_float_scene(world: World, scene_id: str, cloud_cover: float, values) -> dict:
    """A scene over A's ground whose spectral file is float32 ``values(stored int16 values)``."""
    spec = SceneSpec(SAME_GROUND_AS_A.dc, SAME_GROUND_AS_A.dr, cloud_cover, "2024-06-15T10:00:00Z")
    item = write_scene(world.root, scene_id, spec)
    path = world.scene_file(scene_id, "SPECTRAL_IMAGE")
    with rasterio.open(path) as src:
        profile, stored = src.profile, src.read().astype(np.float32)
    profile.update(dtype="float32")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values(stored).astype(np.float32))
    return item


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("composite"))


def mapper(world: World, items: list[dict]) -> tuple[TileMapper, list[Tile]]:
    config = map_config(world, "http://stac.invalid", str(world.root / "unused.zarr"))
    grid = Grid.from_config(config.grid, config.region)
    scenes = {item["id"]: scene_ref(item) for item in items}
    plan = plan_tiles(grid, config.grid.shard, 1, {s.id: tuple(s.bbox) for s in scenes.values()})
    job = MappingJob(
        store_url=config.output.url,
        grid=grid,
        scenes=scenes,
        covariate_urls=covariate_urls(str(world.covariates)),
        survey_url=None,
        predictor=PREDICTOR,
        student_url=str(world.student),
        block=config.model.block,
        inference=InferenceSettings(batch_pixels=config.model.batch_pixels),
        retries=0,
    )
    assert grid.crs.to_string() == GRID_CRS
    return TileMapper(job), list(plan.tiles)


def mapped(world: World, items: list[dict]) -> dict[str, tuple[dict[str, np.ndarray], tuple[str, ...]]]:
    tile_mapper, tiles = mapper(world, items)
    out = {}
    for tile in tiles:
        arrays, _, rejected = tile_mapper.map_tile(tile)
        out[tile.id] = (arrays, rejected)
    return out


def test_unusable_scenes_are_skipped_and_named_and_the_map_is_as_without_them(world: World):
    all_nan = write_float_scene(world, "SCENE_ALL_NAN", 1.0, lambda stored: np.full_like(stored, np.nan))
    times_100 = write_float_scene(world, "SCENE_X100", 2.0, lambda stored: stored * 100.0)

    clean = mapped(world, world.items)
    with_bad = mapped(world, [all_nan, times_100, *world.items])

    covered = [tile for tile, (_, rejected) in with_bad.items() if rejected]
    assert covered, "the bad scenes cover no tile"
    for tile, (arrays, rejected) in with_bad.items():
        if tile in covered:
            assert set(rejected) == {"SCENE_ALL_NAN", "SCENE_X100"}
        for name, values in arrays.items():
            np.testing.assert_array_equal(values, clean[tile][0][name], err_msg=f"{tile} {name}")
    predicted = sum(
        int(np.isfinite(arrays["ece"]).sum()) for tile, (arrays, _) in with_bad.items() if tile in covered
    )
    assert predicted > 1000  # the pixels went to scenes A and B, not to the flags


def test_a_scene_with_a_few_bad_pixels_is_still_used(world: World):
    def few_holes(stored: np.ndarray) -> np.ndarray:
        holed = stored.copy()
        holed[:, ::10, :] = np.nan  # every tenth row of the scene
        return holed + 500.0  # 0.05 brighter than A: tells which scene a pixel came from

    holed = write_float_scene(world, "SCENE_HOLES", 1.0, few_holes)
    clean = mapped(world, world.items)
    with_holed = mapped(world, [holed, *world.items])
    differs = [
        tile
        for tile, (arrays, rejected) in with_holed.items()
        if not rejected and not np.array_equal(arrays["ece"], clean[tile][0]["ece"], equal_nan=True)
    ]
    assert differs  # its clear pixels won where it ranks first
    assert all(not rejected for _, rejected in with_holed.values())
    for tile in differs:  # its holes were filled from A (the same ECe as the clean map), not flagged
        holes = ~np.isfinite(with_holed[tile][0]["ece"]) & np.isfinite(clean[tile][0]["ece"])
        assert not holes.any()
