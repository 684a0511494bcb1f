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
from deepsalt.training.config import STAGES, Stage, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.pipeline import run_training
from deepsalt.training.runtime import WorkerContext
from deepsalt.training.stages import ChainJob, run_chain_job, train_sau, train_student, train_teacher
from tests.support.training_data import make_data, tiny_config


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return make_data()


@pytest.fixture(scope="module")
def chain(tiny_chain) -> dict[str, str]:
    """``run_training(tiny_config(<folder>), make_data())`` (the session's, see ``tests/conftest.py``)."""
    return {stage.value: url for stage, url in tiny_chain.items()}


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def test_student_members_start_from_the_aligned_satellite_encoder(chain):
    sau_state, sau = load_checkpoint(chain["sau"], "sau")
    student_state, student = load_checkpoint(chain["student"], "student")
    teacher = read_meta(chain["teacher"], "teacher")
    aligned = _prefixed(sau_state, "sat.encoder.")
    # The members fine-tune the encoder; its input path (the standardisation) stays the SAU's.
    for k in range(2):
        used = _prefixed(student_state, f"members.{k}.encoder.")
        assert aligned.keys() == used.keys() and aligned
        for key in ("norm.mean", "norm.std"):
            assert torch.equal(aligned[key], used[key]), key
    decoder = _prefixed(sau_state, "sat.decoder.")
    assert all(torch.equal(decoder[k], student_state[f"decoder.{k}"]) for k in decoder)
    assert student.parents == {"sau": sau.checkpoint_id, "teacher": teacher.checkpoint_id}
    assert teacher.parents == {"sau": sau.checkpoint_id}
    assert sau.architecture.aligned is True
    assert student.normalisation["target"] == sau.normalisation["target"] == teacher.normalisation["target"]


def test_teacher_starts_from_the_sau_lab_encoder_and_keeps_its_input_path(chain):
    sau_state, _ = load_checkpoint(chain["sau"], "sau")
    teacher_state, _ = load_checkpoint(chain["teacher"], "teacher")
    aligned, used = _prefixed(sau_state, "lab.encoder."), _prefixed(teacher_state, "encoder.")
    assert aligned.keys() == used.keys()
    assert torch.equal(aligned["norm.mean"], used["norm.mean"])
    assert "linear.weight" in teacher_state  # the linear path over the standardised features


def test_checkpoint_meta_records_axes_config_and_metrics(chain, data):
    meta = read_meta(chain["student"])
    np.testing.assert_allclose(meta.band_axis["wavelength"], data.wavelength, atol=1e-6)
    assert meta.config["student"]["alpha"] == 1.0
    assert TrainConfig.model_validate(meta.config).config_hash() == meta.config_hash
    assert {
        "val_mae",
        "val_r2",
        "val_r2_log",
        "best_epoch",
        "epochs_run",
        "interval_scale",
    } <= meta.metrics.keys()
    assert meta.normalisation["target"]["transform"] == "log1p"
    # the student reads the configured covariates (texture by default), in the table's order
    assert meta.normalisation["covariates"] == ["sand", "clay"]
    assert meta.architecture.covariate_columns == tuple(
        data.covariate_names.index(name) for name in ("sand", "clay")
    )
    # ... while the domain score watches the whole table for values beyond the training range
    assert meta.architecture.covariate_table == len(data.covariate_names)
    assert meta.normalisation["survey"] is True
    assert meta.architecture.members == 2 and meta.architecture.head.kind == "mlp"


def test_identical_rerun_reuses_checkpoints(chain, data):
    before = {stage: read_meta(url).checkpoint_id for stage, url in chain.items()}
    created = {stage: read_meta(url).created for stage, url in chain.items()}
    output = chain["sau"].rsplit("/", 1)[0]
    again = {stage.value: url for stage, url in run_training(tiny_config(output), data).items()}
    assert {stage: read_meta(url).checkpoint_id for stage, url in again.items()} == before
    assert {stage: read_meta(url).created for stage, url in again.items()} == created


