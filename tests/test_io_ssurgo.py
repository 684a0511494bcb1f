"""deepsalt.io.ssurgo: SSURGO exports in their real layout → per-map-unit and per-pixel survey values.

The fixture holds real rows of the Web Soil Survey export of AZ649 (Yuma-Wellton Area, SSURGO 2.3.3)
in both tabular forms; the expected averages are worked out by hand from those rows below.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.errors import InputDataError
from deepsalt.io.ssurgo import (
    MUKEY_NODATA,
    NO_MAPUNIT,
    SCHEMAS,
    SsurgoTable,
    SsurgoTables,
    TableForm,
    find_mukey_raster,
    load_survey,
    mapunit_properties,
    read_tables,
    sample_survey,
    survey_on_grid,
    tables_from_frames,
    write_ssurgo,
    write_survey_cogs,
)
from tests.conftest import FIXTURES

WSS = FIXTURES / "ssurgo" / "wss_AZ649"
CSV_EXPORT = FIXTURES / "ssurgo" / "gssurgo_csv"
RASTER_CRS = "EPSG:5070"

# Worked by hand from the fixture rows, 0-30 cm (hzdept_r-hzdepb_r: value).
# 53262 Indio silt loam, strongly saline: one component (100 %); Ap 0-10 and C 10-152.
INDIO = {"ece": 24.0, "sand": (14.3 * 10 + 63.1 * 20) / 30, "clay": (13 * 10 + 11 * 20) / 30}
# 53258 Harqua-Tremant complex: Harqua 45 % (A 0-13: ec 5, Btk1 13-81: ec 12), Tremant 40 % (A 0-30: ec 2),
# unnamed soils 15 % without horizons (skipped: the weights renormalise to 85).
HARQUA = {
    "ece": (5 * 13 + 12 * 17) / 30,
    "sand": (41.1 * 13 + 34.7 * 17) / 30,
    "clay": (22 * 13 + 32.5 * 17) / 30,
}
TREMANT = {"ece": 2.0, "sand": 44.3, "clay": 15.0}
HARQUA_TREMANT = {k: (45 * HARQUA[k] + 40 * TREMANT[k]) / 85 for k in HARQUA}
# 53269 Ligurta-Cristobal complex: Ligurta 65 % (A 0-5, Btkn 5-152), Cristobal 25 % (A 0-5, Btkn1 5-64).
LIGURTA = {
    "ece": (4 * 5 + 24 * 25) / 30,
    "sand": (39.5 * 5 + 33.5 * 25) / 30,
    "clay": (23 * 5 + 30 * 25) / 30,
}
CRISTOBAL = {
    "ece": (4 * 5 + 24 * 25) / 30,
    "sand": (39.8 * 5 + 33.5 * 25) / 30,
    "clay": (22.5 * 5 + 30 * 25) / 30,
}
LIGURTA_CRISTOBAL = {k: (65 * LIGURTA[k] + 25 * CRISTOBAL[k]) / 90 for k in LIGURTA}
# 53268 Laposa-Rock outcrop complex: only Laposa (55 %) has horizons, all 1 dS/m, 45 % sand, 12 % clay to 81 cm.
LAPOSA = {"ece": 1.0, "sand": 45.0, "clay": 12.0}
# 53288 Gachado: A 0-3, Btk1 3-15, Btk2 15-30, then bedrock R 30-152 with no values.
GACHADO = {
    "ece": 1.0,
    "sand": (43.3 * 3 + 55.4 * 12 + 42.1 * 15) / 30,
    "clay": (17 * 3 + 27 * 12 + 20 * 15) / 30,
}
EXPECTED = {53258: HARQUA_TREMANT, 53262: INDIO, 53268: LAPOSA, 53269: LIGURTA_CRISTOBAL, 53288: GACHADO}
NO_DATA_UNITS = (53275, 53284)  # Salorthids (taxon above family, no horizons), Water

runner = CliRunner()


def expected_frame() -> pd.DataFrame:
    rows = {**EXPECTED, **{k: dict.fromkeys(INDIO, np.nan) for k in NO_DATA_UNITS}}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("mukey").sort_index()


def raster_keys(folder: Path = WSS) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(folder / "MapunitRaster_30m.tif") as ds:
        return ds.read(1), ds.transform


def pipe_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""), delimiter="|"))


def write_pipe_rows(path: Path, rows: list[list[str]]) -> None:
    """Rows back into the WSS pipe form (all fields quoted: the reader must not depend on quoting)."""
    out = io.StringIO()
    csv.writer(out, delimiter="|", quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8", newline="")


def copy_export(tmp_path: Path, source: Path = WSS) -> Path:
    return Path(shutil.copytree(source, tmp_path / source.name))


def fixture_frames() -> dict[SsurgoTable, pd.DataFrame]:
    """The fixture's pipe tables as DataFrames of text with the SSURGO column names (as a caller holds them)."""
    frames = {}
    for table, schema in SCHEMAS.items():
        rows = pipe_rows(WSS / "tabular" / schema.pipe_file)
        frames[table] = pd.DataFrame(rows, columns=list(schema.columns))
    return frames


