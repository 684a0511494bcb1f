"""``deepsalt evaluate`` end to end on small generated regions: the same rows for every model, seeds,
per-sample rows, tables recomputed from them, the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.config import load_config
from deepsalt.errors import ConfigError
from deepsalt.evaluation.blocks import block_folds, block_ids
from deepsalt.evaluation.config import EvaluateConfig
from deepsalt.evaluation.harness import SEEN, UNSEEN, evaluate_models
from deepsalt.evaluation.models import DeepSaltVariant, Prediction
from deepsalt.evaluation.tables import summarise
from deepsalt.training.data import TrainingData, load_region_samples

runner = CliRunner()
TINY = {"preset": "quick", "data": {"pool_size": 300}, "sau": {"epochs": 2}, "teacher": {"epochs": 2}, "student": {"epochs": 2}}  # fmt: skip
VARIANTS = "{DeepSalt: {}, without SAU: {use_sau: false}}"


def test_config_errors_stop_before_any_work(tmp_path: Path):
    bad = tmp_path / "evaluate.yaml"
    bad.write_text("region: /nowhere\nvariants: {DeepSalt: {use_sau: maybe}}\n")
    result = runner.invoke(app, ["evaluate", "-c", str(bad)])
    assert result.exit_code == 2
    assert "variants.DeepSalt" in result.output and "use_sau" in result.output
    with pytest.raises(ConfigError, match="variants must include 'DeepSalt'"):
        load_config(EvaluateConfig, None, ["region=x", "variants={other: {}}"])
    with pytest.raises(ConfigError, match="'regions', 'output' and 'seed' are set by the evaluator"):
        load_config(EvaluateConfig, None, ["region=x", "variants={DeepSalt: {seed: 3}}"])
    with pytest.raises(ConfigError, match="list the seeds in 'seeds'"):
        load_config(EvaluateConfig, None, ["region=x", "training={seed: 3}"])
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        load_config(EvaluateConfig, None, ["region=x", "seeds=[0, 0]"])
    with pytest.raises(ConfigError, match="n_folds"):
        load_config(EvaluateConfig, None, ["region=x", "n_folds=1"])
    with pytest.raises(ConfigError, match="baselines"):
        load_config(EvaluateConfig, None, ["region=x", "baselines=[svr]"])


def test_missing_map_scores_are_named_before_any_work(tmp_path: Path):
    result = runner.invoke(
        app, ["evaluate", "--set", f"region={tmp_path}", "--set", f"map_scores={tmp_path / 'nope.json'}"]
    )
    assert result.exit_code != 0
    assert "nope.json" in result.output and "map scores not found" in " ".join(result.output.split())


@pytest.fixture(scope="module")
def regions(demo_region, unseen_region) -> dict[str, str]:
    """The small "demo" and "demo_unseen" regions (the session's, see ``tests/conftest.py``)."""
    return {"demo": demo_region.url, "demo_unseen": unseen_region.url}


@pytest.fixture(scope="module")
def seen(regions: dict[str, str]) -> TrainingData:
    return load_region_samples(regions["demo"], 300)


@dataclass
class RecordingModel:
    """A model that remembers what the harness gave it and predicts 0."""

    name: str = "recorder"
    kind: str = "baseline"
    calls: list[dict] = field(default_factory=list)

    def fit_predict(self, train, blocks, tests, run_dir, seed):
        test = tests["test"]
        self.calls.append({"train": train, "blocks": blocks, "test": test, "run_dir": run_dir, "seed": seed})
        return {"test": Prediction(np.zeros(len(test)))}


def test_every_model_trains_on_every_sample_outside_the_held_out_blocks_and_is_scored_on_the_same_rows(
    seen: TrainingData, regions: dict[str, str], tmp_path: Path
):
    unseen = load_region_samples(regions["demo_unseen"], 300)
    blocks = block_ids(seen.lat, seen.lon, "EPSG:32611", 1.5)
    folds = block_folds(blocks, 2, seed=0)
    model = RecordingModel()
    rows = evaluate_models([model], seen, blocks, folds, str(tmp_path), seeds=[3, 5], unseen=unseen)

    scored = seen.paired & seen.measured
    assert not scored.all() and (~seen.measured).any() and (~seen.paired).any()  # the world has all kinds
    for call in model.calls:
        train, test = call["train"], call["test"]
        assert (test.paired & test.measured).all()  # scored rows only
        if "/all/" in call["run_dir"]:  # the unseen region: fitted on every seen sample
            assert len(train) == len(seen)
            assert set(test.sample_id) == set(unseen.sample_id[unseen.paired & unseen.measured])
            continue
        held_out = set(blocks) - set(call["blocks"])
        assert set(train.sample_id) == set(seen.sample_id[~np.isin(blocks, list(held_out))])
        assert (~train.measured).any() and (
            ~train.paired
        ).any()  # MIR-only and unpaired samples are trained on
        assert set(test.sample_id) == set(seen.sample_id[np.isin(blocks, list(held_out)) & scored])
        assert len(train.pool) == len(seen.pool) and len(train.library_ece) == len(seen.library_ece)
    assert [c["seed"] for c in model.calls] == [3, 3, 3, 5, 5, 5]  # two folds and the unseen region per seed
    assert len({c["run_dir"] for c in model.calls}) == 6  # a folder per fit: seeds never share checkpoints
    held = rows[rows["split"] == SEEN]
    for _, per_seed in held.groupby("seed"):  # every scored sample is held out exactly once per seed
        assert sorted(per_seed["sample_id"]) == sorted(seen.sample_id[scored])
    assert set(rows.loc[rows["split"] == UNSEEN, "sample_id"]) == set(
        unseen.sample_id[unseen.paired & unseen.measured]
    )


@pytest.mark.slow
def test_deepsalt_repeats_with_its_seed_and_differs_across_seeds(seen: TrainingData, tmp_path: Path):
    config = EvaluateConfig(region="x", training=TINY, variants={"DeepSalt": {}})
    blocks = block_ids(seen.lat, seen.lon, "EPSG:32611", 1.5)
    train, held_out = block_folds(blocks, 2, seed=0)[0]
    test = seen.subset(held_out[(seen.paired & seen.measured)[held_out]])
    model = DeepSaltVariant("DeepSalt", config)

    def predict(folder: str, seed: int) -> Prediction:
        return model.fit_predict(
            seen.subset(train), blocks[train], {"test": test}, str(tmp_path / folder), seed
        )["test"]

    first, again, other = predict("a", 0), predict("b", 0), predict("c", 1)
    np.testing.assert_array_equal(first.mean, again.mean)  # trained twice from scratch, same seed
    np.testing.assert_array_equal(first.std, again.std)
    assert np.isfinite(first.mean).all()
    assert np.abs(first.mean - other.mean).max() > 1e-3  # another seed is another model


@pytest.fixture(scope="module")
def evaluated(regions: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    args = [
        "evaluate",
        "--set", f"region={regions['demo']}",
        "--set", f"unseen_region={regions['demo_unseen']}",
        "--set", f"output={out}",
        "--set", "n_folds=2",
        "--set", "seeds=[0, 1]",
        "--set", "block_size_km=1.5",
        "--set", "inner_folds=2",
        "--set", "plsr_max_components=5",
        "--set", "baselines=[survey_map, plsr]",
        "--set", f"variants={VARIANTS}",
        "--set", f"training={json.dumps(TINY)}",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(out / "report.md") in result.stdout
    return out


@pytest.mark.slow
def test_every_model_predicts_every_scored_sample_once_per_seed(evaluated: Path):
    rows = pd.read_csv(evaluated / "predictions.csv")
    assert set(rows["model"]) == {
        "survey map (map-unit ECe)",
        "PLSR (inner-CV components)",
        "DeepSalt",
        "without SAU",
        "true pixel ECe (ceiling)",
    }
    assert set(rows["seed"]) == {0, 1}
    seen = rows[rows["split"] == SEEN]
    ids = {key: sorted(part["sample_id"]) for key, part in seen.groupby(["model", "seed"])}
    first = next(iter(ids.values()))
    assert len(first) == len(set(first)) > 20  # one held-out prediction per sample, not per batch
    assert all(v == first for v in ids.values())  # the same rows for every model and seed
    assert (seen.groupby("block")["fold"].nunique() == 1).all()  # a block is held out as a whole
    assert seen["fold"].nunique() == 2
    unseen = rows[rows["split"] == UNSEEN]
    assert unseen.groupby(["model", "seed"])["sample_id"].nunique().nunique() == 1 and len(unseen) > 0
    deep = rows[rows["kind"] == "deepsalt"]
    assert np.isfinite(deep["std"]).all() and (deep["std"] > 0).all()
    assert set(rows.loc[rows["kind"] != "reference", "transform"]) == {"log1p"}


@pytest.mark.slow
def test_survey_map_rows_are_each_samples_map_unit_ece(evaluated: Path, seen: TrainingData):
    rows = pd.read_csv(evaluated / "predictions.csv")
    survey_rows = rows[(rows["model"] == "survey map (map-unit ECe)") & (rows["split"] == SEEN)]
    at_sample = pd.Series(seen.survey, index=seen.sample_id)
    np.testing.assert_allclose(survey_rows["predicted"], at_sample.loc[survey_rows["sample_id"]], rtol=1e-6)
    assert (survey_rows.groupby("sample_id")["predicted"].nunique() == 1).all()  # the same for every seed


@pytest.mark.slow
def test_tables_and_targets_are_recomputed_from_the_per_sample_rows(evaluated: Path):
    """Every number of metrics.json (and so of the report) follows from predictions.csv alone."""
    rows = pd.read_csv(evaluated / "predictions.csv")
    written = json.loads((evaluated / "metrics.json").read_text())
    again = json.loads(json.dumps(summarise(rows, ablations=["without SAU"]).record(), default=float))
    assert again.keys() == written.keys()
    for key in ("seeds", "best_baseline"):
        assert again[key] == written[key]
    for key in ("summary", "per_seed", "differences", "targets"):
        _assert_close(again[key], written[key])
    names = [t["name"] for t in written["targets"]]
    assert names == [
        "MAE vs the best baseline, held-out blocks",
        "R² of log1p above the best baseline's, held-out blocks",
        "MAE vs the best baseline, unseen region",
        "R² of log1p, held-out blocks",
        "removing SAU costs MAE, held-out blocks",
        "95 % interval coverage, held-out blocks",
        "95 % interval coverage, unseen region",
    ]
    assert written["best_baseline"] in {"survey map (map-unit ECe)", "PLSR (inner-CV components)"}
    diffs = {(d["model"], d["other"], d["split"], d["metric"]) for d in written["differences"]}
    assert ("DeepSalt", written["best_baseline"], SEEN, "mae") in diffs
    assert ("without SAU", "DeepSalt", UNSEEN, "r2_log") in diffs


def _assert_close(a: list[dict], b: list[dict]) -> None:
    """Records equal up to float round-off (the CSV's decimal floats)."""
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float) and isinstance(y[key], float):
                assert x[key] == pytest.approx(y[key], nan_ok=True), key
            else:
                assert x[key] == y[key], key


@pytest.mark.slow
def test_reference_row_is_the_truth_of_each_samples_pixel(evaluated: Path, regions: dict[str, str]):
    """The ceiling row holds the truth raster's value at each sample, seen and unseen alike, and
    the samples (sub-pixel heterogeneity, lab error) scatter around it without matching it."""
    from deepsalt.evaluation.reference import pixel_values
    from deepsalt.synth import load_region

    rows = pd.read_csv(evaluated / "predictions.csv")
    reference = rows[(rows["model"] == "true pixel ECe (ceiling)") & (rows["seed"] == 0)]
    assert reference["kind"].eq("reference").all() and reference["std"].isna().all()
    for name, split in (("demo", SEEN), ("demo_unseen", UNSEEN)):
        manifest = load_region(regions[name])
        lab = pd.read_csv(manifest.lab_url, usecols=["id", "lat", "lon"]).set_index("id")
        part = reference[reference["split"] == split].set_index("sample_id")
        points = lab.loc[part.index]
        truth = pixel_values([manifest.truth_url], points["lon"].to_numpy(), points["lat"].to_numpy())
        np.testing.assert_allclose(part["predicted"], truth, rtol=1e-6)
        ratio = np.log(part["observed"] / part["predicted"])
        assert 0.2 < ratio.std() < 1.0  # about the generator's log-sd of 0.5


@pytest.mark.slow
def test_report_has_targets_models_with_spread_differences_and_figures(evaluated: Path):
    text = (evaluated / "report.md").read_text()
    for heading in ("## Targets (full model)", "## Every model, mean over seeds ± seed sd", "### held-out blocks",
                    "### unseen region", "## Differences, paired by seed", "by observed salinity range",
                    "by texture class", "by climate class", "inside and beyond its training domain"):  # fmt: skip
        assert heading in text
    rows = pd.read_csv(evaluated / "predictions.csv")
    scores = rows.set_index("kind")["domain_score"]
    assert np.isfinite(scores.loc["deepsalt"]).all() and scores.loc["baseline"].isna().all()
    assert text.count("| met |") + text.count("| MISSED |") == 7
    assert "true pixel ECe (ceiling)" in text and " ± " in text and "Best baseline" in text
    for name in ("pred_vs_obs.png", "residuals_by_range.png", "ablation.png", "coverage.png"):
        assert f"]({name})" in text
        import matplotlib.image

        image = matplotlib.image.imread(evaluated / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