def test_a_checkpoint_written_by_an_older_revision_of_a_stage_is_trained_again(
    data, tmp_path, monkeypatch, caplog
):
    """Same settings, data and parents, but the code now saves something else in the student (a
    new buffer): reusing the old checkpoint would silently serve a model the code no longer makes."""
    from deepsalt.training.stage_student import StudentTrainer

    config = tiny_config(str(tmp_path))
    monkeypatch.setattr(StudentTrainer, "revision", 1)
    first = {stage: read_meta(url).stage_key for stage, url in run_training(config, data).items()}
    monkeypatch.setattr(StudentTrainer, "revision", 2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepsalt"):
        again = {stage: read_meta(url).stage_key for stage, url in run_training(config, data).items()}
    reused = [r.stage for r in caplog.records if r.getMessage().startswith("reusing checkpoint")]
    trained = [r.stage for r in caplog.records if r.getMessage() == "stage done"]
    assert (reused, trained) == (["sau", "teacher"], ["student"])
    assert again[Stage.SAU] == first[Stage.SAU] and again[Stage.TEACHER] == first[Stage.TEACHER]
    assert again[Stage.STUDENT] != first[Stage.STUDENT]


def test_a_restarted_chain_keeps_its_finished_stages(data, tmp_path, caplog):
    """What every Ray worker runs after a worker-group restart: the chain from its first stage."""
    config = tiny_config(str(tmp_path))
    sau = train_sau(data, config)
    finished = read_meta(sau).created
    chain = ChainJob(STAGES, {stage: config.stage_url(stage) for stage in STAGES}, config, data)
    caplog.clear()  # only the restarted chain's records (logging may already be at INFO)
    with caplog.at_level(logging.INFO, logger="deepsalt"):
        run_chain_job(chain, WorkerContext(torch.device("cpu")))
    reused = [r.stage for r in caplog.records if r.getMessage().startswith("reusing checkpoint")]
    trained = [r.stage for r in caplog.records if r.getMessage() == "stage done"]
    assert (reused, trained) == (["sau"], ["teacher", "student"])
    assert read_meta(sau).created == finished
    student = read_meta(config.stage_url(Stage.STUDENT), "student")
    assert student.parents == {
        "sau": read_meta(sau).checkpoint_id,
        "teacher": read_meta(config.stage_url(Stage.TEACHER)).checkpoint_id,
    }


def test_student_refuses_a_teacher_built_on_another_sau(chain, data, tmp_path):
    other = train_sau(data, tiny_config(str(tmp_path), "seed=7"), str(tmp_path / "sau"))
    with pytest.raises(LineageError, match=r"teacher .* was built on SAU"):
        train_student(data, tiny_config(str(tmp_path)), other, chain["teacher"], str(tmp_path / "student"))


def test_band_axis_mismatch_is_refused(chain, data, tmp_path):
    shifted = TrainingData(**{**data.__dict__, "wavelength": data.wavelength + 5.0})
    with pytest.raises(LineageError, match="wavelength axis mismatch"):
        train_student(shifted, tiny_config(str(tmp_path)), chain["sau"], chain["teacher"])
    short = TrainingData(
        **{
            **data.__dict__,
            "lab": data.lab[:, :-5],
            "library_lab": data.library_lab[:, :-5],
            "wavenumber": data.wavenumber[:-5],
        }
    )
    with pytest.raises(LineageError, match="wavenumber axis mismatch"):
        train_teacher(short, tiny_config(str(tmp_path)), chain["sau"])


def test_distillation_needs_a_teacher(chain, data, tmp_path):
    with pytest.raises(LineageError, match="needs a teacher checkpoint"):
        train_student(data, tiny_config(str(tmp_path)), chain["sau"], None)


def test_a_covariate_the_data_lacks_is_refused_by_name(chain, data, tmp_path):
    config = tiny_config(str(tmp_path), "student.covariates=[sand, aridity]")
    with pytest.raises(ConfigError, match=r"student\.covariates.*\['aridity'\] are not among"):
        train_student(data, config, chain["sau"], chain["teacher"], str(tmp_path / "student"))
    assert not (tmp_path / "student").exists()


def test_variants_train_through_config_switches(data, tmp_path):
    urls = run_training(
        tiny_config(
            str(tmp_path), "use_sau=false", "distill=false", "use_satellite=false", "model.head=transformer"
        ),
        data,
    )
    assert set(urls) == {Stage.SAU, Stage.STUDENT}  # no teacher without distillation
    assert read_meta(urls[Stage.SAU]).architecture.aligned is False
    student = read_meta(urls[Stage.STUDENT])
    assert student.parents == {"sau": read_meta(urls[Stage.SAU]).checkpoint_id}
    assert student.architecture.encoder is None
    assert student.architecture.head.kind == "transformer"


def test_distilled_students_learn_from_samples_without_a_measured_ece(data, tmp_path):
    """The teacher reads the MIR spectra of unmeasured samples: the response term is non-zero on them."""
    from deepsalt.training.stage_base import ParentCheckpoint
    from deepsalt.training.stage_student import StudentTrainer

    config = tiny_config(str(tmp_path))
    urls = run_training(config, data, stages=[Stage.SAU, Stage.TEACHER])
    parents = {s: ParentCheckpoint(urls[s], read_meta(urls[s])) for s in (Stage.SAU, Stage.TEACHER)}
    trainer = StudentTrainer(config, data, parents)
    trainer.prepare()
    _, _, _, y, source, t_mean, *_ = trainer.train_set.tensors
    unmeasured = ~torch.isfinite(y[:, 0]) & (source == 1)
    assert int(unmeasured.sum()) > 0 and bool(torch.isfinite(t_mean[unmeasured]).all())
    model = trainer.build()
    batch = tuple(t[:64] for t in trainer.train_set.tensors)
    terms = trainer.loss(model, batch, torch.Generator().manual_seed(0))
    assert float(terms["response"].detach()) > 0 and float(terms["feature"].detach()) > 0
    without = StudentTrainer(
        tiny_config(str(tmp_path), "distill=false"), data, {Stage.SAU: parents[Stage.SAU]}
    )
    without.prepare()
    _, _, _, y, source, t_mean, *_ = without.train_set.tensors
    # Without a teacher an unmeasured sample teaches nothing: every sample row has a measured target.
    assert bool(torch.isfinite(y[source == 1]).all()) and not bool(torch.isfinite(t_mean).any())


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_survey_labels_keep_each_map_units_mean_and_a_share_of_each_pixels_departure(
    chain, data, tmp_path, share
):
    """Every member's pool targets average to the unit's label over the unit's pixels and differ
    from the label by ``unit_departure`` × the member's own departure from its unit mean."""
    from deepsalt.training.stage_base import ParentCheckpoint
    from deepsalt.training.stage_student import SURVEY, StudentTrainer

    config = tiny_config(str(tmp_path), f"student.unit_departure={share}")
    parents = {
        s: ParentCheckpoint(chain[s.value], read_meta(chain[s.value])) for s in (Stage.SAU, Stage.TEACHER)
    }
    trainer = StudentTrainer(config, data, parents)
    trainer.prepare()
    model = trainer.build().eval()
    sat, cov, survey, y, source, *_ = trainer.train_set.tensors
    pool = source == SURVEY
    labels = y[pool].numpy().copy()
    with torch.no_grad():
        trainer.begin_epoch(model, 0)
        members = model.ensemble.members
        pred = torch.stack([m(sat[pool], cov[pool], survey[pool]).mean for m in members], 1).numpy()
    targets = y[pool].numpy()
    units = data.pool_unit[trainer.pool_train]
    assert len(np.unique(units)) > 5
    for unit in np.unique(units):
        inside = units == unit
        np.testing.assert_allclose(targets[inside].mean(0), labels[inside].mean(0), atol=1e-4)
        departure = pred[inside] - pred[inside].mean(0)
        np.testing.assert_allclose(targets[inside] - labels[inside], share * departure, atol=1e-4)
    assert (np.ptp(targets - labels, axis=0).min() > 0) == (share > 0)


def test_unit_mean_targets_follow_the_student_through_its_training(data, tmp_path, monkeypatch):
    """Through the real chain, the student stage refreshes its pool targets before every epoch: they
    move as the members learn, while each unit's mean target stays the unit's label."""
    from deepsalt.training.stage_student import SURVEY, StudentTrainer

    refreshed: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    original = StudentTrainer.begin_epoch

    def recording(self, model, epoch):
        original(self, model, epoch)
        _, _, _, y, source, *_ = self.train_set.tensors
        units = self.data.pool_unit[self.pool_train]
        refreshed.append((epoch, y[source == SURVEY].numpy().copy(), self.pool_label.numpy().copy(), units))

    monkeypatch.setattr(StudentTrainer, "begin_epoch", recording)
    urls = run_training(tiny_config(str(tmp_path), "student.unit_departure=1"), data)
    assert read_meta(urls[Stage.STUDENT]).config["student"]["unit_departure"] == 1
    assert [epoch for epoch, *_ in refreshed] == [0, 1, 2]  # student.epochs=3 in the tiny config
    assert not np.allclose(refreshed[0][1], refreshed[-1][1])
    for _, targets, labels, units in refreshed:
        assert len(np.unique(units)) > 5
        for unit in np.unique(units):
            inside = units == unit
            np.testing.assert_allclose(targets[inside].mean(0), labels[inside].mean(), atol=1e-4)


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
    assert part.pool is data.pool and part.library_lab is data.library_lab  # shared, not split
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
        ("model.head=gru", "model.head", "Input should be 'mlp' or 'transformer'"),
        ("student.alpah=0.1", "student.alpah", "unknown field"),
        ("ray.num_workers=-1", "ray.num_workers", "greater than or equal to 0"),
    ],
)
def test_invalid_config_names_the_field(override, field, message):
    extra = ["model.head=transformer"] if "tokens" in override else []
    with pytest.raises(ConfigError, match=message) as info:
        load_config(TrainConfig, None, [override, *extra])
    assert info.value.field == field


