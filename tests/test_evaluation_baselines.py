"""The baselines users have today, and the baseline as a mapping model (the Predictor protocol).

The survey-map baseline is checked value by value (its mean is the map unit's ECe, its spread the
RMS log residual of the map around the measured samples); the learned ones for what the harness
relies on: the same seed gives the same model, the spread is the out-of-fold residual's. The
mapped baseline is checked on a real map: the survey-map baseline mapped by the mapping pipeline
must reproduce the survey's own ECe raster pixel for pixel.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold

from deepsalt.errors import InputDataError, LineageError
from deepsalt.evaluation.baseline_predictor import (
    BaselinePredictor,
    fit_baseline_checkpoint,
    save_baseline,
)
from deepsalt.evaluation.baselines import BaselineSettings, FeatureSet, Rows, features, fit_baseline
from deepsalt.mapping.predictor import ModelCard, Predictor

SETTINGS = BaselineSettings(inner_folds=3, max_components=5)


def synthetic_rows(n: int = 90, bands: int = 12, seed: int = 0) -> Rows:
    """Samples whose log ECe follows one band and the survey, in 9 spatial blocks."""
    rng = np.random.default_rng(seed)
    reflectance = rng.uniform(0.05, 0.5, (n, bands))
    covariates = rng.normal(size=(n, 8))
    survey = np.exp(rng.normal(1.0, 0.6, n))
    log_ece = 0.6 * np.log1p(survey) + 3.0 * (reflectance[:, 3] - 0.25) + rng.normal(0, 0.2, n)
    return Rows(reflectance, covariates, survey, np.expm1(np.clip(log_ece, 0, None)), np.arange(n) % 9)


def test_survey_map_baseline_predicts_the_map_units_ece_with_its_residual_spread():
    rows = Rows(
        reflectance=np.zeros((4, 3)),
        covariates=np.zeros((4, 8)),
        survey=np.array([1.0, 3.0, 0.5, 7.0]),
        ece=np.array([2.0, 3.0, 0.2, 3.0]),
        blocks=np.array(["a", "a", "b", "b"]),
    )
    fitted = fit_baseline("survey_map", rows, seed=0, settings=SETTINGS)
    # log residuals: log(3/2), 0, log(1.2/1.5), log(4/8)
    sigma = np.sqrt(np.mean(np.log([3 / 2, 1.0, 1.2 / 1.5, 4 / 8]) ** 2))
    assert fitted.log_sigma == pytest.approx(sigma)
    survey = np.array([0.0, 2.5, 12.0, np.nan])
    ece, std = fitted.predict(np.zeros((4, 3)), np.zeros((4, 8)), survey)
    np.testing.assert_allclose(ece[:3], survey[:3])  # each pixel's map unit value, unchanged
    np.testing.assert_allclose(std[:3], (1 + survey[:3]) * sigma)  # σ in log1p space, as the student reports
    assert np.isnan(ece[3]) and np.isnan(std[3])  # outside the survey: no prediction


def test_features_are_the_students_inputs():
    refl, cov, survey = np.full((2, 3), 0.2), np.ones((2, 8)), np.array([0.0, np.e - 1])
    x = features(FeatureSet.WITH_SURVEY, refl, cov, survey)
    assert x.shape == (2, 12)
    np.testing.assert_allclose(x[:, -1], [0.0, 1.0])  # log1p(survey ECe)
    assert features(FeatureSet.WITHOUT_SURVEY, refl, cov, survey).shape == (2, 11)
    with pytest.raises(ValueError, match="needs survey-labelled pool pixels"):
        fit_baseline("gbm_survey_labels", synthetic_rows(), seed=0, settings=SETTINGS)
    with pytest.raises(ValueError, match="takes no survey-labelled pool pixels"):
        fit_baseline("plsr", synthetic_rows(), seed=0, settings=SETTINGS, extra=synthetic_rows(10))
    with pytest.raises(ValueError, match="unknown baseline 'svr'"):
        fit_baseline("svr", synthetic_rows(), seed=0, settings=SETTINGS)


@pytest.mark.parametrize("key", ["plsr", "random_forest", "gradient_boosting"])
def test_learned_baselines_repeat_with_their_seed_and_learn_the_signal(key: str):
    rows, test = synthetic_rows(), synthetic_rows(seed=1)
    first = fit_baseline(key, rows, seed=0, settings=SETTINGS)
    again = fit_baseline(key, rows, seed=0, settings=SETTINGS)
    predicted, std = first.predict(test.reflectance, test.covariates, test.survey)
    np.testing.assert_array_equal(predicted, again.predict(test.reflectance, test.covariates, test.survey)[0])
    assert np.isfinite(predicted).all() and (std > 0).all()
    error = np.log1p(predicted) - np.log1p(test.ece)
    assert np.sqrt(np.mean(error**2)) < 0.8 * np.std(np.log1p(test.ece))  # better than the mean
    if key == "random_forest":  # the only stochastic one on these data
        other = fit_baseline(key, rows, seed=1, settings=SETTINGS)
        assert not np.array_equal(predicted, other.predict(test.reflectance, test.covariates, test.survey)[0])


def test_the_spread_is_the_rms_of_block_grouped_out_of_fold_residuals():
    rows = synthetic_rows()
    fitted = fit_baseline("gradient_boosting", rows, seed=0, settings=SETTINGS)
    x = features(FeatureSet.WITH_SURVEY, rows.reflectance, rows.covariates, rows.survey)
    y = np.log1p(rows.ece)
    residuals = []
    for train, test in GroupKFold(n_splits=3).split(x, y, rows.blocks):
        model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=0).fit(
            x[train], y[train]
        )
        residuals.append(y[test] - model.predict(x[test]))
    assert fitted.log_sigma == pytest.approx(np.sqrt(np.mean(np.concatenate(residuals) ** 2)))


def test_survey_labelled_gbm_learns_from_the_pool_without_the_survey_input():
    rows, pool = synthetic_rows(), synthetic_rows(400, seed=2)
    pool = Rows(pool.reflectance, pool.covariates, pool.survey, pool.survey, np.full(400, ""))
    fitted = fit_baseline("gbm_survey_labels", rows, seed=0, settings=SETTINGS, extra=pool)
    test = synthetic_rows(seed=3)
    with_survey = fitted.predict(test.reflectance, test.covariates, test.survey)[0]
    without = fitted.predict(test.reflectance, test.covariates, None)[0]
    np.testing.assert_array_equal(with_survey, without)  # it never reads the survey
    assert np.isfinite(without).all()


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    fitted = fit_baseline("gradient_boosting", synthetic_rows(), seed=0, settings=SETTINGS)
    url = tmp_path / "baseline"
    save_baseline(
        str(url),
        fitted,
        wavelength=np.linspace(450, 2400, 12),
        training_samples=90,
        data_fingerprint="f",
        seed=0,
    )
    return url


def test_baseline_predictor_satisfies_the_predictor_protocol(checkpoint: Path, tmp_path: Path):
    predictor = BaselinePredictor.load(str(checkpoint))
    assert isinstance(predictor, Predictor)
    card = BaselinePredictor.describe(str(checkpoint))
    assert isinstance(card, ModelCard) and card.checkpoint_id == predictor.checkpoint_id
    assert card.lineage["baseline"] == "gradient_boosting" and card.lineage["survey_input"] is True
    assert predictor.wavelength.shape == (12,)
    copy = tmp_path / "elsewhere"
    shutil.copytree(checkpoint, copy)
    assert BaselinePredictor.describe(str(copy)).content_hash == card.content_hash  # content, not place

    test = synthetic_rows(5, seed=4)
    reflectance = test.reflectance.astype(np.float32)
    reflectance[1] = np.nan  # a pixel without a clear spectrum
    out = predictor.predict(reflectance, test.covariates, test.survey)
    assert set(out) == {"ece", "ece_std", "domain_score"} and all(v.dtype == np.float32 for v in out.values())
    assert np.isnan(out["ece"][1]) and np.isfinite(np.delete(out["ece"], 1)).all()
    assert np.isnan(out["domain_score"]).all()
    with pytest.raises(ValueError, match=r"reflectance must be \(n, 12\)"):
        predictor.predict(np.zeros((3, 11)), np.zeros((3, 8)))


@pytest.mark.parametrize("key", ["survey_map", "plsr", "random_forest", "gradient_boosting"])
def test_refitting_a_baseline_on_the_same_data_gives_the_same_checkpoint(key: str, tmp_path: Path):
    """The map's product identity holds the checkpoint's content hash: an unchanged baseline must
    keep it, so that rerunning the demo resumes its map instead of remapping."""
    hashes = set()
    for folder in ("a", "b"):
        fitted = fit_baseline(key, synthetic_rows(), seed=0, settings=SETTINGS)
        save_baseline(
            str(tmp_path / folder),
            fitted,
            wavelength=np.arange(12.0),
            training_samples=90,
            data_fingerprint="f",
            seed=0,
        )
        hashes.add(BaselinePredictor.describe(str(tmp_path / folder)).content_hash)
    assert len(hashes) == 1


def test_baseline_checkpoint_refuses_a_replaced_model_or_a_missing_card(checkpoint: Path, tmp_path: Path):
    other = tmp_path / "other"
    fitted = fit_baseline("random_forest", synthetic_rows(), seed=0, settings=SETTINGS)
    save_baseline(
        str(other), fitted, wavelength=np.arange(12.0), training_samples=90, data_fingerprint="f", seed=0
    )
    shutil.copy(other / "model.joblib", checkpoint / "model.joblib")
    with pytest.raises(LineageError, match=r"model\.joblib hashes to [0-9a-f]{16} but card\.json records"):
        BaselinePredictor.describe(str(checkpoint))
    (other / "card.json").unlink()
    with pytest.raises(InputDataError, match=r"card\.json missing"):
        BaselinePredictor.load(str(other))


@pytest.mark.slow
def test_survey_map_baseline_maps_the_survey_through_the_mapping_pipeline(
    demo_world, ray_cluster, stac_api_factory, tmp_path: Path
):
    """The map of the survey-map baseline, made by ``run_map`` like the student's, is the survey's
    map-unit ECe at every pixel it predicts: the survey reaches the baseline through the pipeline."""
    from deepsalt.evaluation.blocks import block_ids
    from deepsalt.io.ssurgo import survey_on_grid
    from deepsalt.mapping import MapConfig, run_map
    from deepsalt.training.data import load_region_samples

    region = demo_world.region
    data = load_region_samples(region.url, 300)
    blocks = block_ids(data.lat, data.lon, region.crs, 1.5)
    url = str(tmp_path / "survey-baseline")
    fit_baseline_checkpoint(url, "survey_map", data, blocks, SETTINGS, seed=0)
    api = stac_api_factory(*demo_world.stac_inputs())
    settings = demo_world.map_settings(api, str(tmp_path / "baseline.zarr"))
    settings["model"] |= {
        "student_url": url,
        "predictor": "deepsalt.evaluation.baseline_predictor:BaselinePredictor",
    }
    settings["inputs"]["survey_url"] = region.href(region.files.survey["export"])
    summary = run_map(MapConfig.model_validate(settings))
    assert summary.ok

    root = zarr.open_group(summary.store_url, mode="r")
    assert json.loads(root.attrs["model_lineage"])["baseline"] == "survey_map"
    ds = xr.open_zarr(summary.store_url, decode_coords="all")
    survey = survey_on_grid(
        settings["inputs"]["survey_url"], ds.rio.crs, ds.rio.transform(), ds.ece.shape
    ).ece
    ece = ds.ece.values
    predicted = np.isfinite(ece)
    assert predicted.sum() > 0.3 * ece.size
    same = np.isclose(ece[predicted], survey[predicted], rtol=1e-5)
    # the mapper warps the map-unit key raster block by block: at a handful of polygon-edge pixels
    # the nearest map unit of a block's warp differs from the whole grid's
    assert same.mean() > 0.999, f"{(~same).sum()} of {same.size} pixels differ from the survey"
    assert (ds.ece_std.values[predicted] > 0).all()
