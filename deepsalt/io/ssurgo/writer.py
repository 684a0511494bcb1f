"""Writing an SSURGO export in the real layout: a gSSURGO-style key raster plus the three tables.

What ``write_ssurgo`` writes is what ``read_tables``/``load_survey`` read, and what a user of
Web Soil Survey or gSSURGO would recognise: every column of the SSURGO 2.3.3 table in file order,
the columns the caller did not give left null, text double-quoted and numbers bare in the pipe
form. The export's metadata tables (``mstab.txt``, ``mstabcol.txt``, the other 60-odd tables) are not
written; the reader falls back to the 2.3.3 column order without them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine

from deepsalt.io.ssurgo.schema import KEY_COLUMNS, SCHEMAS, SSURGO_VERSION, ColumnKind, SsurgoTable
from deepsalt.io.ssurgo.survey import NO_MAPUNIT
from deepsalt.io.ssurgo.tables import PIPE_FOLDER, TableForm, tables_from_frames

# gSSURGO/gNATSGO key rasters mark "no map unit" with the largest int32 (soilDB's ``.mukey.spec``).
MUKEY_NODATA = 2147483647
_CHORIZON_KEYS = ("chkey",)  # chorizon's own key: not used by the reader, but every real row has one


@dataclass(frozen=True)
class SsurgoExportFiles:
    """The files ``write_ssurgo`` wrote."""

    raster: Path
    tables: dict[SsurgoTable, Path]
    form: TableForm


def write_ssurgo(
    folder: str | Path,
    mukey: np.ndarray,
    crs: str,
    transform: Affine,
    mapunit: pd.DataFrame,
    component: pd.DataFrame,
    chorizon: pd.DataFrame,
    form: TableForm = TableForm.PIPE,
) -> SsurgoExportFiles:
    """Write an SSURGO export into the local ``folder``.

    ``mukey``: (rows, cols) integer map-unit keys on the grid ``crs``/``transform``, ``NO_MAPUNIT``
    (0) where there is none; written as ``MapunitRaster_<res>m.tif`` (int32, nodata 2147483647).
    ``mapunit``/``component``/``chorizon``: one row per record, columns named as in SSURGO, at least
    the keys (``mukey``; ``mukey``, ``cokey``; ``cokey``, ``chkey``) and the columns the survey uses
    (``comppct_r``; ``hzdept_r``, ``hzdepb_r``, ``ec_r``, ``sandtotal_r``, ``claytotal_r``, NaN/None
    for null); checked as the reader checks them.
    ``form``: ``PIPE`` writes ``tabular/mapunit.txt``, ``comp.txt``, ``chorizon.txt`` (+ ``version.txt``),
    ``CSV`` writes ``mapunit.csv``, ``component.csv``, ``chorizon.csv`` with a header row.
    """
    frames = {SsurgoTable.MAPUNIT: mapunit, SsurgoTable.COMPONENT: component, SsurgoTable.CHORIZON: chorizon}
    for table, frame in frames.items():
        required = (*KEY_COLUMNS[table], *(_CHORIZON_KEYS if table is SsurgoTable.CHORIZON else ()))
        missing = [c for c in required if c not in frame.columns]
        unknown = [c for c in frame.columns if c not in SCHEMAS[table].kinds]
        if missing or unknown:
            raise ValueError(
                f"{table} table: missing column(s) {missing}, not SSURGO {table} column(s) {unknown}"
            )
    checked = tables_from_frames(mapunit, component, chorizon)  # never write what the reader would refuse
    keys = _raster_keys(np.asarray(mukey), checked.mapunit["mukey"])

    # Every cell is rendered before the first byte is written: a bad value leaves no half export.
    render = _pipe_text if form is TableForm.PIPE else _csv_text
    texts = {table: render(table, frame) for table, frame in frames.items()}
    folder = Path(folder)
    tables_folder = folder / PIPE_FOLDER if form is TableForm.PIPE else folder
    names = {t: SCHEMAS[t].pipe_file if form is TableForm.PIPE else f"{t}.csv" for t in SsurgoTable}
    raster = folder / f"MapunitRaster_{abs(transform.a):g}m.tif"
    _write_raster(raster, keys, crs, transform)
    tables_folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for table, text in texts.items():
        written[table] = tables_folder / names[table]
        written[table].write_text(text, encoding="utf-8", newline="")
    if form is TableForm.PIPE:
        (tables_folder / "version.txt").write_bytes(f"{SSURGO_VERSION}\r\n".encode())
    return SsurgoExportFiles(raster=raster, tables=written, form=form)


def _raster_keys(mukey: np.ndarray, known: pd.Series) -> np.ndarray:
    if mukey.ndim != 2 or mukey.dtype.kind not in "iu":
        raise ValueError(f"mukey must be a 2-D integer array, got {mukey.ndim}-D {mukey.dtype}")
    present = np.unique(mukey[mukey != NO_MAPUNIT])
    unknown = present[~np.isin(present, known.to_numpy())]
    if unknown.size or (present.size and (present.min() < 0 or present.max() >= MUKEY_NODATA)):
        raise ValueError(
            f"mukey raster holds keys not in the mapunit table (or outside int32): {unknown[:5]}"
        )
    return np.where(mukey == NO_MAPUNIT, MUKEY_NODATA, mukey).astype(np.int32)


def _write_raster(path: Path, keys: np.ndarray, crs: str, transform: Affine) -> None:
    """A tiled GeoTIFF like a key raster exported from a gSSURGO/gNATSGO geodatabase."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", width=keys.shape[1], height=keys.shape[0], count=1, dtype="int32",
        crs=crs, transform=transform, nodata=MUKEY_NODATA, tiled=True, blockxsize=256, blockysize=256,
        compress="lzw",
    ) as dst:  # fmt: skip
        dst.write(keys, 1)