# --- the tables and the averages -----------------------------------------------------------------


@pytest.mark.parametrize("export", [WSS, CSV_EXPORT], ids=["wss-pipe", "gssurgo-csv"])
def test_averages_match_hand_computation(export: Path):
    props = mapunit_properties(read_tables(str(export)))
    pd.testing.assert_frame_equal(props, expected_frame(), check_exact=False, rtol=1e-12, atol=0)
    assert props.index.dtype == np.int64


def test_deeper_interval_skips_horizons_without_a_value():
    props = mapunit_properties(read_tables(str(WSS)), top_cm=0, bottom_cm=100)
    # Laposa: A 0-8, Bw1 8-25, Bw2 25-53, Bk 53-81 (1 dS/m, 45 % sand); R 81-152 has ec_r null but
    # sandtotal_r 0 in the survey, so ECe ignores it and sand counts it over 81-100 cm.
    assert props.loc[53268, "ece"] == pytest.approx(1.0)
    assert props.loc[53268, "sand"] == pytest.approx(45.0 * 81 / 100)
    # Gachado: R 30-152 carries no value at all, so 0-100 cm is 0-30 cm.
    assert props.loc[53288, "sand"] == pytest.approx(GACHADO["sand"])
    # Indio: Ap 0-10 (14.3 % sand), C 10-152 (63.1 %).
    assert props.loc[53262, "sand"] == pytest.approx((14.3 * 10 + 63.1 * 90) / 100)


def test_interval_must_be_ordered():
    with pytest.raises(ValueError, match="top_cm < bottom_cm"):
        mapunit_properties(read_tables(str(WSS)), top_cm=30, bottom_cm=30)


def test_schema_matches_the_exports_own_column_metadata():
    listed: dict[str, list[tuple[int, str]]] = {}
    for fields in pipe_rows(WSS / "tabular" / "mstabcol.txt"):
        listed.setdefault(fields[0], []).append((int(fields[1]), fields[2]))
    for table, schema in SCHEMAS.items():
        assert schema.columns == tuple(name for _, name in sorted(listed[table]))
    files = {fields[0]: fields[4] for fields in pipe_rows(WSS / "tabular" / "mstab.txt")}
    assert {t: s.pipe_file for t, s in SCHEMAS.items()} == {t: f"{files[t]}.txt" for t in SsurgoTable}


def test_export_without_metadata_tables_reads_by_the_2_3_3_layout(tmp_path: Path):
    export = copy_export(tmp_path)
    (export / "tabular" / "mstab.txt").unlink()
    (export / "tabular" / "mstabcol.txt").unlink()
    pd.testing.assert_frame_equal(mapunit_properties(read_tables(str(export))), expected_frame())


