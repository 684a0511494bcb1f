"""The same stage function on Ray Train: 2 DDP workers reach the quality of 1 in-process worker."""

from __future__ import annotations

import numpy as np
import pytest

from deepsalt.predict import StudentPredictor
from deepsalt.training.checkpoint import load_checkpoint, read_meta
from deepsalt.training.pipeline import run_training
from deepsalt.training.stages import train_student
from tests.test_training import make_data, tiny_config

STUDENT = ["student.epochs=25", "student.patience=1000"]


def _held_out_mae(url: str, data) -> float:
    out = StudentPredictor.load(url).predict(data.sat, data.covariates)
    ok = np.isfinite(out["ece"])
    return float(np.mean(np.abs(out["ece"][ok] - data.ece[ok])))


@pytest.mark.slow
def test_two_ray_workers_match_one_in_process_worker(ray_cluster, tmp_path):
    train, held_out = make_data(n=200, seed=1), make_data(n=80, seed=2)
    base = run_training(
        tiny_config(str(tmp_path / "base"), "sau.epochs=6", "teacher.epochs=15"),
        train,
        stages=("sau", "teacher"),
    )
    local = train_student(train, tiny_config(str(tmp_path / "one"), *STUDENT), base["sau"], base["teacher"])
    on_ray = train_student(
        train,
        tiny_config(str(tmp_path / "two"), *STUDENT, "ray.num_workers=2", "ray.cpus_per_worker=0.5"),
        base["sau"],
        base["teacher"],
    )
    one, two = read_meta(local), read_meta(on_ray)
    assert two.parents == one.parents  # same aligned encoder and teacher
    assert two.metrics["epochs_run"] == one.metrics["epochs_run"] == 25
    mae_one, mae_two = _held_out_mae(local, held_out), _held_out_mae(on_ray, held_out)
    spread = float(np.std(held_out.ece))
    assert mae_one < 0.7 * spread and mae_two < 0.7 * spread  # both learnt something
    assert abs(mae_two - mae_one) <= 0.15 * mae_one + 0.02, (mae_one, mae_two)
    # The Ray run really trained (weights differ from the local run: other shuffles per worker).
    w_one, w_two = load_checkpoint(local)[0], load_checkpoint(on_ray)[0]
    assert any(
        not np.allclose(w_one[k].numpy(), w_two[k].numpy()) for k in w_one if k.startswith("transformer.")
    )
