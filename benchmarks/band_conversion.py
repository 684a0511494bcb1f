"""Band conversion (``BandMatcher.reflectance``) against the dense implementation it replaced.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python -m benchmarks.band_conversion   # writes band_conversion.json
    ... -m benchmarks.band_conversion --tile-workdir /tmp/deepsalt-bench     # and its share of one tile

Both run in this process on the same stored values, interleaved round-robin, so the ratio holds
on a shared machine even when the absolute times do not. Two cases, both on the real EnMAP band
table (``deepsalt/data/enmap_l2a_band_table.xml``) against its model axis (the student's bands):

- *picked*: the scene lists the student's bands themselves (the synthetic worlds' scenes, and the
  product the model was trained on);
- *resampled*: the scene's centres are shifted by :data:`SHIFT_NM`, as between EnMAP products, so
  every student band is resampled from the scene's bands (in detector order) with the SRF weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np

from benchmarks import machine
from benchmarks.timing import interleaved
from deepsalt.logs import setup_logging
from deepsalt.mapping.bands import CONVERT_ROWS, PLAUSIBLE_RANGE, BandMatcher, SrfBlocks
from deepsalt.spectra import ENMAP_NODATA

HERE = Path(__file__).parent
PIXELS = 65_536
SHIFT_NM = 1.5
BLOCK_SIZES = (8, 16, 32, 64)
"""Student bands per SRF block compared (``deepsalt.mapping.bands.SRF_BLOCK_BANDS`` is one of them)."""
NODATA_SHARE = 0.02
"""Share of pixels stored as nodata in every band (scene edges), plus as many with one bad value."""


def dense_reflectance(matcher: BandMatcher, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The conversion as it was before the SRF product was split into blocks: the baseline.

    A dense (n, usable bands) × (usable bands, student bands) product over the scene's bands in
    file order, and the picked bands gathered after scaling all usable bands.
    """
    n_out = len(matcher.pick) if matcher.pick is not None else len(matcher.weights)  # type: ignore[arg-type]
    out = np.empty((len(raw), n_out), dtype=np.float32)
    beyond = np.empty(len(raw), dtype=bool)
    gain, offset = matcher.gain.astype(np.float32), matcher.offset.astype(np.float32)
    nodata = np.float32(matcher.nodata)
    check_finite = raw.dtype.kind == "f"
    for start in range(0, len(raw), CONVERT_ROWS):
        rows = slice(start, start + CONVERT_ROWS)
        values = raw[rows][:, matcher.usable].astype(np.float32)
        stored_nodata = values == nodata
        invalid = stored_nodata | ~np.isfinite(values) if check_finite else stored_nodata
        physical = np.multiply(values, gain, out=values)
        physical += offset
        outside = physical < PLAUSIBLE_RANGE[0]
        outside |= physical > PLAUSIBLE_RANGE[1]
        outside &= ~stored_nodata
        beyond[rows] = outside.any(axis=1)
        if matcher.pick is not None:
            scaled = np.clip(physical[:, matcher.pick], 0.0, 1.0)
            scaled[invalid[:, matcher.pick]] = np.nan
            out[rows] = scaled
        else:
            scaled = np.clip(physical, 0.0, 1.0, out=physical)
            scaled[invalid] = np.nan
            np.matmul(scaled, matcher.weights.T, out=out[rows])  # type: ignore[union-attr]
    return out, beyond


def stored_values(n_bands: int, pixels: int, seed: int = 0) -> np.ndarray:
    """(pixels, bands) int16 stored reflectance × 10000 with nodata pixels and single bad values."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(-300, 7000, (pixels, n_bands)).astype(np.int16)
    raw[rng.random(pixels) < NODATA_SHARE] = ENMAP_NODATA
    bad = rng.random(pixels) < NODATA_SHARE
    raw[bad, rng.integers(0, n_bands, int(bad.sum()))] = ENMAP_NODATA
    return raw


def cases() -> dict[str, BandMatcher]:
    """The two matchers measured: the product's own bands picked, and shifted centres resampled."""
    from deepsalt.synth.library import enmap_bands

    table = enmap_bands()
    student = table.model_axis().wavelength
    shifted = replace(table, wavelength=table.wavelength + SHIFT_NM)
    return {
        "picked": BandMatcher.build(table, student, ENMAP_NODATA, "picked"),
        "resampled": BandMatcher.build(shifted, student, ENMAP_NODATA, "resampled"),
    }


