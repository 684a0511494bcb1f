"""deepsalt.io.read_lab_spectra on real Bruker OPUS files and the OSSL KSSL-style MIR table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from brukeropus import read_opus
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsalt.errors import InputDataError
from deepsalt.io import read_lab_spectra
from deepsalt.spectra import KSSL_WAVENUMBERS
from tests.conftest import FIXTURES

OPUS = FIXTURES / "lab" / "opus"
OSSL_MIR = FIXTURES / "lab" / "ossl" / "sample_mir_data.csv"

# (file, points, first and last wavenumber in cm⁻¹) as stored in each file's absorbance (or, for
# test_spectra.0, reflectance) block.
OPUS_FILES = [
    ("617262_1TP_C-1_A5.0", 3578, 7497.698, 599.739),
    ("629266_1TP_A-1_C1.0", 3578, 7497.969, 599.760),
    ("BF_lo_01_soil_cal.1", 1716, 3997.397, 499.675),
    ("test_spectra.0", 4819, 7498.292, 599.921),
    ("235157XS01.0", 3578, 7498.043, 599.766),
    ("icr056141.0", 1715, 3996.481, 499.815),
]


@pytest.mark.parametrize(("name", "points", "first", "last"), OPUS_FILES)
def test_each_opus_file_keeps_its_own_grid(name: str, points: int, first: float, last: float):
    spectra = read_lab_spectra(str(OPUS / name))
    assert spectra.dims == ("sample", "wavenumber")
    assert spectra.shape == (1, points)
    assert float(spectra.wavenumber[0]) == pytest.approx(first, abs=1e-3)
    assert float(spectra.wavenumber[-1]) == pytest.approx(last, abs=1e-3)
    assert spectra.sample_id.values.tolist() == [name]
    assert np.isfinite(spectra.values).all()


def test_opus_absorbance_values_are_the_files():
    spectra = read_lab_spectra(str(OPUS / "BF_lo_01_soil_cal.1"))
    np.testing.assert_allclose(spectra.values[0], read_opus(str(OPUS / "BF_lo_01_soil_cal.1")).a.y, rtol=1e-6)
    assert spectra.values[0, 0] == pytest.approx(0.12397847)


def test_opus_reflectance_only_file_becomes_absorbance():
    reflectance = read_opus(str(OPUS / "test_spectra.0")).r.y
    spectra = read_lab_spectra(str(OPUS / "test_spectra.0"))
    np.testing.assert_allclose(spectra.values[0], -np.log10(reflectance), rtol=1e-5)


def test_opus_files_on_different_grids_go_onto_kssl_grid():
    spectra = read_lab_spectra([str(OPUS / name) for name, *_ in OPUS_FILES])
    assert spectra.shape == (len(OPUS_FILES), 1765)
    np.testing.assert_array_equal(spectra.wavenumber.values, KSSL_WAVENUMBERS)
    alpha = spectra.isel(sample=2)  # BF_lo: ALPHA, measured only up to 3997.4 cm⁻¹
    assert np.isnan(alpha.values[KSSL_WAVENUMBERS > 3997.4]).all()
    assert np.isfinite(alpha.values[KSSL_WAVENUMBERS < 3997.0]).all()
    original = read_opus(str(OPUS / "BF_lo_01_soil_cal.1")).a
    at_2000 = np.interp(KSSL_WAVENUMBERS[1040], original.x[::-1], original.y[::-1])
    assert float(alpha[1040]) == pytest.approx(at_2000, rel=1e-6)


def test_ossl_csv_has_1765_wavenumbers():
    spectra = read_lab_spectra(str(OSSL_MIR))
    assert spectra.shape == (20, 1765)
    assert float(spectra.wavenumber[0]) == pytest.approx(4001.656)
    assert float(spectra.wavenumber[-1]) == pytest.approx(599.7661)
    assert spectra.sample_id.values[:3].tolist() == ["1", "2", "3"]
    assert spectra.values[0, 0] == pytest.approx(0.4108373, rel=1e-6)
    assert spectra.dtype == np.float32


def test_csv_with_coordinates_and_labels(tmp_path: Path):
    lines = OSSL_MIR.read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:4]]
    extra = [
        ["52.4", "13.1", "0-10", "3.5"],
        ["40.0", "-100.5", "10-20", "12.0"],
        ["35.1", "-119.9", "0-10", "0.4"],
    ]
    table = tmp_path / "lab.csv"
    table.write_text(
        "\n".join(
            [",".join([header[0], "Latitude", "LON", "Depth", "ECe", *header[1:]])]
            + [",".join([r[0], *e, *r[1:]]) for r, e in zip(rows, extra, strict=True)]
        )
    )
    spectra = read_lab_spectra(str(table))
    assert spectra.shape == (3, 1765)
    assert spectra.lat.values.tolist() == [52.4, 40.0, 35.1]
    assert spectra.lon.values.tolist() == [13.1, -100.5, -119.9]
    assert spectra.depth.values.tolist() == ["0-10", "10-20", "0-10"]
    assert spectra.ece.values.tolist() == [3.5, 12.0, 0.4]


def test_csv_and_opus_together_share_coords(tmp_path: Path):
    spectra = read_lab_spectra([str(OSSL_MIR), str(OPUS / "617262_1TP_C-1_A5.0")])
    assert spectra.shape == (21, 1765)
    assert spectra.sample_id.values[-1] == "617262_1TP_C-1_A5.0"


def test_read_from_s3(s3):
    fs = s3.filesystem()
    fs.put(str(OPUS / "BF_lo_01_soil_cal.1"), f"{s3.bucket}/lab/BF_lo_01_soil_cal.1")
    fs.put(str(OSSL_MIR), f"{s3.bucket}/lab/mir.csv")
    assert read_lab_spectra(s3.url("lab/BF_lo_01_soil_cal.1")).shape == (1, 1716)
    assert read_lab_spectra(s3.url("lab/mir.csv")).shape == (20, 1765)


def test_not_an_opus_file(tmp_path: Path):
    bad = tmp_path / "spectrum.0"
    bad.write_bytes(
        (FIXTURES / "enmap" / "enmap_potsdam_tile_128_0.tif").read_bytes()[:4096]
    )  # a TIFF header
    with pytest.raises(InputDataError, match=r"spectrum\.0: not a Bruker OPUS file"):
        read_lab_spectra(str(bad))


def test_csv_without_wavenumber_columns(tmp_path: Path):
    bad = tmp_path / "labels.csv"
    bad.write_text("id,ece,ph\na,1.0,7.1\n")
    with pytest.raises(InputDataError, match=r"labels\.csv: no wavenumber columns"):
        read_lab_spectra(str(bad))


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputDataError, match=r"absent\.0: file not found"):
        read_lab_spectra(str(tmp_path / "absent.0"))


def test_yamsys_table_with_labels():
    # yamsys MIR (Bruker ALPHA, every 4th wavenumber) with C and clay labels; replicate scans share
    # a sample_id and are told apart by file_id
    spectra = read_lab_spectra(str(FIXTURES / "estimator" / "yamsys_mir_every4th.csv.gz"))
    assert spectra.shape == (284, 429)
    assert float(spectra.wavenumber[0]) == pytest.approx(3997.4)
    assert spectra.sample_id.values[0] == "BF_lo_01_soil_cal"
    assert spectra.file_id.values[:2].tolist() == ["BF_lo_01_soil_cal.0", "BF_lo_01_soil_cal.1"]
    assert spectra.c.values[0] == pytest.approx(6.9237)  # rounded in the fixture
    assert spectra.clay.values[0] == pytest.approx(9.18)


def _table(tmp_path: Path, header: list[str], rows: list[list[str]], every: int = 1) -> str:
    """A lab table: ``header`` and ``rows``, then every ``every``-th wavenumber of an OSSL MIR row."""
    spectral = OSSL_MIR.read_text().splitlines()[0].split(",")[1:][::every]
    values = OSSL_MIR.read_text().splitlines()[1].split(",")[1:][::every]
    path = tmp_path / "lab.csv"
    path.write_text(
        "\n".join([",".join([*header, *spectral])] + [",".join([*r, *values]) for r in rows]) + "\n"
    )
    return str(path)


@settings(max_examples=25, deadline=None)
@given(
    ece=st.lists(st.floats(0, 200, allow_nan=False).map(lambda v: f"{v:.3f}"), min_size=2, max_size=8),
    bad=st.data(),
)
def test_a_negative_ece_anywhere_is_refused_naming_its_row(tmp_path_factory, ece: list[str], bad):
    row = bad.draw(st.integers(0, len(ece) - 1))
    value = bad.draw(st.floats(-100, -0.001).map(lambda v: f"{v:.3f}"))
    ece[row] = value
    rows = [[f"S{i}", "36.4", "-120.3", v] for i, v in enumerate(ece)]
    # every 8th wavenumber (221 columns, still a spectrum the reader accepts): reading the OSSL
    # row's full 1765 columns took ~0.5 s per example here, and the check is on the ECe column
    url = _table(tmp_path_factory.mktemp("lab"), ["id", "lat", "lon", "ece"], rows, every=8)
    with pytest.raises(InputDataError) as refused:
        read_lab_spectra(url)
    assert str(refused.value) == (
        f"{url}: row {row + 1} (sample 'S{row}', line {row + 2}), column 'ece': "
        f"{float(value):g} is negative (ECe is at least 0 dS/m)"
    )


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["id", "lat", "lon", "EC_e"], [["a", "1", "2", "3"]], None),  # another label: not ECe, kept
        (["id", "lat", "lon", "ece"], [["a", "1", "2", ""]], None),  # unlabelled sample: kept
        (
            ["id", "lat", "lon", "ece"],
            [["a", "1", "2", "3 dS/m"]],
            r"row 1 \(sample 'a', line 2\), column 'ece': '3 dS/m' is not a number",
        ),
        (
            ["id", "lat", "lon", "ece", "ECE"],
            [["a", "1", "2", "3", "3"]],
            r"columns 'ece' and 'ECE' \(column 5\) hold the same quantity",
        ),
        (
            ["id", "Latitude", "lon", "lat"],
            [["a", "1", "2", "1"]],
            r"columns 'Latitude' and 'lat' \(column 4\)",
        ),
        (
            ["id", "lat", "lon"],
            [["a", "1", "2"], ["b", "", "2"]],
            r"row 2 \(sample 'b', line 3\), column 'lat': the coordinate is missing",
        ),
        (
            ["id", "lat", "lon"],
            [["a", "91", "2"]],
            r"row 1 \(sample 'a', line 2\), column 'lat': 91 is outside \[-90, 90\] degrees",
        ),
        (["id", "lat"], [["a", "1"]], r"has a 'lat' column but no 'lon' column"),
    ],
)
def test_lab_tables_are_refused_not_repaired(tmp_path: Path, header, rows, message):
    url = _table(tmp_path, header, rows)
    if message is None:
        assert read_lab_spectra(url).shape[0] == len(rows)
        return
    with pytest.raises(InputDataError, match=rf"^{re.escape(url)}: {message}"):
        read_lab_spectra(url)
