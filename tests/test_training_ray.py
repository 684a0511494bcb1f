"""The same stage functions on Ray Train: 2 DDP workers reach the quality of 1 in-process worker, and
the whole chain trains in one Ray Train run."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from deepsalt.predict import StudentPredictor
from deepsalt.training.checkpoint import load_checkpoint, read_meta
from deepsalt.training.config import STAGES
from deepsalt.training.pipeline import run_training
from tests.support.training_data import make_data, tiny_config

STUDENT = ["student.epochs=25", "student.patience=1000"]


def _held_out_mae(url: str, data) -> float:
    out = StudentPredictor.load(url).predict(data.sat, data.covariates, data.survey)
    ok = np.isfinite(out["ece"]) & np.isfinite(data.ece)
    return float(np.mean(np.abs(out["ece"][ok] - data.ece[ok])))


@pytest.mark.slow
def test_two_ray_workers_match_one_in_process_worker(ray_cluster, tmp_path):
    train, held_out = make_data(n=200, seed=1), make_data(n=80, seed=2)
    settings = ["sau.epochs=6", "teacher.epochs=15", *STUDENT]
    local = run_training(tiny_config(str(tmp_path / "one"), *settings), train)
    # The whole chain on 2 DDP workers: each stage is planned on every rank from the checkpoint
    # rank 0 wrote in the stage before.
    on_ray = run_training(
        tiny_config(str(tmp_path / "two"), *settings, "ray.num_workers=2", "ray.cpus_per_worker=0.5"), train
    )
    one, two = read_meta(local["student"]), read_meta(on_ray["student"])
    assert two.parents == {
        "sau": read_meta(on_ray["sau"]).checkpoint_id,
        "teacher": read_meta(on_ray["teacher"]).checkpoint_id,
    }
    assert two.metrics["epochs_run"] == one.metrics["epochs_run"] == 25
    mae_one, mae_two = _held_out_mae(local["student"], held_out), _held_out_mae(on_ray["student"], held_out)
    spread = float(np.nanstd(held_out.ece))
    assert mae_one < 0.7 * spread and mae_two < 0.7 * spread  # both learnt something
    assert abs(mae_two - mae_one) <= 0.15 * mae_one + 0.02, (mae_one, mae_two)
    # The Ray run really trained (weights differ from the local run: other shuffles per worker).
    w_one, w_two = load_checkpoint(local["student"])[0], load_checkpoint(on_ray["student"])[0]
    assert any(
        not np.allclose(w_one[k].numpy(), w_two[k].numpy()) for k in w_one if k.startswith("members.0.head.")
    )


def _ray_runs(caplog) -> list[str]:
    return [r.run for r in caplog.records if r.getMessage() == "ray train start"]


@pytest.mark.slow
def test_the_chain_trains_in_one_ray_train_run(ray_cluster, tiny_chain, tmp_path, caplog):
    data = make_data()
    local = tiny_chain  # run_training(tiny_config(<folder>), make_data()) in this process (the session's)
    config = tiny_config(str(tmp_path / "ray"), "ray.num_workers=1", "ray.cpus_per_worker=0.5")
    with caplog.at_level(logging.INFO, logger="deepsalt"):
        on_ray = run_training(config, data)
    assert _ray_runs(caplog) == ["sau+teacher+student"]  # one worker group for the three stages
    sau, teacher, student = (read_meta(on_ray[stage], stage) for stage in STAGES)
    assert teacher.parents == {"sau": sau.checkpoint_id}
    assert student.parents == {"sau": sau.checkpoint_id, "teacher": teacher.checkpoint_id}
    for stage in STAGES:  # one Ray worker trains exactly what this process trains
        ray_state, local_state = load_checkpoint(on_ray[stage])[0], load_checkpoint(local[stage])[0]
        assert ray_state.keys() == local_state.keys()
        for key, value in local_state.items():
            torch.testing.assert_close(ray_state[key], value, msg=f"{stage}: {key}")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepsalt"):
        again = run_training(config, data)
    assert again == on_ray and _ray_runs(caplog) == []  # a finished chain starts no Ray