def _cells(table: SsurgoTable, frame: pd.DataFrame) -> list[list[str | None]]:
    """Per column (schema order) the text of each cell, None for SSURGO's null."""
    schema = SCHEMAS[table]
    empty = [None] * len(frame)
    return [
        [_cell(v, schema.kinds[name], table, name) for v in frame[name]] if name in frame.columns else empty
        for name in schema.columns
    ]


def _cell(value: object, kind: ColumnKind, table: SsurgoTable, column: str) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    if kind is ColumnKind.TEXT:
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))  # keys held as floats
        return str(value)
    if kind is ColumnKind.BOOLEAN:
        # SSURGO stores booleans in a 3-character field: "Yes" and "No " (padded), unquoted.
        if value is True or (isinstance(value, str) and value.strip().lower() == "yes"):
            return "Yes"
        if value is False or (isinstance(value, str) and value.strip().lower() == "no"):
            return "No "
        raise ValueError(f"{table}.{column}: {value!r} is not Yes/No")
    number = float(value)
    if kind is ColumnKind.INTEGER:
        if not number.is_integer():
            raise ValueError(f"{table}.{column} is an SSURGO Integer column, got {value!r}")
        return str(int(number))
    return np.format_float_positional(number, trim="-")  # shortest text that reads back to the same float


def _pipe_text(table: SsurgoTable, frame: pd.DataFrame) -> str:
    kinds = [SCHEMAS[table].kinds[name] for name in SCHEMAS[table].columns]
    lines = []
    for row in zip(*_cells(table, frame), strict=True):
        fields = (
            "" if cell is None else '"' + cell.replace('"', '""') + '"' if kind is ColumnKind.TEXT else cell
            for cell, kind in zip(row, kinds, strict=True)
        )
        lines.append("|".join(fields) + "\r\n")
    return "".join(lines)


def _csv_text(table: SsurgoTable, frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(SCHEMAS[table].columns)
    for row in zip(*_cells(table, frame), strict=True):
        out.writerow("" if cell is None else cell for cell in row)
    return buffer.getvalue()