def test_columns_are_found_where_the_exports_mstabcol_puts_them(tmp_path: Path):
    """A later SSURGO version with a new first chorizon column: the export's own mstabcol says so."""
    export = copy_export(tmp_path)
    tabular = export / "tabular"
    horizons = pipe_rows(tabular / "chorizon.txt")
    write_pipe_rows(tabular / "chorizon.txt", [["new value", *row] for row in horizons])
    metadata = pipe_rows(tabular / "mstabcol.txt")
    shifted = [[r[0], str(int(r[1]) + (r[0] == "chorizon")), *r[2:]] for r in metadata]
    write_pipe_rows(tabular / "mstabcol.txt", [["chorizon", "1", "newcolumn", *metadata[0][3:]], *shifted])
    pd.testing.assert_frame_equal(mapunit_properties(read_tables(str(export))), expected_frame())
    (tabular / "mstabcol.txt").unlink()  # without it the 2.3.3 order no longer fits the rows
    with pytest.raises(
        InputDataError, match=r"chorizon.txt: line 1: 172 fields, but the chorizon table has 171"
    ):
        read_tables(str(export))


def test_tables_from_frames_equal_the_files():
    frames = fixture_frames()
    tables = tables_from_frames(*frames.values())
    pd.testing.assert_frame_equal(mapunit_properties(tables), expected_frame())


# --- hypothesis: the averaging rule ---------------------------------------------------------------

profiles = st.lists(
    st.tuples(st.integers(1, 40), st.floats(0, 50), st.floats(0, 100)), min_size=1, max_size=6
)  # (thickness cm, ec, sand) per horizon, stacked from 0 cm


def profile_tables(components: list[tuple[int, list[tuple[int, float, float]]]]) -> SsurgoTables:
    """Map unit 1 made of the given (comppct_r, horizons) components."""
    comp_rows, hz_rows = [], []
    for c, (pct, horizons) in enumerate(components):
        comp_rows.append({"mukey": 1, "cokey": f"c{c}", "comppct_r": pct})
        top = 0
        for thickness, ec, sand in horizons:
            hz_rows.append({"cokey": f"c{c}", "hzdept_r": top, "hzdepb_r": top + thickness, "ec_r": ec,
                            "sandtotal_r": sand, "claytotal_r": 100 - sand})  # fmt: skip
            top += thickness
    return tables_from_frames(pd.DataFrame({"mukey": [1]}), pd.DataFrame(comp_rows), pd.DataFrame(hz_rows))


def split(horizons: list[tuple[int, float, float]], cuts: list[int]) -> list[tuple[int, float, float]]:
    """The same profile with horizon i cut into two at cuts[i] cm (where it is thick enough)."""
    out = []
    for (thickness, ec, sand), cut in zip(horizons, cuts + [0] * len(horizons), strict=False):
        if 0 < cut < thickness:
            out += [(cut, ec, sand), (thickness - cut, ec, sand)]
        else:
            out.append((thickness, ec, sand))
    return out


