"""Floors and own-code costs of one production-shaped tile, in one process (no Ray, no dask).

    .venv/bin/python -m benchmarks.tile_floors            # writes benchmarks/tile_floors.json

The short form of the mapping family (:mod:`benchmarks.mapping`) for a machine that cannot give
the full run its quarter hour: the production world's first tile of P (1024², all its scenes),
mapped once by the actors' ``TileMapper`` with the predictor's calls timed apart, beside the
physical floors (a) decode, (b) model and (c) write of exactly that tile. It measures no Ray
start-up, scaling, memory or dask figure; those need ``make bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import floors, machine
from benchmarks import mapping as bm
from benchmarks import workspace as ws
from deepsalt.logs import setup_logging

HERE = Path(__file__).parent


@contextlib.contextmanager
def first_tile_of_p(workdir: Path, compile_forward: bool) -> Iterator[tuple[Any, Any, ws.Workspace]]:
    """(case, tile, workspace): P's first tile (1024², all its scenes) with the page cache warm,
    inside the STAC API its scenes are read through."""
    from deepsalt.synth import load_region

    # The world and student ``make bench`` made (training again would re-read the whole world).
    space = ws.Workspace(
        workdir, str(workdir / "regions" / "production" / "demo"), str(workdir / "runs" / "production")
    )
    if not Path(space.student_url, "meta.json").exists():
        raise SystemExit(f"no student under {space.student_url}: run make bench once first")
    manifest = load_region(space.region_url)
    geometry = bm.FULL
    rows, cols = geometry.production
    double = bm.centred_tile_bounds(bm.region_centre(manifest.bbox_lonlat), (rows, 2 * cols), geometry.tile)
    production = bm.north_west(double, (rows, cols), (rows, 2 * cols))
    model = {"student_url": space.student_url, "compile": "always" if compile_forward else "never"}
    with ws.stac_api(space.region_url) as stac_url:
        inputs = bm.Inputs(
            stac_url, manifest.href("covariates"), manifest.href(manifest.files.survey["export"]), model
        )
        case = bm.map_case("production", production, inputs, geometry, workdir / "maps")
        tile = case.tiles[0]
        bm.warm_page_cache([case.scenes[s] for s in tile.scenes])
        yield case, tile, space


def measure(workdir: Path, compile_forward: bool) -> dict[str, Any]:
    """Map P's first tile once, timing the read path and the predictor apart, then the floors."""
    from pyinstrument import Profiler

    from deepsalt.mapping.worker import TileMapper

    geometry = bm.FULL
    with first_tile_of_p(workdir, compile_forward) as (case, tile, space):
        gemm = floors.gemm_flops_per_s()
        flops = floors.student_flops_per_pixel(space.student_url)
        mapper = TileMapper(bm.mapping_job(case))
        recorder = bm.RecordingCache()
        mapper.cache = recorder
        predict_s = 0.0
        plain_predict = mapper._predict

        def timed_predict(*arrays: Any) -> dict[str, Any]:
            nonlocal predict_s
            start = time.perf_counter()
            out = plain_predict(*arrays)
            predict_s += time.perf_counter() - start
            return out

        mapper._predict = timed_predict
        profiler = Profiler(interval=0.01)  # coarse sampling: the overhead stays well under 1 %
        start = time.perf_counter()
        profiler.start()
        arrays, predicted, _ = mapper.map_tile(tile)
        session = profiler.stop()
        tile_s = time.perf_counter() - start
        stored = floors.stored_tiles(set().union(*recorder.sources.values()))
        decode_s = sum(floors.decode_seconds(stored).values())
        write_s = sum(floors.write_seconds([arrays], geometry.chunk, workdir / "write-floor"))
        pixels = tile.n_pixels
        model_floor_s = flops * predicted / gemm
        floor_s = decode_s + model_floor_s + write_s
        return {
            "tile": {"pixels": pixels, "predicted": predicted, "scenes": len(tile.scenes)},
            "compile": compile_forward,
            "gemm_flops_per_s": gemm,
            "student_flops_per_pixel": flops,
            "floors_s": {"decode": decode_s, "model": model_floor_s, "write": write_s, "sum": floor_s},
            "decode": {
                "tiles": len(stored.blobs),
                "stored_bytes": stored.stored_bytes,
                "decoded_bytes": stored.decoded_bytes,
                "decoded_by_the_read_path": recorder.decoded,
            },
            "own_code_s": {"tile": tile_s, "read_path": tile_s - predict_s, "predictor": predict_s},
            "us_per_pixel": {
                "floors": floor_s / pixels * 1e6,
                "tile": tile_s / pixels * 1e6,
                "read_path": (tile_s - predict_s) / pixels * 1e6,
                "predictor_per_predicted": predict_s / max(predicted, 1) * 1e6,
            },
            "tile_over_floors": tile_s / floor_s,
            "profile_self_time": bm.self_times(session),
            "forward_share_of_gemm": flops * predicted / predict_s / gemm if predict_s else None,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tile_floors", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp") / "deepsalt-bench")
    parser.add_argument("--out", type=Path, default=HERE / "tile_floors.json")
    parser.add_argument("--compile", action="store_true", help="compile the forward pass (as the bench does)")
    args = parser.parse_args(argv)
    setup_logging()
    from benchmarks.run import single_threaded

    single_threaded()
    started = machine.describe()
    result = measure(args.workdir, args.compile)
    result["machine"] = {**started, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
