"""Pixel access to a scene's source raster: the pixels at given (row, col), all bands, pixel-major.

A mapping actor needs, per block, the spectra of the pixels the compositor takes from a scene:
a scattered set of source pixels, every band. GDAL's window read of a pixel-interleaved GeoTIFF
decodes each tile, then splits it into one cached block per band and copies those into a
band-major array, which the compositor must gather band by band. For tiled, pixel-interleaved
GeoTIFFs with the common codecs (the layout of COGs written by GDAL, ``deepsalt synth`` and
DLR's COG products), :class:`TiledTiff` instead reads each tile's compressed bytes (their offset
and size come from GDAL's ``TIFF`` metadata domain), decompresses them once into a
``(rows, cols, bands)`` array (the layout they are stored in) and gathers the wanted pixels
from it. Decoded tiles are kept in a :class:`BlockCache` with a fixed budget shared by every
scene an actor reads, so neighbouring blocks and tiles reuse them and memory does not grow with
the region.

Everything else (band-interleaved or striped files, other codecs, ENVI cubes, files GDAL reaches
through a path fsspec cannot open) is read by :class:`WindowReader`: GDAL reads the bounding
window of the wanted pixels and they are gathered from it. HDF5/NetCDF cubes use the same class
over their reader's ``read(rows, cols)``.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, BinaryIO

import numpy as np
from numcodecs import Zstd
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.windows import Window

from deepsalt.errors import InputDataError

# GDAL's IMAGE_STRUCTURE COMPRESSION → decompressor of one tile's bytes.
DECODERS: dict[str | None, Callable[[bytes], bytes]] = {
    None: bytes,
    "ZSTD": Zstd().decode,
    "DEFLATE": zlib.decompress,
}
FSSPEC_PROTOCOLS = ("file", "s3", "s3a", "gs", "gcs", "az", "abfs", "http", "https")
DECODED_CACHE_MB = 256
"""Decoded source tiles an actor keeps (all scenes together). A 512-pixel block of a 224-band
int16 scene touches about nine 256² tiles (29 MB each), so this holds one block's tiles and lets
the next block reuse the column they share."""


class BlockCache:
    """Decoded tiles by key, least recently used dropped first beyond ``budget_bytes``."""

    def __init__(self, budget_bytes: int = DECODED_CACHE_MB * 1024**2):
        self.budget = budget_bytes
        self._blocks: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.decoded = 0
        """Tiles decoded so far (a cache miss each): the benchmark's decode floor counts the same tiles."""

    def get(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                return block
        block = load()
        with self._lock:
            self.decoded += 1
            self._blocks[key] = block
            self._bytes += block.nbytes
            while self._bytes > self.budget and len(self._blocks) > 1:
                _, dropped = self._blocks.popitem(last=False)
                self._bytes -= dropped.nbytes
        return block

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._bytes = 0


def gather_by_block(
    rows: np.ndarray,
    cols: np.ndarray,
    block_shape: tuple[int, int],
    n_bands: int,
    dtype: np.dtype,
    block: Callable[[int, int], np.ndarray],
) -> np.ndarray:
    """(n, bands) values at source ``rows``/``cols`` from ``block(by, bx)`` → (bh, bw, bands) arrays."""
    bh, bw = block_shape
    out = np.empty((len(rows), n_bands), dtype=dtype)
    if not len(rows):
        return out
    by, bx = rows // bh, cols // bw
    keys = by.astype(np.int64) * (int(bx.max()) + 1) + bx
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.diff(keys[order], prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(order)], strict=True):
        take = order[start:stop]
        y, x = int(by[take[0]]), int(bx[take[0]])
        # One flat index per pixel: numpy's take along the pixel axis gathers faster than indexing
        # the (rows, cols, bands) block with rows and columns (benchmarks/notes.md, session 24).
        in_block = (rows[take] - y * bh) * bw + (cols[take] - x * bw)
        out[take] = np.take(block(y, x).reshape(bh * bw, n_bands), in_block, axis=0)
    return out


