"""Lab MIR spectra: Bruker OPUS binaries and KSSL/OSSL-style CSV tables → one (sample, wavenumber) array.

Absorbance is the unit throughout; an OPUS file holding only reflectance is converted with
A = -log10(R). Inputs on different wavenumber grids are interpolated onto one grid (the KSSL grid
unless the caller names another), never concatenated side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
from brukeropus import read_opus

from deepsalt.errors import InputDataError
from deepsalt.logs import get_logger
from deepsalt.spectra import KSSL_WAVENUMBERS, interpolate_mir

log = get_logger(__name__)

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip")
# A spectral column name is a number, optionally wrapped (OSSL v1.2: "scan_mir.600_abs").
_WAVENUMBER_COLUMN = re.compile(r"^(?:[a-z_]+\.)?(\d+(?:\.\d+)?)(?:_[a-z]+)?$", re.IGNORECASE)
_ALIASES = {"latitude": "lat", "longitude": "lon", "long": "lon", "depth_cm": "depth"}
_ID_COLUMNS = ("sample_id", "id", "file_id", "sample")
_MIR_RANGE = (200.0, 8000.0)  # cm⁻¹; a column number outside this is not a MIR wavenumber


@dataclass
class _Block:
    """Spectra of one input: values (n, k) on ``wavenumbers`` (k), and per-sample metadata (n rows)."""

    values: np.ndarray
    wavenumbers: np.ndarray
    samples: pd.DataFrame


def read_lab_spectra(urls: str | Iterable[str], wavenumbers: np.ndarray | None = None) -> xr.DataArray:
    """Read OPUS files and/or CSV tables into a ``(sample, wavenumber)`` absorbance DataArray.

    Coords: ``sample_id`` and, when a table has them, ``lat``, ``lon``, ``depth`` and every other
    (label) column, lower-cased. ``wavenumbers`` (cm⁻¹) fixes the output grid; by default the
    inputs' own grid is kept when all share one, else everything goes onto ``KSSL_WAVENUMBERS``.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("read_lab_spectra needs at least one URL")
    blocks = [_read_csv(u) if u.lower().endswith(_CSV_SUFFIXES) else _read_opus(u) for u in urls]
    grid = _common_grid(blocks) if wavenumbers is None else np.asarray(wavenumbers, dtype=float)
    values = np.concatenate([_on_grid(b, grid) for b in blocks]).astype(np.float32)
    samples = pd.concat([b.samples for b in blocks], ignore_index=True)
    coords = {col: ("sample", samples[col].to_numpy()) for col in samples.columns}
    spectra = xr.DataArray(
        values,
        dims=("sample", "wavenumber"),
        coords={"wavenumber": ("wavenumber", grid, {"units": "cm-1"}), **coords},
        name="absorbance",
        attrs={"units": "1", "long_name": "MIR absorbance, log10(1/R)"},
    )
    log.info("read lab spectra", extra={"files": len(urls), "samples": values.shape[0], "points": grid.size})
    return spectra


def _common_grid(blocks: list[_Block]) -> np.ndarray:
    first = blocks[0].wavenumbers
    if all(b.wavenumbers.shape == first.shape and np.allclose(b.wavenumbers, first) for b in blocks):
        return first
    log.info("lab spectra on different grids: interpolating onto the KSSL grid")
    return np.asarray(KSSL_WAVENUMBERS)


def _on_grid(block: _Block, grid: np.ndarray) -> np.ndarray:
    same = block.wavenumbers.shape == grid.shape and np.allclose(block.wavenumbers, grid)
    return block.values if same else interpolate_mir(block.values, block.wavenumbers, grid)


def _read_opus(url: str) -> _Block:
    try:
        path = fsspec.open_local(
            url if "://" not in url or url.startswith("file://") else f"simplecache::{url}"
        )
    except FileNotFoundError as exc:
        raise InputDataError(url, "file not found") from exc
    opus = read_opus(path)
    if not opus:
        raise InputDataError(url, "not a Bruker OPUS file (and not a .csv table)")
    if "a" in opus.data_keys:
        x, y = opus.a.x, opus.a.y
    elif "r" in opus.data_keys:
        x, y = opus.r.x, -np.log10(np.clip(opus.r.y, 1e-6, None))
    else:
        raise InputDataError(
            url, f"OPUS file holds no absorbance or reflectance spectrum (blocks: {opus.data_keys})"
        )
    # The file name, not the free-text OPUS sample name: it is unique and is what tables key on
    # (e.g. yamsys file_id "BF_lo_01_soil_cal.1").
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return _Block(
        np.asarray(y, dtype=float)[None, :], np.asarray(x, dtype=float), pd.DataFrame({"sample_id": [name]})
    )


