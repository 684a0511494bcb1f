"""Physical floors: what this machine's hardware needs for the work a map does, measured in the run.

- **(a) decode**: the stored bytes of every source tile (spectral image and quality layers) the
  mapping read, each decompressed once with its own codec, on one core. The bytes are read into
  memory first (not timed): on a cloud node they arrive over the network while the cores decode.
- **(b) model**: the student's matrix-product FLOPs per pixel (counted by torch's
  ``FlopCounterMode`` on the forward pass the predictor runs, ``inference_forward``) times the pixels predicted, divided by this core's
  fp32 GEMM rate (a 1024² × 1024² product, one thread, best of several).
- **(c) write**: the map's output arrays encoded chunk by chunk with the store's codec (zstd,
  level 3) and written as one file per shard.

Each is a rate the code cannot beat on this core; the end-to-end cost is compared with their sum.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StoredTiles:
    """The compressed bytes of source tiles, and how to decompress them."""

    blobs: list[tuple[Any, bytes]]
    """(reader with a ``decompress`` method, stored bytes) per tile."""
    stored_bytes: int
    decoded_bytes: int


def stored_tiles(keys: Iterable[tuple[str, int, int]]) -> StoredTiles:
    """Read (untimed) the stored bytes of every (url, tile row, tile col) once."""
    import rasterio

    from deepsalt.io.paths import gdal_path
    from deepsalt.mapping.tiff_blocks import BlockCache, TiledTiff

    by_url: dict[str, list[tuple[int, int]]] = {}
    for url, by, bx in keys:
        by_url.setdefault(url, []).append((by, bx))
    blobs: list[tuple[Any, bytes]] = []
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
            blobs.append((reader, data))
            stored += len(data)
            decoded += reader.block_shape[0] * reader.block_shape[1] * reader.n_bands * reader.dtype.itemsize
    return StoredTiles(blobs, stored, decoded)


def decode_seconds(tiles: StoredTiles) -> float:
    """Wall seconds to decompress every tile once, on this thread."""
    start = time.perf_counter()
    for reader, data in tiles.blobs:
        reader.decompress(data)
    return time.perf_counter() - start


def write_seconds(arrays: Iterable[Mapping[str, np.ndarray]], chunk: int, scratch: Path) -> float:
    """Wall seconds to zstd-encode each tile's arrays chunk by chunk and write one file per shard.

    Each mapping of ``arrays`` is one tile (= one shard) of output variables.
    """
    from numcodecs import Zstd

    codec = Zstd(level=WRITE_LEVEL)
    scratch.mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    for t, tile in enumerate(arrays):
        for name, values in tile.items():
            start = time.perf_counter()
            parts = [
                codec.encode(np.ascontiguousarray(values[r : r + chunk, c : c + chunk]))
                for r in range(0, values.shape[0], chunk)
                for c in range(0, values.shape[1], chunk)
            ]
            (scratch / f"{name}-{t}.shard").write_bytes(b"".join(bytes(p) for p in parts))
            seconds += time.perf_counter() - start
    for path in scratch.glob("*.shard"):
        path.unlink()
    return seconds