def measure(pixels: int = PIXELS, warmup: int = 2, repeats: int = 15) -> dict[str, Any]:
    """Old and new conversion of each case, interleaved; their agreement and speed ratio."""
    results: dict[str, Any] = {}
    for name, matcher in cases().items():
        raw = stored_values(matcher.n_bands, pixels)
        new, new_beyond = matcher.reflectance(raw)
        old, old_beyond = dense_reflectance(matcher, raw)
        timings = interleaved(
            {"dense": partial(dense_reflectance, matcher, raw), "blocks": partial(matcher.reflectance, raw)},
            {"dense": pixels, "blocks": pixels},
            warmup=warmup,
            repeats=repeats,
        )
        finite = np.isfinite(old)
        results[name] = {
            "resampled": matcher.pick is None,
            "scene_bands": int(matcher.usable.size),
            "student_bands": int(new.shape[1]),
            "srf_weights_kept": (
                None if matcher.product is None else matcher.product.weights_kept / matcher.weights.size  # type: ignore[union-attr]
            ),
            "same_nan": bool(np.array_equal(np.isnan(new), np.isnan(old))),
            "same_out_of_range": bool(np.array_equal(new_beyond, old_beyond)),
            "max_abs_difference": float(np.max(np.abs(new[finite] - old[finite]), initial=0.0)),
            "dense": timings["dense"].as_dict(),
            "blocks": timings["blocks"].as_dict(),
            "us_per_pixel": {
                "dense": timings["dense"].per_unit * 1e6,
                "blocks": timings["blocks"].per_unit * 1e6,
            },
            "speedup": timings["dense"].median / timings["blocks"].median,
            # The fastest runs met the least interference from other work on a shared machine.
            "speedup_fastest_runs": min(timings["dense"].seconds) / min(timings["blocks"].seconds),
        }
    return results


def block_sizes(
    sizes: tuple[int, ...] = BLOCK_SIZES, pixels: int = CONVERT_ROWS, warmup: int = 2, repeats: int = 15
) -> dict[str, Any]:
    """The resampled case's SRF product alone at several block sizes (the dense product is one
    block of every band), interleaved, on one chunk of scaled reflectance."""
    matcher = cases()["resampled"]
    ordered = matcher.weights[:, matcher.read]  # type: ignore[index]
    scaled = np.random.default_rng(0).random((pixels, ordered.shape[1]), dtype=np.float32)
    out = np.empty((pixels, ordered.shape[0]), dtype=np.float32)
    products = {str(size): SrfBlocks.from_weights(ordered, size) for size in sizes}
    products["dense"] = SrfBlocks.from_weights(ordered, len(ordered))
    timings = interleaved(
        {name: partial(product.apply, scaled, out) for name, product in products.items()},
        dict.fromkeys(products, pixels),
        warmup=warmup,
        repeats=repeats,
    )
    return {
        name: {
            "weights_kept": products[name].weights_kept / ordered.size,
            "us_per_pixel": timing.per_unit * 1e6,
            "spread": timing.spread,
            "dense_over_this": timings["dense"].median / timing.median,
        }
        for name, timing in timings.items()
    }


def tile_shares(workdir: Path, rounds: int = 2) -> dict[str, Any]:
    """Band conversion's share of one tile: P's first tile mapped by the actors' ``TileMapper``
    (no Ray, forward not compiled) with the dense baseline and the current conversion in turn,
    after one unmeasured tile that loads the student and fills the caches."""
    from benchmarks import mapping as bm
    from benchmarks.tile_floors import first_tile_of_p
    from deepsalt.mapping.worker import TileMapper

    implementations = {"dense": dense_reflectance, "blocks": BandMatcher.reflectance}
    seconds: dict[str, dict[str, list[float]]] = {
        name: {"tile": [], "conversion": []} for name in implementations
    }
    with first_tile_of_p(workdir, compile_forward=False) as (case, tile, _):
        mapper = TileMapper(bm.mapping_job(case))
        mapper.map_tile(tile)
        for _ in range(rounds):
            for name, convert in implementations.items():
                spent = 0.0

                def timed(matcher: BandMatcher, raw: np.ndarray, convert=convert) -> Any:
                    nonlocal spent
                    start = time.perf_counter()
                    converted = convert(matcher, raw)
                    spent += time.perf_counter() - start
                    return converted

                with patch.object(BandMatcher, "reflectance", timed):
                    start = time.perf_counter()
                    mapper.map_tile(tile)
                    seconds[name]["tile"].append(time.perf_counter() - start)
                seconds[name]["conversion"].append(spent)
    return {
        "pixels": tile.n_pixels,
        "scenes": len(tile.scenes),
        **{
            name: {
                **runs,
                "share": statistics.median(
                    c / t for c, t in zip(runs["conversion"], runs["tile"], strict=True)
                ),
                "us_per_tile_pixel": statistics.median(runs["conversion"]) / tile.n_pixels * 1e6,
            }
            for name, runs in seconds.items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.band_conversion", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pixels", type=int, default=PIXELS)
    parser.add_argument("--out", type=Path, default=HERE / "band_conversion.json")
    parser.add_argument(
        "--tile-workdir",
        type=Path,
        help="also map P's first tile from this make-bench work folder with each conversion (minutes)",
    )
    args = parser.parse_args(argv)
    from benchmarks.run import single_threaded

    single_threaded()
    started = machine.describe()
    result = {"pixels": args.pixels, "cases": measure(args.pixels), "srf_block_sizes": block_sizes()}
    if args.tile_workdir is not None:
        setup_logging()
        result["tile"] = tile_shares(args.tile_workdir)
    result["machine"] = {**started, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
