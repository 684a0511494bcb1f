"""Reading the ``mapunit``, ``component`` and ``chorizon`` tables of an SSURGO export, in either real form.

- ``TableForm.PIPE``: the Web Soil Survey download, ``<export>/tabular/mapunit.txt``, ``comp.txt``,
  ``chorizon.txt``: ``|``-delimited, text double-quoted (quoted text may hold newlines), no header,
  columns in the order of the export's own ``mstabcol.txt`` (or, without it, of ``schema.SCHEMAS``).
- ``TableForm.CSV``: tables exported with a header row from a gSSURGO/gNATSGO file geodatabase or a
  Soil Data Access query, ``<export>/mapunit.csv``, ``component.csv``, ``chorizon.csv`` (or under
  ``tabular/``); columns are found by their SSURGO names, any others are ignored.

Only the columns the survey properties need are kept, typed and range-checked here, so that a bad
value is reported with its file, line and column before any number is computed from it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import fsspec
import numpy as np
import pandas as pd

from deepsalt.errors import InputDataError
from deepsalt.io.paths import exists
from deepsalt.io.ssurgo.schema import (
    KEY_COLUMNS,
    NUMBER_COLUMNS,
    NUMBER_RANGES,
    SCHEMAS,
    SSURGO_VERSION,
    SsurgoTable,
)

PIPE_FOLDER = "tabular"
MSTAB = "mstab.txt"
MSTABCOL = "mstabcol.txt"


class TableForm(StrEnum):
    PIPE = "pipe"
    CSV = "csv"


@dataclass(frozen=True)
class SsurgoTables:
    """The three tables, reduced to the columns the survey properties use, typed.

    ``mapunit``: ``mukey`` (int64). ``component``: ``mukey`` (int64), ``cokey`` (str), ``comppct_r``.
    ``chorizon``: ``cokey`` (str), ``hzdept_r``, ``hzdepb_r``, ``ec_r``, ``sandtotal_r``,
    ``claytotal_r``. Numbers are float64 with NaN for SSURGO's nulls. ``sources`` names where each
    table came from, for error messages.
    """

    mapunit: pd.DataFrame
    component: pd.DataFrame
    chorizon: pd.DataFrame
    sources: dict[SsurgoTable, str]


@dataclass(frozen=True)
class TableFiles:
    """Where the tables of one export are and how to read them."""

    form: TableForm
    urls: dict[SsurgoTable, str]
    columns: dict[SsurgoTable, tuple[str, ...]]  # file column order (PIPE only; CSV files have headers)
    layout: str  # where the column order came from, for error messages


def locate_tables(folder_url: str) -> TableFiles:
    """The table files of the SSURGO export in ``folder_url`` and the form they are in."""
    folder = folder_url.rstrip("/")
    tabular = f"{folder}/{PIPE_FOLDER}"
    if any(exists(f"{tabular}/{schema.pipe_file}") for schema in SCHEMAS.values()):
        return _pipe_files(tabular)
    for base in (folder, tabular):
        if any(exists(f"{base}/{table}.csv") for table in SsurgoTable):
            return TableFiles(
                form=TableForm.CSV,
                urls={table: f"{base}/{table}.csv" for table in SsurgoTable},
                columns={},
                layout="header row",
            )
    raise InputDataError(
        folder_url,
        "no SSURGO tables found: expected tabular/mapunit.txt, comp.txt, chorizon.txt (a Web Soil Survey "
        "download) or mapunit.csv, component.csv, chorizon.csv with a header row (a gSSURGO/gNATSGO or "
        "Soil Data Access export)",
    )


def read_tables(folder_url: str) -> SsurgoTables:
    """Read, type and check the three tables of the SSURGO export in ``folder_url``."""
    files = locate_tables(folder_url)
    frames = {}
    for table in SsurgoTable:
        url = files.urls[table]
        if files.form is TableForm.PIPE:
            columns, lines = _read_pipe(url, table, files.columns[table], files.layout)
        else:
            columns, lines = _read_csv(url, table)
        frames[table] = _typed(table, columns, url, lambda i, lines=lines: f"line {lines[i]}")
    return _checked(frames, dict(files.urls))


def tables_from_frames(
    mapunit: pd.DataFrame, component: pd.DataFrame, chorizon: pd.DataFrame
) -> SsurgoTables:
    """``SsurgoTables`` from in-memory tables holding SSURGO columns (checked like files are)."""
    frames = {}
    sources = {}
    for table, frame in zip(SsurgoTable, (mapunit, component, chorizon), strict=True):
        sources[table] = f"<{table} table>"
        missing = [c for c in (*KEY_COLUMNS[table], *NUMBER_COLUMNS[table]) if c not in frame.columns]
        if missing:
            raise InputDataError(sources[table], f"no column(s) {missing}")
        columns = {name: frame[name].reset_index(drop=True) for name in frame.columns}
        frames[table] = _typed(table, columns, sources[table], lambda i, f=frame: f"row {f.index[i]!r}")
    return _checked(frames, sources)


def _pipe_files(tabular: str) -> TableFiles:
    """Pipe-form file names and column orders: the export's mstab/mstabcol when present, else the schema."""
    names = {table: SCHEMAS[table].pipe_file for table in SsurgoTable}
    mstab = f"{tabular}/{MSTAB}"
    if exists(mstab):
        for line, fields in _records(_read_text(mstab), "|"):
            if len(fields) < 5:
                raise InputDataError(mstab, f"line {line}: {len(fields)} fields, an mstab row has 5")
            if fields[0] in names:
                names[SsurgoTable(fields[0])] = f"{fields[4]}.txt"
    columns = {table: SCHEMAS[table].columns for table in SsurgoTable}
    layout = f"the SSURGO {SSURGO_VERSION} layout"
    mstabcol = f"{tabular}/{MSTABCOL}"
    if exists(mstabcol):
        listed: dict[str, list[tuple[int, str]]] = {}
        for line, fields in _records(_read_text(mstabcol), "|"):
            if len(fields) < 3 or not fields[1].isdigit():
                raise InputDataError(mstabcol, f"line {line}: not an mstabcol row (table|sequence|column|…)")
            listed.setdefault(fields[0], []).append((int(fields[1]), fields[2]))
        for table in SsurgoTable:
            if table in listed:
                columns[table] = tuple(name for _, name in sorted(listed[table]))
        layout = f"as listed in {mstabcol}"
    return TableFiles(
        form=TableForm.PIPE,
        urls={table: f"{tabular}/{names[table]}" for table in SsurgoTable},
        columns=columns,
        layout=layout,
    )