def _read_csv(url: str) -> _Block:
    """A KSSL/OSSL-style table; refuses (names file, row and column) what it cannot use as it is:
    duplicate columns, non-numeric or negative ECe, missing or impossible coordinates."""
    try:
        table = pd.read_csv(url, compression="infer")
        header = pd.read_csv(url, compression="infer", header=None, nrows=1, dtype=str).iloc[0].tolist()
    except FileNotFoundError as exc:
        raise InputDataError(url, "file not found") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(url, f"not a readable CSV table: {exc}") from exc
    table.columns = [str(name).strip() for name in header]
    spectral = {
        col: float(m.group(1)) for col in table.columns if (m := _WAVENUMBER_COLUMN.match(str(col).strip()))
    }
    spectral = {c: w for c, w in spectral.items() if _MIR_RANGE[0] <= w <= _MIR_RANGE[1]}
    _refuse_duplicates(url, list(table.columns), spectral)
    if len(spectral) < 10:
        raise InputDataError(
            url, "no wavenumber columns (expected one column per wavenumber, e.g. '4001.656')"
        )
    samples = table.drop(columns=list(spectral))
    original = {_ALIASES.get(c.lower(), c.lower()): c for c in samples.columns}
    samples.columns = list(original)
    id_column = next((c for c in _ID_COLUMNS if c in samples.columns), None)
    if id_column is None:
        ids = [f"{url.rsplit('/', 1)[-1]}:{i}" for i in range(len(table))]
        samples.insert(0, "sample_id", ids)
    else:
        samples = samples.rename(columns={id_column: "sample_id"})
    samples["sample_id"] = samples["sample_id"].astype(str)
    cells = _Cells(url, samples["sample_id"].tolist())
    try:
        values = table[list(spectral)].to_numpy(dtype=float)
    except ValueError:
        values = np.column_stack([cells.numbers(table[col], col, "absorbance") for col in spectral])
    if "ece" in samples:
        ece = cells.numbers(samples["ece"], original["ece"], "ECe in dS/m")
        cells.refuse(ece < 0, original["ece"], ece, "is negative (ECe is at least 0 dS/m)")
        samples["ece"] = ece
    _check_coordinates(cells, samples, original)
    return _Block(values, np.array(list(spectral.values())), samples.reset_index(drop=True))


def _refuse_duplicates(url: str, columns: list[str], spectral: dict[str, float]) -> None:
    """Two columns that mean the same (``ece``/``ECe``, ``lat``/``latitude``, one wavenumber twice)."""
    seen: dict[str | float, str] = {}
    for position, name in enumerate(columns, start=1):
        meaning = spectral.get(name, _ALIASES.get(name.lower(), name.lower()))
        if meaning in seen:
            raise InputDataError(
                url,
                f"columns '{seen[meaning]}' and '{name}' (column {position}) hold the same quantity; "
                "keep one of them",
            )
        seen[meaning] = name


class _Cells:
    """Names a table's bad cells by row (1 = first data row), sample id and column."""

    def __init__(self, url: str, sample_ids: list[str]):
        self.url = url
        self.sample_ids = sample_ids

    def where(self, row: int, column: str) -> str:
        return f"row {row + 1} (sample '{self.sample_ids[row]}', line {row + 2}), column '{column}'"

    def numbers(self, values: pd.Series, column: str, what: str) -> np.ndarray:
        """``values`` as floats (blank = NaN); any other non-number is refused."""
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        text = values.notna().to_numpy() & np.isnan(numbers)
        if text.any():
            row = int(np.flatnonzero(text)[0])
            raise InputDataError(
                self.url, f"{self.where(row, column)}: '{values.iloc[row]}' is not a number ({what})"
            )
        return numbers

    def refuse(self, bad: np.ndarray, column: str, values: np.ndarray, reason: str) -> None:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputDataError(self.url, f"{self.where(row, column)}: {values[row]:g} {reason}")


def _check_coordinates(cells: _Cells, samples: pd.DataFrame, original: dict[str, str]) -> None:
    """Coordinates, when the table has them, are complete WGS84 degrees for every sample."""
    present = [axis for axis in ("lat", "lon") if axis in samples]
    if not present:
        return
    if len(present) == 1:
        other = "lon" if present == ["lat"] else "lat"
        raise InputDataError(cells.url, f"has a '{original[present[0]]}' column but no '{other}' column")
    for axis, limit in (("lat", 90.0), ("lon", 180.0)):
        column = original[axis]
        degrees = cells.numbers(samples[axis], column, "degrees")
        missing = np.isnan(degrees)
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise InputDataError(cells.url, f"{cells.where(row, column)}: the coordinate is missing")
        cells.refuse(np.abs(degrees) > limit, column, degrees, f"is outside [-{limit:g}, {limit:g}] degrees")
        samples[axis] = degrees