def test_quick_preset_fills_only_unset_fields():
    config = load_config(TrainConfig, "configs/train.yaml", ["preset=quick", "student.epochs=7"])
    assert config.student.epochs == 7 and config.teacher.epochs == 40 and config.data.pool_size == 6000


def test_shipped_config_is_valid_and_matches_the_defaults():
    config = load_config(TrainConfig, "configs/train.yaml")
    defaults = TrainConfig()
    assert json.dumps(config.model_dump(exclude={"regions", "output"}), sort_keys=True) == json.dumps(
        defaults.model_dump(exclude={"regions", "output"}), sort_keys=True
    )


def test_the_activation_is_recorded_and_rebuilt_from_the_checkpoint(chain, data, tmp_path):
    """A ReLU chain is rebuilt with ReLU by the predictor (no training config needed), and a
    checkpoint whose architecture predates the setting still reads as the exact GELU it used."""
    from torch import nn

    from deepsalt.predict import StudentPredictor
    from deepsalt.training.builders import EncoderArch, HeadArch

    urls = run_training(tiny_config(str(tmp_path), "model.activation=relu"), data)
    meta = read_meta(urls[Stage.STUDENT])
    assert meta.architecture.head.activation == "relu" and meta.architecture.encoder.activation == "relu"
    assert read_meta(urls[Stage.SAU]).architecture.sat.activation == "relu"
    relu = StudentPredictor.load(urls[Stage.STUDENT])
    kinds = {type(m) for m in relu.net.modules()}
    assert nn.ReLU in kinds and nn.GELU not in kinds
    gelu = StudentPredictor.load(chain["student"])
    kinds = {type(m) for m in gelu.net.modules()}
    assert nn.GELU in kinds and nn.ReLU not in kinds
    rows = np.flatnonzero(data.paired)[:16]
    out = relu.predict(data.sat[rows], data.covariates[rows], data.survey[rows])
    assert np.isfinite(out["ece"]).all() and (out["ece"] >= 0).all()
    old = {"n_inputs": 10, "latent_dim": 4, "hidden": [8]}
    assert EncoderArch.model_validate(old).activation == "gelu"
    assert HeadArch.model_validate({"kind": "mlp", "latent_dim": 4, "n_covariates": 2}).activation == "gelu"