def _read_text(url: str) -> str:
    try:
        with fsspec.open(url, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise InputDataError(
            url, "missing (an SSURGO export needs its mapunit, component and chorizon tables)"
        ) from exc
    except OSError as exc:
        raise InputDataError(url, f"cannot read: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older exports: Windows code page, never invalid as latin-1


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record ends, fields) of each non-blank record; quote-aware."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    for fields in reader:
        if fields:
            yield reader.line_num, fields


def _read_pipe(
    url: str, table: SsurgoTable, columns: tuple[str, ...], layout: str
) -> tuple[dict[str, list[str]], list[int]]:
    wanted = (*KEY_COLUMNS[table], *NUMBER_COLUMNS[table])
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise InputDataError(url, f"the column order ({layout}) has no column(s) {missing} for {table}")
    index = {name: columns.index(name) for name in wanted}
    values: dict[str, list[str]] = {name: [] for name in wanted}
    lines: list[int] = []
    for line, fields in _records(_read_text(url), "|"):
        if len(fields) != len(columns):
            raise InputDataError(
                url,
                f"line {line}: {len(fields)} fields, but the {table} table has {len(columns)} columns ({layout})",
            )
        for name, i in index.items():
            values[name].append(fields[i])
        lines.append(line)
    return values, lines


def _read_csv(url: str, table: SsurgoTable) -> tuple[dict[str, list[str]], list[int]]:
    records = _records(_read_text(url), ",")
    header = next(records, None)
    if header is None:
        raise InputDataError(url, f"empty: expected a header row with the SSURGO {table} column names")
    names = [name.strip().lower() for name in header[1]]
    wanted = (*KEY_COLUMNS[table], *NUMBER_COLUMNS[table])
    missing = [name for name in wanted if name not in names]
    if missing:
        raise InputDataError(
            url, f"no column(s) {missing} in the header (SSURGO {table} column names are expected)"
        )
    index = {name: names.index(name) for name in wanted}
    values: dict[str, list[str]] = {name: [] for name in wanted}
    lines: list[int] = []
    for line, fields in records:
        if len(fields) != len(names):
            raise InputDataError(url, f"line {line}: {len(fields)} fields, but the header has {len(names)}")
        for name, i in index.items():
            values[name].append(fields[i])
        lines.append(line)
    return values, lines


def _typed(table: SsurgoTable, columns: dict, source: str, where: Callable[[int], str]) -> pd.DataFrame:
    """The needed columns of one table as typed Series; names the first bad value's row and column."""
    out = {}
    for name in KEY_COLUMNS[table]:
        series = pd.Series(columns[name], dtype=object)
        out[name] = _mukeys(series, source, where) if name == "mukey" else _keys(series, name, source, where)
    for name in NUMBER_COLUMNS[table]:
        out[name] = _numbers(pd.Series(columns[name]), name, source, where)
    frame = pd.DataFrame(out)
    if table is SsurgoTable.CHORIZON:
        upside_down = np.flatnonzero((frame["hzdepb_r"] < frame["hzdept_r"]).to_numpy())
        if upside_down.size:
            i = int(upside_down[0])
            raise InputDataError(
                source,
                f"{where(i)}: horizon bottom hzdepb_r={frame['hzdepb_r'].iat[i]:g} cm lies above its top "
                f"hzdept_r={frame['hzdept_r'].iat[i]:g} cm",
            )
    return frame


def _blank(series: pd.Series) -> np.ndarray:
    return (series.isna() | (series.astype(str).str.strip() == "")).to_numpy()


def _keys(series: pd.Series, name: str, source: str, where: Callable[[int], str]) -> pd.Series:
    blank = _blank(series)
    if blank.any():
        raise InputDataError(source, f"{where(int(np.argmax(blank)))}, column '{name}': no key")
    return series.astype(str).str.strip()


def _mukeys(series: pd.Series, source: str, where: Callable[[int], str]) -> pd.Series:
    """Map unit keys as int64: the mukey raster holds them as integers, so they must be digits."""
    text = series.astype(str).str.strip().str.removesuffix(".0")
    bad = (~text.str.fullmatch(r"[0-9]+") | _blank(series) | (text.str.lstrip("0") == "")).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise InputDataError(
            source,
            f"{where(i)}, column 'mukey': {series.iat[i]!r} is not a map unit key (a positive integer)",
        )
    return text.astype(np.int64)


def _numbers(series: pd.Series, name: str, source: str, where: Callable[[int], str]) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype(np.float64)
    else:
        blank = _blank(series)
        numbers = pd.to_numeric(series.where(~blank), errors="coerce").astype(np.float64)
        bad = ~blank & numbers.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputDataError(source, f"{where(i)}, column '{name}': {series.iat[i]!r} is not a number")
    low, high = NUMBER_RANGES[name]
    outside = ((numbers < low) | (numbers > high) | np.isinf(numbers)).to_numpy()
    if outside.any():
        i = int(np.argmax(outside))
        raise InputDataError(
            source,
            f"{where(i)}, column '{name}': {numbers.iat[i]:g} is outside SSURGO's range [{low:g}, {high:g}]",
        )
    return numbers


def _checked(frames: dict[SsurgoTable, pd.DataFrame], sources: dict[SsurgoTable, str]) -> SsurgoTables:
    """Checks across rows: unique keys, component percentages that a map unit can hold."""
    for table, key in ((SsurgoTable.MAPUNIT, "mukey"), (SsurgoTable.COMPONENT, "cokey")):
        repeated = frames[table][key][frames[table][key].duplicated()]
        if not repeated.empty:
            raise InputDataError(sources[table], f"{key} {repeated.iat[0]} appears more than once")
    component = frames[SsurgoTable.COMPONENT]
    by_unit = component.groupby("mukey")["comppct_r"]
    # Each integer comppct_r is off its true share by at most 0.5, so a unit may sum to 100 + n/2.
    total, counted = by_unit.sum(), by_unit.count()
    over = total[total > 100.0 + 0.5 * counted]
    if not over.empty:
        raise InputDataError(
            sources[SsurgoTable.COMPONENT],
            f"map unit {over.index[0]}: comppct_r sums to {over.iat[0]:g} % over its "
            f"{counted[over.index[0]]} components (more than 100 % beyond rounding)",
        )
    return SsurgoTables(
        mapunit=frames[SsurgoTable.MAPUNIT],
        component=frames[SsurgoTable.COMPONENT],
        chorizon=frames[SsurgoTable.CHORIZON],
        sources=sources,
    )
