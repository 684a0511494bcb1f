"""Training stages on a small synthetic table: lineage, reuse, checkpoints on local disk and S3."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from deepsalt.config import load_config
from deepsalt.errors import ConfigError, InputDataError, LineageError
from deepsalt.training.checkpoint import load_checkpoint, read_meta, save_checkpoint
from deepsalt.training.config import STAGES, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.pipeline import run_training
from deepsalt.training.runtime import WorkerContext
from deepsalt.training.stages import run_chain_job, train_sau, train_student, train_teacher

TINY = [
    "preset=quick",
    "data.pool_size=300",
    "sau.epochs=3",
    "teacher.epochs=4",
    "student.epochs=4",
    "sau.lab_hidden=[32]",
    "sau.sat_hidden=[32]",
]


def make_data(n: int = 160, n_bands: int = 40, seed: int = 0) -> TrainingData:
    """Lab and satellite spectra that both carry log-ECe, plus an informative covariate."""
    rng = np.random.default_rng(seed)
    ece = np.expm1(rng.uniform(0, 3, n)).astype(np.float32)
    s = np.log1p(ece)
    wn = np.linspace(4001.7, 599.8, 1765)
    wl = np.linspace(420, 2400, n_bands)
    soil = rng.normal(size=(n, 1))
    lab = np.exp(-(((wn - 1100) / 200) ** 2)) * (1 + 0.3 * soil) + 0.5 * s[:, None] * np.exp(
        -(((wn - 2500) / 100) ** 2)
    )
    lab = (lab + rng.normal(0, 0.01, lab.shape)).astype(np.float32)

    def pixels(salt, other):
        curve = 0.2 + 0.05 * other + 0.05 * salt[:, None] * np.exp(-(((wl - 1600) / 300) ** 2))
        return (curve + rng.normal(0, 0.01, (len(salt), n_bands))).astype(np.float32)

    sat = pixels(s, soil)
    sat[:4] = np.nan  # samples without a clear pixel
    cov = rng.normal(size=(n, 8)).astype(np.float32)
    cov[:, 0] += s
    pool = pixels(rng.uniform(0, 3, 300), rng.normal(size=(300, 1)))
    return TrainingData(
        lab=lab,
        wavenumber=wn,
        ece=ece,
        lat=rng.uniform(36, 36.1, n),
        lon=rng.uniform(-120.4, -120.3, n),
        sat=sat,
        wavelength=wl,
        covariates=cov,
        pool=pool,
        sample_id=np.array([f"S{i:04d}" for i in range(n)]),
    )


def tiny_config(output: str, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [*TINY, f"output={output}", *extra])


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return make_data()


@pytest.fixture(scope="module")
def chain(data, tmp_path_factory) -> dict[str, str]:
    return run_training(tiny_config(str(tmp_path_factory.mktemp("chain"))), data)


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def test_student_runs_on_the_aligned_satellite_encoder(chain):
    sau_state, sau = load_checkpoint(chain["sau"], "sau")
    student_state, student = load_checkpoint(chain["student"], "student")
    teacher = read_meta(chain["teacher"], "teacher")
    aligned = _prefixed(sau_state, "sat.encoder.")
    used = _prefixed(student_state, "encoder.")
    assert aligned.keys() == used.keys() and aligned
    for key in aligned:
        assert torch.equal(aligned[key], used[key]), key
    assert student.parents == {"sau": sau.checkpoint_id, "teacher": teacher.checkpoint_id}
    assert teacher.parents == {"sau": sau.checkpoint_id}
    assert sau.architecture["aligned"] is True
    assert student.normalisation["sat"] == sau.normalisation["sat"]


def test_teacher_runs_on_the_aligned_lab_encoder(chain):
    sau_state, _ = load_checkpoint(chain["sau"], "sau")
    teacher_state, _ = load_checkpoint(chain["teacher"], "teacher")
    aligned, used = _prefixed(sau_state, "lab.encoder."), _prefixed(teacher_state, "encoder.")
    assert all(torch.equal(aligned[k], used[k]) for k in aligned)


def test_checkpoint_meta_records_axes_config_and_metrics(chain, data):
    meta = read_meta(chain["student"])
    np.testing.assert_allclose(meta.band_axis["wavelength"], data.wavelength, atol=1e-6)
    assert meta.config["student"]["alpha"] == 0.07
    assert TrainConfig.model_validate(meta.config).config_hash() == meta.config_hash
    assert {"val_mae", "val_r2", "best_epoch", "epochs_run"} <= meta.metrics.keys()
    assert meta.normalisation["target"]["transform"] == "log1p"
    assert (
        meta.architecture["transformer"]["n_layers"] == 4 and meta.architecture["transformer"]["n_heads"] == 8
    )


def test_identical_rerun_reuses_checkpoints(chain, data):
    before = {stage: read_meta(url).checkpoint_id for stage, url in chain.items()}
    created = {stage: read_meta(url).created for stage, url in chain.items()}
    output = chain["sau"].rsplit("/", 1)[0]
    again = run_training(tiny_config(output), data)
    assert {stage: read_meta(url).checkpoint_id for stage, url in again.items()} == before
    assert {stage: read_meta(url).created for stage, url in again.items()} == created


def test_a_restarted_chain_keeps_its_finished_stages(data, tmp_path, caplog):
    """What every Ray worker runs after a worker-group restart: the chain from its first stage."""
    config = tiny_config(str(tmp_path))
    sau = train_sau(data, config)
    finished = read_meta(sau).created
    chain = {
        "stages": list(STAGES),
        "urls": {stage: config.stage_url(stage) for stage in STAGES},
        "config": config.model_dump(mode="json"),
        "data": data,
    }
    caplog.clear()  # only the restarted chain's records (logging may already be at INFO)
    with caplog.at_level(logging.INFO, logger="deepsalt"):
        run_chain_job(chain, WorkerContext(torch.device("cpu")))
    reused = [r.stage for r in caplog.records if r.getMessage().startswith("reusing checkpoint")]
    trained = [r.stage for r in caplog.records if r.getMessage() == "stage done"]
    assert (reused, trained) == (["sau"], ["teacher", "student"])
    assert read_meta(sau).created == finished
    student = read_meta(config.stage_url("student"), "student")
    assert student.parents == {
        "sau": read_meta(sau).checkpoint_id,
        "teacher": read_meta(config.stage_url("teacher")).checkpoint_id,
    }


def test_student_refuses_a_teacher_built_on_another_sau(chain, data, tmp_path):
    other = train_sau(data, tiny_config(str(tmp_path), "seed=7"), str(tmp_path / "sau"))
    with pytest.raises(LineageError, match=r"teacher .* was built on SAU"):
        train_student(data, tiny_config(str(tmp_path)), other, chain["teacher"], str(tmp_path / "student"))


def test_band_axis_mismatch_is_refused(chain, data, tmp_path):
    shifted = TrainingData(**{**data.__dict__, "wavelength": data.wavelength + 5.0})
    with pytest.raises(LineageError, match="wavelength axis mismatch"):
        train_student(shifted, tiny_config(str(tmp_path)), chain["sau"], chain["teacher"])
    short = TrainingData(**{**data.__dict__, "lab": data.lab[:, :-5], "wavenumber": data.wavenumber[:-5]})
    with pytest.raises(LineageError, match="wavenumber axis mismatch"):
        train_teacher(short, tiny_config(str(tmp_path)), chain["sau"])


def test_distillation_needs_a_teacher(chain, data, tmp_path):
    with pytest.raises(LineageError, match="no teacher"):
        train_student(data, tiny_config(str(tmp_path)), chain["sau"], None)


def test_variants_train_through_config_switches(data, tmp_path):
    urls = run_training(
        tiny_config(str(tmp_path), "use_sau=false", "distill=false", "use_satellite=false", "model.tokens=1"),
        data,
    )
    assert set(urls) == {"sau", "student"}  # no teacher without distillation
    assert read_meta(urls["sau"]).architecture["aligned"] is False
    student = read_meta(urls["student"])
    assert student.parents == {"sau": read_meta(urls["sau"]).checkpoint_id}
    assert student.architecture["use_satellite"] is False
    assert student.architecture["transformer"]["tokens"] == 1


def test_tampered_weights_fail_the_hash_check(chain, tmp_path):
    state, meta = load_checkpoint(chain["teacher"])
    url = str(tmp_path / "copy")
    save_checkpoint(url, state, **meta.model_dump(exclude={"checkpoint_id", "created", "software_version"}))
    state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, tmp_path / "copy" / "weights.pt")
    with pytest.raises(LineageError, match=r"weights.pt hashes to .* but meta.json records"):
        load_checkpoint(url)


def test_checkpoint_round_trip_on_s3(chain, s3):
    state, meta = load_checkpoint(chain["student"], "student")
    url = s3.url("runs/student")
    written = save_checkpoint(
        url, state, **meta.model_dump(exclude={"checkpoint_id", "created", "software_version"})
    )
    assert written.checkpoint_id == meta.checkpoint_id  # content-derived id
    loaded, back = load_checkpoint(url, "student")
    assert back.parents == meta.parents
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    with pytest.raises(LineageError, match="is a 'student' checkpoint, expected 'sau'"):
        read_meta(url, "sau")


def test_missing_checkpoint_names_the_url(tmp_path):
    with pytest.raises(InputDataError, match=r"no checkpoint here \(meta.json missing\)") as info:
        read_meta(str(tmp_path / "nothing"))
    assert str(tmp_path / "nothing") in str(info.value)


def test_training_data_subset_and_npz_round_trip(data, tmp_path):
    part = data.subset(np.arange(10, 30))
    assert len(part) == 20 and part.sample_id[0] == "S0010"
    assert part.pool is data.pool  # the unlabelled pool is shared, not split
    url = str(tmp_path / "data.npz")
    part.save(url)
    back = TrainingData.load(url)
    assert back.fingerprint() == part.fingerprint() != data.fingerprint()
    np.testing.assert_array_equal(back.sat, part.sat)


def test_training_data_rejects_inconsistent_rows(data):
    with pytest.raises(ValueError, match=r"TrainingData\.sat has 3 rows, expected 160"):
        TrainingData(**{**data.__dict__, "sat": data.sat[:3]})


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("model.tokens=7", "<root>", "must divide model.latent_dim"),
        ("student.alpah=0.1", "student.alpah", "unknown field"),
        ("ray.num_workers=-1", "ray.num_workers", "greater than or equal to 0"),
    ],
)
def test_invalid_config_names_the_field(override, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(TrainConfig, None, [override])
    assert info.value.field == field


def test_quick_preset_fills_only_unset_fields():
    config = load_config(TrainConfig, "configs/train.yaml", ["preset=quick", "student.epochs=7"])
    assert config.student.epochs == 7 and config.teacher.epochs == 40 and config.data.pool_size == 2000


def test_shipped_config_is_valid_and_matches_the_defaults():
    config = load_config(TrainConfig, "configs/train.yaml")
    defaults = TrainConfig()
    assert json.dumps(config.model_dump(exclude={"regions", "output"}), sort_keys=True) == json.dumps(
        defaults.model_dump(exclude={"regions", "output"}), sort_keys=True
    )
