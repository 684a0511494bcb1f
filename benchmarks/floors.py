"""Physical floors: what this machine's hardware needs for the work a map does, measured in the run.

- **(a) decode**: the stored bytes of every source tile (spectral image and quality layers) the
  mapping read, each decompressed once with its own codec, on one core. The bytes are read into
  memory first (not timed): on a cloud node they arrive over the network while the cores decode.
- **(b) model**: the student's matrix-product FLOPs per pixel (counted by torch's
  ``FlopCounterMode`` on the forward pass the predictor runs, ``inference_forward``) times the
  pixels predicted, divided by this core's fp32 GEMM rate (a 1024² × 1024² product, one thread,
  best of several).
- **(c) write**: the map's output arrays encoded chunk by chunk with the store's codec (zstd,
  level 3) and written as one file per shard.

Each is a rate the code cannot beat on this core; the end-to-end cost is compared with their sum.
The host's speed drifts by several per cent within a run (the GEMM rate moved between 76 and 98
GFLOP/s within minutes on one day), so (a) and (b) are measured again beside each timed run
(:class:`HostRates`) and each run is compared with its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from deepsalt.logs import get_logger

log = get_logger(__name__)

GEMM_SIZE = 1024
WRITE_LEVEL = 3
"""The store's zstd level (``deepsalt.mapping.store.set_encoding``)."""


def gemm_flops_per_s(size: int = GEMM_SIZE, repeats: int = 5, rounds: int = 3) -> float:
    """fp32 FLOP/s of a ``size``² × ``size``² matrix product on this thread, best of ``rounds``."""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b  # first call: allocation, library dispatch
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best


def student_flops_per_pixel(student_url: str) -> float:
    """Matrix-product FLOPs per pixel of the forward pass the predictor runs on the checkpoint's network."""
    import torch

    from benchmarks.cost import flops_per_pixel
    from deepsalt.mapping.predictor import Precision
    from deepsalt.predict import inference_forward
    from deepsalt.training import builders
    from deepsalt.training.checkpoint import read_meta

    meta = read_meta(student_url, "student")
    net = builders.build_student(builders.StudentArch.model_validate(meta.architecture)).eval()
    forward = inference_forward(net, Precision.FP32)
    n = 512
    bands = len(meta.band_axis["wavelength"])
    survey = torch.rand(n)
    return flops_per_pixel(
        lambda reflectance, covariates: forward(reflectance, covariates, survey),
        torch.rand(n, bands),
        torch.rand(n, 8),
    )


SourceTile = tuple[str, int, int]
"""A stored source tile: (file URL, tile row, tile column)."""


@dataclass(frozen=True)
class StoredTiles:
    """The compressed bytes of source tiles, and how to decompress them."""

    blobs: dict[SourceTile, tuple[Any, bytes]]
    """(reader with a ``decompress`` method, stored bytes) per source tile (sparse tiles left out)."""
    stored_bytes: int
    decoded_bytes: int


def stored_tiles(keys: Iterable[SourceTile]) -> StoredTiles:
    """Read (untimed) the stored bytes of every (url, tile row, tile col) once."""
    import rasterio

    from deepsalt.io.paths import gdal_path
    from deepsalt.mapping.tiff_blocks import BlockCache, TiledTiff

    by_url: dict[str, list[tuple[int, int]]] = {}
    for url, by, bx in keys:
        by_url.setdefault(url, []).append((by, bx))
    blobs: dict[SourceTile, tuple[Any, bytes]] = {}
    stored = decoded = 0
    for url, tiles in by_url.items():
        dataset = rasterio.open(gdal_path(url))
        reader = TiledTiff.open(url, dataset, BlockCache(0))
        if reader is None:
            raise RuntimeError(f"{url} is not read tile by tile; its decode floor is not defined here")
        for by, bx in sorted(set(tiles)):
            data = reader.compressed(by, bx)
            if data is None:
                continue
            blobs[(url, by, bx)] = (reader, data)
            stored += len(data)
            decoded += reader.block_shape[0] * reader.block_shape[1] * reader.n_bands * reader.dtype.itemsize
    return StoredTiles(blobs, stored, decoded)


def decode_seconds(tiles: StoredTiles) -> dict[SourceTile, float]:
    """Wall seconds to decompress each source tile once, on this thread."""
    seconds = {}
    for key, (reader, data) in tiles.blobs.items():
        start = time.perf_counter()
        reader.decompress(data)
        seconds[key] = time.perf_counter() - start
    return seconds


