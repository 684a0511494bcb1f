"""``deepsalt demo``: DeepSalt's map and the best baseline's map, made by the same pipeline and scored
against the world's truth on the same pixels, printed side by side and written to map_vs_truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr
from sklearn.metrics import r2_score
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.evaluation.map_accuracy import training_pixel_mask
from deepsalt.synth import load_region

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
runner = CliRunner()
FEW = "{epochs: 2, patience: 1}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    args = [
        "demo", "--quick",
        "--set", f"output={out}",
        "--set", f"train={{data: {{pool_size: 500}}, sau: {FEW}, teacher: {FEW}, student: {FEW}}}",
        "--set", "evaluate.n_folds=2",
        "--set", "evaluate.inner_folds=2",
        "--set", "evaluate.block_size_km=1.5",
        "--set", "evaluate.baselines=[survey_map, gradient_boosting]",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output  # rich prints to stderr


def test_map_vs_truth_holds_deepsalt_and_the_best_baseline_on_the_same_pixels(demo: tuple[Path, str]):
    out, _ = demo
    scores = json.loads((out / "map_vs_truth.json").read_text())
    assert set(scores) == {"deepsalt", "best_baseline"}
    report = json.loads((out / "report" / "metrics.json").read_text())
    assert scores["best_baseline"]["model"] == report["best_baseline"]  # the block CV's choice is mapped
    for entry in scores.values():
        for key in ("mae", "r2", "r2_log", "coverage_95"):
            assert np.isfinite(entry[key]), key
        assert 0 < entry["coverage_95"] <= 1
    assert scores["deepsalt"]["n"] == scores["best_baseline"]["n"] > 1000

    ds = xr.open_zarr(out / "map.zarr", decode_coords="all")
    deep = ds.ece.values
    base = xr.open_zarr(out / "baseline_map.zarr", decode_coords="all").ece.values
    # the same pipeline: both maps predict the same pixels (the survey covers the whole region)
    np.testing.assert_array_equal(np.isfinite(deep), np.isfinite(base))
    assert not np.allclose(deep[np.isfinite(deep)], base[np.isfinite(base)])  # and they are two models

    region = load_region(str(out / "regions" / "demo"))
    truth = rioxarray.open_rasterio(region.truth_url, masked=True).squeeze().values
    samples = pd.read_csv(region.lab_url, usecols=["lat", "lon"])  # measured and MIR-only alike
    near = training_pixel_mask(samples["lat"].to_numpy(), samples["lon"].to_numpy(), ds, 1)
    common = np.isfinite(deep) & np.isfinite(base) & np.isfinite(truth) & ~near
    assert common.sum() == scores["deepsalt"]["n"]
    for name, values in (("deepsalt", deep), ("best_baseline", base)):
        r2_log = r2_score(np.log1p(truth[common]), np.log1p(np.maximum(values[common], 0)))
        assert r2_log == pytest.approx(scores[name]["r2_log"], rel=1e-6)
        assert np.abs(values[common] - truth[common]).mean() == pytest.approx(scores[name]["mae"], rel=1e-6)


def test_demo_prints_both_maps_side_by_side(demo: tuple[Path, str]):
    out, stdout = demo
    scores = json.loads((out / "map_vs_truth.json").read_text())
    text = " ".join(stdout.split())
    assert "map vs truth" in text and f"best baseline: {scores['best_baseline']['model']}" in text
    for key in ("mae", "r2_log"):
        line = next(
            row for row in stdout.splitlines() if row.strip().startswith("MAE" if key == "mae" else "R² of")
        )
        assert f"{scores['deepsalt'][key]:.2f}" in line and f"{scores['best_baseline'][key]:.2f}" in line