class TiledTiff:
    """A tiled, pixel-interleaved GeoTIFF read tile by tile without GDAL's block cache."""

    def __init__(self, url: str, dataset: Any, cache: BlockCache, stream: BinaryIO):
        self.url = url
        self._dataset = dataset
        self._cache = cache
        self._stream = stream
        self._lock = threading.Lock()
        structure = dataset.tags(ns="IMAGE_STRUCTURE")
        self._decode = DECODERS[structure.get("COMPRESSION")]
        self._predictor = int(structure.get("PREDICTOR", 1))
        self.block_shape: tuple[int, int] = tuple(dataset.block_shapes[0])  # type: ignore[assignment]
        self.n_bands = dataset.count
        self.dtype = np.dtype(dataset.dtypes[0]).newbyteorder("<")
        self._fill = dataset.nodata if dataset.nodata is not None else 0

    @classmethod
    def open(cls, url: str, dataset: Any, cache: BlockCache) -> TiledTiff | None:
        """The raw reader for ``dataset`` (open with rasterio), or None when its layout needs GDAL."""
        import fsspec

        structure = dataset.tags(ns="IMAGE_STRUCTURE")
        if (
            dataset.driver != "GTiff"
            or not dataset.profile.get("tiled")
            or structure.get("COMPRESSION") not in DECODERS
            or int(structure.get("PREDICTOR", 1)) not in (1, 2)
            or (int(structure.get("PREDICTOR", 1)) == 2 and np.dtype(dataset.dtypes[0]).kind == "f")
            or (dataset.count > 1 and structure.get("INTERLEAVE") != "PIXEL")
            or len(set(dataset.dtypes)) != 1
            or len(set(dataset.block_shapes)) != 1
            or np.dtype(dataset.dtypes[0]).kind not in "iuf"
            or url.partition("://")[0] not in (*FSSPEC_PROTOCOLS, url)  # plain paths have no scheme
        ):
            return None
        try:
            stream = fsspec.open(url, "rb").open()
        except (OSError, ValueError, ImportError):
            return None
        if stream.read(2) != b"II":  # big-endian TIFFs (rare) go through GDAL
            stream.close()
            return None
        return cls(url, dataset, cache, stream)

    def close(self) -> None:
        self._stream.close()

    def read_pixels(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return gather_by_block(rows, cols, self.block_shape, self.n_bands, self.dtype, self._block)

    def plane_window(self, rows: slice, cols: slice) -> np.ndarray:
        """(h, w) of the first band over a window, assembled from whole tiles."""
        bh, bw = self.block_shape
        out = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=self.dtype)
        for by in range(rows.start // bh, (rows.stop - 1) // bh + 1):
            for bx in range(cols.start // bw, (cols.stop - 1) // bw + 1):
                y0, x0 = max(by * bh, rows.start), max(bx * bw, cols.start)
                y1, x1 = min((by + 1) * bh, rows.stop), min((bx + 1) * bw, cols.stop)
                block = self._block(by, bx)
                out[y0 - rows.start : y1 - rows.start, x0 - cols.start : x1 - cols.start] = block[
                    y0 - by * bh : y1 - by * bh, x0 - bx * bw : x1 - bx * bw, 0
                ]
        return out

    def _block(self, by: int, bx: int) -> np.ndarray:
        return self._cache.get((self.url, by, bx), lambda: self._load(by, bx))

    def _load(self, by: int, bx: int) -> np.ndarray:
        data = self.compressed(by, bx)
        if data is None:  # a sparse tile: never written
            return np.full((*self.block_shape, self.n_bands), self._fill, dtype=self.dtype)
        return self.decompress(data, (bx, by))

    def compressed(self, by: int, bx: int) -> bytes | None:
        """The stored bytes of tile (``by``, ``bx``); None for a sparse (never written) tile."""
        offset = self._dataset.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=1)
        size = self._dataset.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=1)
        if not offset or not size or int(size) == 0:
            return None
        with self._lock:
            self._stream.seek(int(offset))
            data = self._stream.read(int(size))
        if len(data) != int(size):
            raise InputDataError(
                self.url,
                f"cannot be read (corrupt or truncated?): tile ({bx}, {by}) ends after {len(data)} of {size} bytes",
            )
        return data

    def decompress(self, data: bytes, where: tuple[int, int] = (0, 0)) -> np.ndarray:
        """A tile's stored bytes → (rows, cols, bands) values (codec and predictor undone)."""
        bh, bw = self.block_shape
        try:
            values = np.frombuffer(self._decode(data), dtype=self.dtype)
            values = values[: bh * bw * self.n_bands].reshape(bh, bw, self.n_bands)
        except Exception as exc:  # any decoder error: the file is damaged
            raise InputDataError(
                self.url, f"cannot be read (corrupt or truncated?): tile {where} does not decode: {exc}"
            ) from exc
        if self._predictor == 2:  # horizontal differencing, per band along each row
            values = np.cumsum(values, axis=1, dtype=self.dtype)
        return values.astype(self.dtype.newbyteorder("="), copy=False)


class WindowReader:
    """Pixels from the bounding window of the wanted ones, read band-major by ``read_window``."""

    def __init__(self, url: str, read_window: Callable[[slice, slice], np.ndarray], n_bands: int, dtype: Any):
        self.url = url
        self._read_window = read_window
        self.n_bands = n_bands
        self.dtype = np.dtype(dtype)

    def plane_window(self, rows: slice, cols: slice) -> np.ndarray:
        """(h, w) of the first band over a window."""
        return self._read_window(rows, cols)[0]

    def close(self) -> None:
        """Nothing of its own to close (the dataset it reads is its owner's)."""

    def read_pixels(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.empty((0, self.n_bands), dtype=self.dtype)
        r0, c0 = int(rows.min()), int(cols.min())
        window = self._read_window(slice(r0, int(rows.max()) + 1), slice(c0, int(cols.max()) + 1))
        return np.ascontiguousarray(window[:, rows - r0, cols - c0].T)


def open_pixels(url: str, dataset: Any, cache: BlockCache) -> TiledTiff | WindowReader:
    """A reader of ``dataset``'s pixels (open with rasterio from ``url``): :class:`TiledTiff` where
    its layout allows, else GDAL windows. Close it before the dataset."""
    reader = TiledTiff.open(url, dataset, cache)
    if reader is not None:
        return reader
    return WindowReader(url, gdal_window(url, dataset), dataset.count, dataset.dtypes[0])


def gdal_window(url: str, dataset: Any) -> Callable[[slice, slice], np.ndarray]:
    """``read_window`` of a rasterio dataset; read failures name the file."""

    def read(rows: slice, cols: slice) -> np.ndarray:
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        try:
            return dataset.read(window=window)
        except (RasterioError, CPLE_BaseError) as exc:
            raise InputDataError(url, f"cannot be read (corrupt or truncated?): {exc}") from exc

    return read
