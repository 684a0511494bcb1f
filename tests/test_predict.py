"""StudentPredictor: the contract the mapper relies on (shapes, NaN rows, units, domain score)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepsalt.predict import StudentPredictor
from deepsalt.training.checkpoint import load_checkpoint
from deepsalt.training.pipeline import run_training
from tests.support.training_data import make_data, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_data()
    urls = run_training(tiny_config(str(tmp_path_factory.mktemp("predict"))), data)
    return {stage.value: url for stage, url in urls.items()}, data


@pytest.fixture(scope="module")
def predictor(trained) -> StudentPredictor:
    return StudentPredictor.load(trained[0]["student"], device="cpu")


def test_loads_axis_and_lineage(predictor, trained):
    urls, data = trained
    _, meta = load_checkpoint(urls["student"])
    np.testing.assert_allclose(predictor.wavelength, data.wavelength, atol=1e-6)
    assert predictor.checkpoint_id == meta.checkpoint_id
    assert (
        predictor.lineage["sau"] == meta.parents["sau"]
        and predictor.lineage["teacher"] == meta.parents["teacher"]
    )
    assert predictor.device == torch.device("cpu")


def test_outputs_are_float32_dsm_with_positive_spread(predictor, trained):
    _, data = trained
    ok = data.paired
    out = predictor.predict(data.sat[ok], data.covariates[ok], data.survey[ok])
    assert set(out) == {"ece", "ece_std", "domain_score"}
    for values in out.values():
        assert values.dtype == np.float32 and values.shape == (ok.sum(),)
        assert np.isfinite(values).all()
    assert (out["ece"] > -1).all() and (out["ece_std"] > 0).all()
    # The training samples lie inside the training distribution: most scores ≲ 1.
    assert np.median(out["domain_score"]) < 1.0


def test_far_out_pixels_get_large_domain_scores(predictor, trained):
    _, data = trained
    ok = data.paired
    # Vegetation-like spectra (dark visible, bright beyond a red edge) the bare-soil training never saw.
    strange = np.where(data.wavelength < 700, 0.04, 0.6)[None, :] + np.zeros((20, 1))
    inside = predictor.predict(data.sat[ok][:20], data.covariates[ok][:20])["domain_score"]
    outside = predictor.predict(strange, data.covariates[ok][:20])["domain_score"]
    assert np.median(outside) > 2 * np.median(inside)


def test_rows_with_any_nan_give_nan_outputs_and_others_are_unchanged(predictor, trained):
    _, data = trained
    sat, cov, survey = data.sat[4:14].copy(), data.covariates[4:14].copy(), data.survey[4:14].copy()
    clean = predictor.predict(sat, cov, survey)
    sat[2, 7] = np.nan
    cov[5, 0] = np.nan
    out = predictor.predict(sat, cov, survey)
    for name, values in out.items():
        assert np.isnan(values[[2, 5]]).all(), name
        keep = np.setdiff1d(np.arange(10), [2, 5])
        np.testing.assert_allclose(values[keep], clean[name][keep], rtol=1e-5)


def test_a_pixel_outside_the_survey_is_still_predicted_and_the_survey_moves_the_prediction(
    predictor, trained
):
    _, data = trained
    rows = np.flatnonzero(data.paired)[:30]
    with_survey = predictor.predict(data.sat[rows], data.covariates[rows], data.survey[rows])
    without = predictor.predict(data.sat[rows], data.covariates[rows])  # no survey: NaN token
    assert np.isfinite(without["ece"]).all()
    assert not np.allclose(with_survey["ece"], without["ece"])
    high = predictor.predict(data.sat[rows], data.covariates[rows], np.full(len(rows), 50.0, np.float32))
    assert np.median(high["ece"]) > np.median(with_survey["ece"])  # a saline map unit raises the estimate


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 64), n=st.integers(0, 90))
def test_results_do_not_depend_on_the_batch_size(predictor, trained, batch, n):
    _, data = trained
    rows = np.flatnonzero(data.paired)[:n]
    predictor.batch_size = 100_000
    big = predictor.predict(data.sat[rows], data.covariates[rows], data.survey[rows])
    predictor.batch_size = batch
    small = predictor.predict(data.sat[rows], data.covariates[rows], data.survey[rows])
    for name in big:
        np.testing.assert_allclose(small[name], big[name], rtol=1e-4, atol=1e-5)


def test_wrong_band_count_is_refused_with_the_expected_axis(predictor):
    with pytest.raises(ValueError, match=r"reflectance must be \(n, 40\) on the model's band axis"):
        predictor.predict(np.zeros((3, 39), np.float32), np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match=r"covariates must be \(3, 8\)"):
        predictor.predict(np.zeros((3, 40), np.float32), np.zeros((3, 7), np.float32))


def test_satisfies_the_mapping_predictor_protocol_and_describes_itself_without_weights(
    predictor, trained, tmp_path
):
    import shutil

    from deepsalt.mapping.predictor import ModelCard, Predictor

    url = trained[0]["student"]
    assert isinstance(predictor, Predictor)
    card = StudentPredictor.describe(url)
    assert isinstance(card, ModelCard) and card.checkpoint_id == predictor.checkpoint_id
    assert dict(card.lineage) == {"checkpoint_id": predictor.checkpoint_id, **predictor.lineage}
    copy = tmp_path / "copied-student"
    shutil.copytree(url, copy)
    assert StudentPredictor.describe(str(copy)).content_hash == card.content_hash  # content, not place
    meta = json.loads((copy / "meta.json").read_text())
    meta["metrics"] = {**meta["metrics"], "val_mae": 99.0}
    (copy / "meta.json").write_text(json.dumps(meta))
    assert StudentPredictor.describe(str(copy)).content_hash != card.content_hash


def test_a_checkpoint_whose_band_axis_differs_from_its_network_is_refused_by_name(trained, tmp_path):
    import shutil

    from deepsalt.errors import InputDataError

    copy = tmp_path / "edited-student"
    shutil.copytree(trained[0]["student"], copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["band_axis"]["wavelength"] = meta["band_axis"]["wavelength"][:-1]
    (copy / "meta.json").write_text(json.dumps(meta))
    for read in (StudentPredictor.describe, StudentPredictor.load):
        with pytest.raises(InputDataError, match=rf"{copy}/meta.json: band_axis.wavelength lists \d+ bands"):
            read(str(copy))