@settings(max_examples=60, deadline=None)
@given(
    horizons=profiles,
    cuts=st.lists(st.integers(1, 39), max_size=6),
    top=st.integers(0, 40),
    depth=st.integers(1, 60),
)
def test_splitting_horizons_that_tile_the_interval_changes_nothing(horizons, cuts, top, depth):
    whole = mapunit_properties(profile_tables([(100, horizons)]), top, top + depth)
    parts = mapunit_properties(profile_tables([(100, split(horizons, cuts))]), top, top + depth)
    pd.testing.assert_frame_equal(whole, parts, check_exact=False, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    components=st.lists(st.tuples(st.integers(1, 16), profiles), min_size=1, max_size=3),
    scale=st.integers(1, 2),  # shares stay <= 96 %
    seed=st.integers(0, 2**16),
)
def test_average_is_bounded_order_free_and_depends_on_shares_only(components, scale, seed):
    props = mapunit_properties(profile_tables(components)).loc[1]
    in_interval = [h for _, hz in components for h in _within(hz, 0, 30)]
    if not in_interval:
        assert props.isna().all()
        return
    assert min(h[1] for h in in_interval) - 1e-9 <= props["ece"] <= max(h[1] for h in in_interval) + 1e-9
    order = np.random.default_rng(seed).permutation(len(components))
    reordered = mapunit_properties(profile_tables([components[i] for i in order])).loc[1]
    scaled = mapunit_properties(profile_tables([(pct * scale, hz) for pct, hz in components])).loc[1]
    np.testing.assert_allclose(reordered.to_numpy(), props.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(scaled.to_numpy(), props.to_numpy(), rtol=1e-9)


def _within(
    horizons: list[tuple[int, float, float]], top: int, bottom: int
) -> list[tuple[int, float, float]]:
    out, depth = [], 0
    for h in horizons:
        if depth < bottom and depth + h[0] > top:
            out.append(h)
        depth += h[0]
    return out


# --- per pixel: on a grid, at points, as COGs -----------------------------------------------------


def test_on_the_rasters_own_grid_each_pixel_gets_its_units_values():
    keys, transform = raster_keys()
    layers = survey_on_grid(str(WSS), RASTER_CRS, transform, keys.shape)
    expected = expected_frame()
    for (row, col), key in np.ndenumerate(keys):
        if key == MUKEY_NODATA:
            assert layers.mukey[row, col] == NO_MAPUNIT and np.isnan(layers.ece[row, col])
            continue
        assert layers.mukey[row, col] == key
        for name in ("ece", "sand", "clay"):
            np.testing.assert_allclose(getattr(layers, name)[row, col], expected.loc[key, name], rtol=1e-6)
    assert layers.ece.dtype == np.float32 and layers.mukey.dtype == np.int64


def test_warped_onto_another_crs_each_pixel_takes_the_unit_under_its_centre():
    keys, transform = raster_keys()
    # A 10 m UTM 11N grid over the key raster and beyond it.
    to_utm = Transformer.from_crs(RASTER_CRS, "EPSG:32611", always_xy=True)
    x0, y0 = to_utm.transform(transform.c - 45, transform.f + 45)
    grid = Affine(10.0, 0.0, round(x0), 0.0, -10.0, round(y0))
    shape = (33, 40)
    layers = survey_on_grid(str(WSS), "EPSG:32611", grid, shape)
    cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
    x, y = grid @ (cols, rows)
    sx, sy = Transformer.from_crs("EPSG:32611", RASTER_CRS, always_xy=True).transform(x, y)
    src_col, src_row = ~transform @ (sx, sy)
    # Skip centres within 0.1 px of a source pixel edge (GDAL's approximate transformer may round either way).
    clear = (np.abs(src_col - np.round(src_col)) > 0.1) & (np.abs(src_row - np.round(src_row)) > 0.1)
    inside = (src_col >= 0) & (src_col < keys.shape[1]) & (src_row >= 0) & (src_row < keys.shape[0])
    under = np.full(shape, MUKEY_NODATA, dtype=np.int64)
    under[inside] = keys[src_row[inside].astype(int), src_col[inside].astype(int)]
    expected_keys = np.where(under == MUKEY_NODATA, NO_MAPUNIT, under)
    assert clear.sum() > 0.6 * clear.size and (clear & ~inside).any() and (clear & inside).any()
    np.testing.assert_array_equal(layers.mukey[clear], expected_keys[clear])
    ece = expected_frame()["ece"].reindex(expected_keys[clear].ravel()).to_numpy()
    np.testing.assert_allclose(layers.ece[clear], ece, rtol=1e-6)


def test_points_take_the_unit_of_their_pixel():
    _, transform = raster_keys()
    rows = np.array([0, 2, 2, 4, 5, 1])
    cols = np.array([0, 4, 5, 1, 7, 6])
    x, y = transform @ (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs(RASTER_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    lon = np.append(lon, -100.0)  # far outside the raster
    lat = np.append(lat, 40.0)
    survey = load_survey(str(WSS))
    layers = sample_survey(survey, lon, lat)
    expected_keys = [53258, 53262, NO_MAPUNIT, 53269, 53288, 53268, NO_MAPUNIT]  # (2, 5) is nodata
    np.testing.assert_array_equal(layers.mukey, expected_keys)
    ece = expected_frame()["ece"].reindex(expected_keys).to_numpy()
    np.testing.assert_allclose(layers.ece, ece, rtol=1e-6)
    assert sample_survey(survey, np.array([]), np.array([])).ece.shape == (0,)


def test_a_survey_loaded_for_one_interval_refuses_another():
    survey = load_survey(str(WSS), 0, 30)
    with pytest.raises(ValueError, match="0-30 cm, not 0-50 cm"):
        sample_survey(survey, np.array([-114.35]), np.array([32.68]), bottom_cm=50)


def test_cli_writes_cogs_on_the_rasters_grid(tmp_path: Path):
    result = runner.invoke(app, ["survey", str(CSV_EXPORT), str(tmp_path / "out"), "--bottom-cm", "100"])
    assert result.exit_code == 0, result.output
    keys, transform = raster_keys(CSV_EXPORT)
    expected = mapunit_properties(read_tables(str(WSS)), 0, 100)
    for name in ("ece", "sand", "clay"):
        with rasterio.open(tmp_path / "out" / f"{name}.tif") as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.transform == transform and ds.crs.to_epsg() == 5070 and ds.shape == keys.shape
            assert ds.tags()["depth_cm"] == "0-100"
            values = ds.read(1)
        want = np.where(
            keys == MUKEY_NODATA, np.nan, expected[name].reindex(keys.ravel()).to_numpy().reshape(keys.shape)
        )
        np.testing.assert_allclose(values, want, rtol=1e-6)
    assert "ece" in result.output and "5 of 7" in result.output


def test_cli_names_the_folder_without_tables(tmp_path: Path):
    result = runner.invoke(app, ["survey", str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert str(tmp_path) in message and "no SSURGO tables found" in message
    assert not (tmp_path / "out").exists()


def test_from_and_to_s3(tmp_path: Path, s3):
    s3.filesystem().put(str(WSS), f"{s3.bucket}/ssurgo/AZ649", recursive=True)
    keys, transform = raster_keys()
    layers = survey_on_grid(s3.url("ssurgo/AZ649"), RASTER_CRS, transform, keys.shape)
    assert layers.mukey[0, 0] == 53258 and layers.ece[0, 0] == pytest.approx(HARQUA_TREMANT["ece"])
    written = write_survey_cogs(s3.url("ssurgo/AZ649"), s3.url("derived"))
    assert written["clay"] == s3.url("derived/clay.tif")
    with rasterio.open(f"/vsis3/{s3.bucket}/derived/clay.tif") as ds:
        assert ds.read(1)[0, 0] == pytest.approx(HARQUA_TREMANT["clay"])


# --- the writer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(TableForm))
def test_write_then_read_gives_the_same_survey(tmp_path: Path, form: TableForm):
    keys, transform = raster_keys()
    frames = fixture_frames()
    mukey = np.where(keys == MUKEY_NODATA, NO_MAPUNIT, keys)
    files = write_ssurgo(tmp_path / "export", mukey, RASTER_CRS, transform, *frames.values(), form=form)
    assert files.raster.name == "MapunitRaster_30m.tif"
    assert find_mukey_raster(str(tmp_path / "export")).endswith("MapunitRaster_30m.tif")
    pd.testing.assert_frame_equal(mapunit_properties(read_tables(str(tmp_path / "export"))), expected_frame())
    with rasterio.open(files.raster) as ds:
        assert ds.nodata == MUKEY_NODATA and ds.dtypes[0] == "int32"
        np.testing.assert_array_equal(ds.read(1), keys)
        assert ds.crs.to_epsg() == 5070 and ds.transform == transform


def test_written_pipe_tables_hold_every_field_of_the_real_rows(tmp_path: Path):
    keys, transform = raster_keys()
    mukey = np.where(keys == MUKEY_NODATA, NO_MAPUNIT, keys)
    files = write_ssurgo(tmp_path, mukey, RASTER_CRS, transform, *fixture_frames().values())
    for table, path in files.tables.items():
        assert pipe_rows(path) == pipe_rows(WSS / "tabular" / SCHEMAS[table].pipe_file)
    written = (files.tables[SsurgoTable.COMPONENT]).read_bytes()
    assert b"|Yes|" in written and b'|"53258"|' in written and written.endswith(b"\r\n")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ec=st.lists(st.floats(0, 15000), min_size=3, max_size=3),
    sand=st.lists(st.floats(0, 100), min_size=3, max_size=3),
    form=st.sampled_from(list(TableForm)),
)
def test_any_float_survives_the_round_trip(tmp_path_factory, ec, sand, form):
    folder = tmp_path_factory.mktemp("export")
    mapunit = pd.DataFrame({"mukey": [7], "muname": ['Odd "quoted", name|with pipe']})
    component = pd.DataFrame({"mukey": [7], "cokey": ["c1"], "comppct_r": [100], "majcompflag": ["Yes"]})
    chorizon = pd.DataFrame({"cokey": ["c1"] * 3, "chkey": ["h1", "h2", "h3"], "hzdept_r": [0, 10, 20],
                             "hzdepb_r": [10, 20, 30], "ec_r": ec, "sandtotal_r": sand, "claytotal_r": [None] * 3})  # fmt: skip
    write_ssurgo(
        folder,
        np.full((2, 2), 7),
        RASTER_CRS,
        Affine(30, 0, 0, 0, -30, 60),
        mapunit,
        component,
        chorizon,
        form=form,
    )
    read = read_tables(str(folder))
    np.testing.assert_array_equal(read.chorizon["ec_r"], ec)
    np.testing.assert_array_equal(read.chorizon["sandtotal_r"], sand)
    assert read.chorizon["claytotal_r"].isna().all()
    props = mapunit_properties(read)
    assert props.loc[7, "ece"] == pytest.approx(sum(ec) / 3, rel=1e-12, abs=1e-12)


def test_writer_refuses_what_the_reader_would(tmp_path: Path):
    frames = fixture_frames()
    grid = (RASTER_CRS, Affine(30, 0, 0, 0, -30, 60))
    with pytest.raises(ValueError, match=r"keys not in the mapunit table.*\[99\]"):
        write_ssurgo(tmp_path, np.full((2, 2), 99), *grid, *frames.values())
    with pytest.raises(ValueError, match="not SSURGO component column"):
        write_ssurgo(tmp_path, np.full((2, 2), 53258), *grid, frames[SsurgoTable.MAPUNIT],
                     frames[SsurgoTable.COMPONENT].assign(comp_pct=1), frames[SsurgoTable.CHORIZON])  # fmt: skip
    bad = frames[SsurgoTable.CHORIZON].copy()
    bad.loc[0, "hzdept_r"] = "2.5"
    with pytest.raises(ValueError, match="Integer column"):
        write_ssurgo(tmp_path, np.full((2, 2), 53258), *grid, frames[SsurgoTable.MAPUNIT],
                     frames[SsurgoTable.COMPONENT], bad)  # fmt: skip
    assert not list(tmp_path.iterdir())


# --- bad input ------------------------------------------------------------------------------------


def edit_field(path: Path, line: int, column: str, value: str) -> None:
    """Set one field of a fixture pipe table (line = record number, as the files hold one per line)."""
    table = next(t for t, schema in SCHEMAS.items() if schema.pipe_file == path.name)
    rows = pipe_rows(path)
    rows[line - 1][SCHEMAS[table].columns.index(column)] = value
    write_pipe_rows(path, rows)


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "message"),
    [
        (
            "chorizon.txt",
            4,
            "ec_r",
            "12 dS/m",
            r"chorizon.txt: line 4, column 'ec_r': '12 dS/m' is not a number",
        ),
        (
            "chorizon.txt",
            5,
            "sandtotal_r",
            "-1",
            r"chorizon.txt: line 5, column 'sandtotal_r': -1 is outside",
        ),
        (
            "chorizon.txt",
            2,
            "hzdepb_r",
            "0",
            r"chorizon.txt: line 2: horizon bottom hzdepb_r=0 cm lies above",
        ),
        ("comp.txt", 6, "comppct_r", "many", r"comp.txt: line 6, column 'comppct_r': 'many' is not a number"),
        ("comp.txt", 2, "cokey", "", r"comp.txt: line 2, column 'cokey': no key"),
        (
            "mapunit.txt",
            3,
            "mukey",
            "MU-3",
            r"mapunit.txt: line 3, column 'mukey': 'MU-3' is not a map unit key",
        ),
        ("mapunit.txt", 4, "mukey", "53262", r"mapunit.txt: mukey 53262 appears more than once"),
    ],
)
def test_bad_value_is_named_with_file_line_and_column(tmp_path: Path, file, line, column, value, message):
    export = copy_export(tmp_path)
    edit_field(export / "tabular" / file, line, column, value)
    with pytest.raises(InputDataError, match=message):
        read_tables(str(export))


def test_missing_table_is_named(tmp_path: Path):
    export = copy_export(tmp_path)
    (export / "tabular" / "comp.txt").unlink()
    with pytest.raises(InputDataError, match=r"tabular/comp.txt: missing"):
        read_tables(str(export))
    csv_export = copy_export(tmp_path, CSV_EXPORT)
    (csv_export / "chorizon.csv").unlink()
    with pytest.raises(InputDataError, match=r"chorizon.csv: missing"):
        load_survey(str(csv_export))


def test_row_with_a_field_too_few_is_named_with_its_line(tmp_path: Path):
    export = copy_export(tmp_path)
    path = export / "tabular" / "chorizon.txt"
    rows = pipe_rows(path)
    rows[2] = rows[2][:-1]
    write_pipe_rows(path, rows)
    with pytest.raises(
        InputDataError, match=r"chorizon.txt: line 3: 170 fields, but the chorizon table has 171"
    ):
        read_tables(str(export))


def test_csv_row_with_an_extra_field_and_missing_header_column(tmp_path: Path):
    export = copy_export(tmp_path, CSV_EXPORT)
    path = export / "component.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:4], lines[4] + ",extra", *lines[5:]]) + "\n")
    with pytest.raises(InputDataError, match=r"component.csv: line 5: 110 fields, but the header has 109"):
        read_tables(str(export))
    path.write_text("\n".join([lines[0].replace("comppct_r", "comppct_rv"), *lines[1:]]) + "\n")
    with pytest.raises(InputDataError, match=r"component.csv: no column\(s\) \['comppct_r'\] in the header"):
        read_tables(str(export))


def test_out_of_range_clay_is_named(tmp_path: Path):
    export = copy_export(tmp_path, CSV_EXPORT)
    frame = pd.read_csv(export / "chorizon.csv", dtype=str, keep_default_na=False)
    frame.loc[5, "claytotal_r"] = "140"
    frame.to_csv(export / "chorizon.csv", index=False)
    with pytest.raises(InputDataError, match=r"chorizon.csv: line 7, column 'claytotal_r': 140 is outside"):
        read_tables(str(export))


def test_component_percentages_above_100_are_refused_beyond_rounding(tmp_path: Path):
    export = copy_export(tmp_path)
    path = export / "tabular" / "comp.txt"
    harqua = next(i for i, row in enumerate(pipe_rows(path), 1) if row[3] == "Harqua")
    edit_field(path, harqua, "comppct_r", "46")  # 46 + 15 + 40 = 101: rounding
    read_tables(str(export))
    edit_field(path, harqua, "comppct_r", "60")  # 115
    with pytest.raises(InputDataError, match=r"comp.txt: map unit 53258: comppct_r sums to 115 %"):
        read_tables(str(export))


def test_raster_key_absent_from_mapunit_is_named(tmp_path: Path):
    export = copy_export(tmp_path)
    path = export / "tabular" / "mapunit.txt"
    write_pipe_rows(path, [row for row in pipe_rows(path) if row[-1] != "53288"])
    keys, transform = raster_keys()
    with pytest.raises(InputDataError, match=r"MapunitRaster_30m.tif: 1 map unit key\(s\) in the raster are not in "
                                             r".*mapunit.txt: 53288"):  # fmt: skip
        survey_on_grid(str(export), RASTER_CRS, transform, keys.shape)
    result = runner.invoke(app, ["survey", str(export), str(tmp_path / "out")])
    assert result.exit_code == 1 and "53288" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_the_key_raster_must_be_unambiguous(tmp_path: Path):
    export = copy_export(tmp_path)
    shutil.copy(export / "MapunitRaster_30m.tif", export / "MapunitRaster_10m.tif")
    with pytest.raises(InputDataError, match=r"expected one map-unit key GeoTIFF.*found MapunitRaster"):
        load_survey(str(export))


def test_unreadable_key_raster_is_named(tmp_path: Path):
    export = copy_export(tmp_path)
    (export / "MapunitRaster_30m.tif").write_bytes(b"II*\x00 not really a tiff")
    keys, transform = raster_keys()
    with pytest.raises(InputDataError, match=r"MapunitRaster_30m.tif: cannot read the map-unit key raster"):
        survey_on_grid(str(export), RASTER_CRS, transform, keys.shape)