@dataclass(frozen=True)
class HostRates:
    """What the host's speed moves in the floors: the GEMM rate (b) and each source tile's decode (a)."""

    gemm_flops_per_s: float
    decode_s: dict[SourceTile, float]

    @classmethod
    def measure(cls, tiles: StoredTiles) -> HostRates:
        """Both, now, on this thread."""
        return cls(gemm_flops_per_s(), decode_seconds(tiles))


def write_seconds(arrays: Iterable[Mapping[str, np.ndarray]], chunk: int, scratch: Path) -> list[float]:
    """Wall seconds, per tile, to zstd-encode its arrays chunk by chunk and write one file per shard.

    Each mapping of ``arrays`` is one tile (= one shard) of output variables.
    """
    from numcodecs import Zstd

    codec = Zstd(level=WRITE_LEVEL)
    scratch.mkdir(parents=True, exist_ok=True)
    per_tile = []
    for t, tile in enumerate(arrays):
        seconds = 0.0
        for name, values in tile.items():
            start = time.perf_counter()
            parts = [
                codec.encode(np.ascontiguousarray(values[r : r + chunk, c : c + chunk]))
                for r in range(0, values.shape[0], chunk)
                for c in range(0, values.shape[1], chunk)
            ]
            (scratch / f"{name}-{t}.shard").write_bytes(b"".join(bytes(p) for p in parts))
            seconds += time.perf_counter() - start
        per_tile.append(seconds)
    for path in scratch.glob("*.shard"):
        path.unlink()
    return per_tile


@dataclass(frozen=True)
class TileFloors:
    """The physical floors of each output tile, so that any set of tiles has its own floor.

    A cost measured on some tiles (the steady state leaves each actor's first out; the marginal
    cost is that of the tiles P has and H has not) is compared with the floor of the same tiles:
    tiles differ in the scenes they read and the pixels they predict. A source tile that several
    tiles of a set read is decoded once in the set's floor.
    """

    pixels: dict[str, int]
    """Output pixels per tile id."""
    sources: dict[str, frozenset[SourceTile]]
    """Source tiles each tile read."""
    predicted: dict[str, int]
    decode_s: dict[SourceTile, float]
    model_s_per_pixel: float
    """(b) per predicted pixel: counted FLOPs over the GEMM rate."""
    write_s: dict[str, float]

    def at(self, rates: HostRates, flops_per_pixel: float) -> TileFloors:
        """The same tiles' floors at the host's ``rates`` (the student's ``flops_per_pixel`` at its GEMM rate)."""
        return replace(
            self, decode_s=rates.decode_s, model_s_per_pixel=flops_per_pixel / rates.gemm_flops_per_s
        )

    def parts(self, tiles: Iterable[str]) -> dict[str, float]:
        """Seconds of (a), (b) and (c) for ``tiles`` (ids), and their sum."""
        tiles = set(tiles)
        unknown = tiles - self.pixels.keys()
        if unknown:
            raise KeyError(f"no floors for tiles {sorted(unknown)}")
        sources = set().union(*(self.sources[t] for t in tiles))
        decode = sum(self.decode_s.get(key, 0.0) for key in sources)  # sparse source tiles: nothing stored
        model = self.model_s_per_pixel * sum(self.predicted[t] for t in tiles)
        write = sum(self.write_s[t] for t in tiles)
        return {"decode_s": decode, "model_s": model, "write_s": write, "sum_s": decode + model + write}

    def seconds(self, tiles: Iterable[str]) -> float:
        return self.parts(tiles)["sum_s"]

    def per_pixel(self, tiles: Iterable[str]) -> float:
        """Seconds of floor per output pixel of ``tiles``."""
        tiles = set(tiles)
        return self.seconds(tiles) / sum(self.pixels[t] for t in tiles)

    def marginal_per_pixel(self, larger: Iterable[str], smaller: Iterable[str]) -> float:
        """The floor per pixel of what ``larger`` adds to ``smaller`` (a subset of it)."""
        larger, smaller = set(larger), set(smaller)
        if not smaller < larger:
            raise ValueError("the smaller region's tiles must be a strict subset of the larger one's")
        added = sum(self.pixels[t] for t in larger - smaller)
        return (self.seconds(larger) - self.seconds(smaller)) / added
