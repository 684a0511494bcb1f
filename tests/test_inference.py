"""How the predictor runs its model: precision, compilation, batch size (GPU readiness on a CPU).

The reference is always the plain fp32 forward pass of the same checkpoint: a reduced-precision or
compiled path must give the same map within a stated tolerance, on pixels of the region the
student was trained on (the demo world) and on pixels it never saw.
"""

from __future__ import annotations

import copy
import logging
import threading

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import deepsalt.compiled
import deepsalt.predict
from deepsalt.compiled import PACKAGE_DIR_ENV, PackagedForward, export_forward, package_dir, package_key
from deepsalt.mapping.config import COMPILE_MIN_PIXELS, CompileMode, ModelConfig
from deepsalt.mapping.predictor import InferenceSettings, Precision
from deepsalt.models.rational_gelu import RationalGELU
from deepsalt.predict import (
    CPU_BATCH,
    GPU_BATCH_RANGE,
    GPU_MEMORY_SHARE,
    CompiledForward,
    StudentPredictor,
    activation_bytes,
    default_batch,
    gpu_batch,
    inference_forward,
)

BF16_ECE_OF_SPREAD = 0.05
"""bf16 keeps 8 bits of mantissa (≈ 0.4 % per rounding): through encoder and head a pixel's ECe moves
by at most 5 % of its own predictive spread (``ece_std``), far inside the map's uncertainty."""
BF16_SPREAD = 0.03
"""Relative change of ``ece_std`` in bf16."""
COMPILED_TOLERANCE = 1e-4
"""A compiled graph reorders float additions, and on a CPU its GELUs compute erf as a rational function
(:mod:`deepsalt.models.rational_gelu`): agreement to float32 rounding, relative."""


def pixels(predictor: StudentPredictor, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soil-like spectra (a gentle slope plus noise), plausible covariates and survey ECe, some NaN."""
    rng = np.random.default_rng(seed)
    wavelength = predictor.wavelength
    base = 0.15 + 0.2 * (wavelength - wavelength[0]) / (wavelength[-1] - wavelength[0])
    reflectance = (
        base[None] * rng.uniform(0.6, 1.4, (n, 1)) + rng.normal(0, 0.01, (n, wavelength.size))
    ).astype(np.float32)
    ranges = [(10, 70), (5, 50), (0, 15), (20, 35), (10, 25), (0, 10), (20, 60), (5, 30)]  # COVARIATE_NAMES
    covariates = np.column_stack([rng.uniform(low, high, n) for low, high in ranges]).astype(np.float32)
    survey = rng.lognormal(1.0, 0.8, n).astype(np.float32)
    survey[rng.random(n) < 0.2] = np.nan
    return reflectance, covariates, survey


@pytest.fixture(scope="module")
def predictor(demo_world) -> StudentPredictor:
    return StudentPredictor.load(demo_world.student, device="cpu")


def test_bf16_autocast_agrees_with_fp32_within_the_stated_tolerance(predictor: StudentPredictor):
    inputs = pixels(predictor, 3000, seed=0)
    predictor.configure(InferenceSettings(precision=Precision.FP32))
    reference = predictor.predict(*inputs)
    with torch.inference_mode():  # the ensemble's own fp32 forward, which bf16 runs the score path of
        _, plain_score = predictor.net.forward_with_domain(*(torch.from_numpy(x) for x in inputs))
    predictor.configure(InferenceSettings(precision=Precision.BF16))
    try:
        reduced = predictor.predict(*inputs)
    finally:
        predictor.configure(InferenceSettings())
    assert all(values.dtype == np.float32 for values in reduced.values())
    moved = np.abs(reduced["ece"] - reference["ece"])
    assert np.nanmax(moved / reference["ece_std"]) < BF16_ECE_OF_SPREAD
    assert np.nanmax(np.abs(reduced["ece_std"] / reference["ece_std"] - 1)) < BF16_SPREAD
    assert moved.max() > 0  # bf16 really ran
    # The domain score's path stays in fp32 (see deepsalt.predict.domain_path): the same score as
    # the ensemble's own fp32 forward (the predictor's fp32 path is the fused one, tests/test_fused.py).
    np.testing.assert_allclose(reduced["domain_score"], plain_score.numpy(), rtol=1e-5, atol=1e-6)


def test_the_compiled_forward_pass_gives_the_plain_forward_passs_outputs(predictor: StudentPredictor):
    inputs = pixels(predictor, 5000, seed=1)
    predictor.configure(InferenceSettings(batch_pixels=2048))
    reference = predictor.predict(*inputs)
    predictor.configure(InferenceSettings(batch_pixels=2048, compile=True))
    try:
        assert isinstance(predictor.forward, CompiledForward)
        packaged = predictor.forward.compiled
        assert isinstance(packaged, PackagedForward)  # on a CPU in fp32: compiled ahead of time
        compiled_net = predictor.forward.traced.__self__  # the fused ensemble the compile traces
        assert any(isinstance(m, RationalGELU) for m in compiled_net.modules())
        assert not any(isinstance(m, RationalGELU) for m in predictor.net.modules())  # a copy was swapped
        compiled = predictor.predict(*inputs)  # 2048, 2048 and 904 rows: one graph for every size
        single = predictor.predict(*(x[:1] for x in inputs))  # one row is padded to two
        assert predictor.forward.compiled is packaged  # it did not fall back
    finally:
        predictor.configure(InferenceSettings())
    assert packaged.path is not None and packaged.path.parent == package_dir() and packaged.path.is_file()
    for name in reference:
        np.testing.assert_allclose(compiled[name], reference[name], rtol=COMPILED_TOLERANCE, atol=1e-6)
        np.testing.assert_allclose(single[name], reference[name][:1], rtol=COMPILED_TOLERANCE, atol=1e-6)


def configured_package(predictor: StudentPredictor) -> PackagedForward:
    """Compile (or find) the predictor's package through its first predict; the package in use."""
    predictor.configure(InferenceSettings(batch_pixels=2048, compile=True))
    predictor.wait_for_warm_up()
    packaged = predictor.forward.compiled
    assert isinstance(packaged, PackagedForward)
    return packaged


def test_a_second_process_finds_the_package_and_a_bad_one_is_compiled_again(
    predictor: StudentPredictor, monkeypatch, caplog
):
    inputs = pixels(predictor, 3000, seed=5)
    first = configured_package(predictor)  # the test above made it, or this one does
    try:
        reference = predictor.predict(*inputs)
        compiles: list[str] = []
        real_compile = deepsalt.compiled.compile_package
        good = first.path.read_bytes()

        def counted(program, path):
            compiles.append(path.name)
            real_compile(program, path)

        monkeypatch.setattr(deepsalt.compiled, "compile_package", counted)
        found = configured_package(predictor)  # a new predictor state, as in a new actor
        assert found.path == first.path and not found.compiled_here and compiles == []
        for name, values in predictor.predict(*inputs).items():
            np.testing.assert_array_equal(values, reference[name])

        first.path.write_bytes(good[: len(good) // 3])  # a truncated package (a copy cut short)

        def restored(program, path):  # the real compile is the test above; here the recovery is
            compiles.append(path.name)
            path.write_bytes(good)

        monkeypatch.setattr(deepsalt.compiled, "compile_package", restored)
        with caplog.at_level(logging.WARNING):
            again = configured_package(predictor)
        assert again.compiled_here and compiles == [first.path.name]
        assert "cannot be loaded" in caplog.text and "compiling it again" in caplog.text
        for name, values in predictor.predict(*inputs).items():
            np.testing.assert_array_equal(values, reference[name])
    finally:
        predictor.configure(InferenceSettings())


def test_the_package_key_follows_the_weights(predictor: StudentPredictor):
    forward = inference_forward(predictor.net, Precision.FP32)
    example = tuple(torch.from_numpy(x[:4]) for x in pixels(predictor, 4, seed=6))
    key = package_key(export_forward(forward, example))
    assert key == package_key(export_forward(inference_forward(predictor.net, Precision.FP32), example))
    other = copy.deepcopy(predictor.net)
    with torch.no_grad():
        other.members[0].encoder.net[0].bias.add_(1e-3)  # folded into the fused first layer
    assert package_key(export_forward(inference_forward(other, Precision.FP32), example)) != key


def test_a_forward_pass_that_cannot_be_compiled_runs_plain_with_a_warning(
    predictor, monkeypatch, caplog, tmp_path
):
    def broken(program, path):
        raise RuntimeError("no C++ compiler on this node")

    monkeypatch.setenv(PACKAGE_DIR_ENV, str(tmp_path))  # no package yet: it must compile
    monkeypatch.setattr(deepsalt.compiled, "compile_package", broken)
    inputs = pixels(predictor, 100, seed=2)
    reference = predictor.predict(*inputs)
    with caplog.at_level(logging.WARNING):
        predictor.configure(InferenceSettings(compile=True))
        predictor.wait_for_warm_up()  # the warm-up pass already falls back
    try:
        assert predictor.forward.compiled is None
        assert not any(isinstance(m, RationalGELU) for m in predictor.forward.plain.__self__.modules())
        assert "compiling the forward pass failed" in caplog.text and "no C++ compiler" in caplog.text
        for name, values in predictor.predict(*inputs).items():
            np.testing.assert_array_equal(values, reference[name])
        assert [p.name for p in tmp_path.iterdir() if p.suffix == ".pt2"] == []  # nothing half-written
    finally:
        predictor.configure(InferenceSettings())


def test_off_the_cpu_or_in_16_bits_the_forward_is_compiled_in_process(predictor, monkeypatch):
    compiled: list[object] = []

    def jit(fn, **options):
        compiled.append(options)
        return fn

    monkeypatch.setattr(torch, "compile", jit)  # which compiler is chosen is under test, not inductor
    predictor.configure(InferenceSettings(precision=Precision.BF16, compile=True))
    try:
        predictor.wait_for_warm_up()
        assert not isinstance(predictor.forward.compiled, PackagedForward)
        assert compiled == [{"dynamic": True}]
    finally:
        predictor.configure(InferenceSettings())


def test_the_compile_runs_beside_the_caller_and_the_first_predict_waits_for_it(
    predictor: StudentPredictor, monkeypatch
):
    warm_up = StudentPredictor.warm_up
    release = threading.Event()
    threads: list[str] = []

    def held(self: StudentPredictor) -> None:
        threads.append(threading.current_thread().name)
        assert release.wait(60), "configure waited for the compile"
        warm_up(self)

    monkeypatch.setattr(StudentPredictor, "warm_up", held)
    # the order is under test, not the compile (a real one runs in the test above): skip inductor
    monkeypatch.setattr(deepsalt.predict, "PackagedForward", lambda fn: fn)
    inputs = pixels(predictor, 300, seed=3)
    reference = predictor.predict(*inputs)
    predictor.configure(InferenceSettings(compile=True))  # returns while the compile is held
    try:
        assert predictor.warming is not None and not predictor.warming.done()
        release.set()
        compiled = predictor.predict(*inputs)
        assert predictor.warming is None and threads == ["deepsalt-compile_0"]
        assert isinstance(predictor.forward, CompiledForward) and predictor.forward.compiled is not None
    finally:
        release.set()
        predictor.configure(InferenceSettings())
    for name in reference:
        np.testing.assert_allclose(compiled[name], reference[name], rtol=COMPILED_TOLERANCE, atol=1e-6)


def test_a_failed_warm_up_is_raised_by_the_first_predict(predictor: StudentPredictor, monkeypatch):
    def failing(self: StudentPredictor) -> None:
        raise MemoryError("placeholder batch did not fit")

    monkeypatch.setattr(StudentPredictor, "warm_up", failing)
    monkeypatch.setattr(deepsalt.predict, "PackagedForward", lambda fn: fn)  # the error path is under test
    predictor.configure(InferenceSettings(compile=True))
    try:
        with pytest.raises(MemoryError, match="placeholder batch"):
            predictor.predict(*pixels(predictor, 10, seed=4))
        assert predictor.predict(*pixels(predictor, 10, seed=4))["ece"].shape == (10,)  # raised once
    finally:
        predictor.configure(InferenceSettings())


def test_a_cpu_batch_stays_cache_sized_and_a_setting_wins(predictor: StudentPredictor):
    assert default_batch(predictor.net, torch.device("cpu")) == CPU_BATCH
    predictor.configure(InferenceSettings(batch_pixels=777))
    assert predictor.batch_size == 777
    predictor.configure(InferenceSettings())
    assert predictor.batch_size == CPU_BATCH


@given(free_gb=st.floats(0.01, 200.0), per_pixel=st.integers(1_000, 200_000))
def test_a_gpu_batch_is_the_largest_power_of_two_that_fits_its_share_of_free_memory(free_gb, per_pixel):
    free = int(free_gb * 1024**3)
    batch = gpu_batch(free, per_pixel)
    low, high = GPU_BATCH_RANGE
    assert batch & (batch - 1) == 0 and low <= batch <= high
    fits = free * GPU_MEMORY_SHARE / per_pixel
    if low < batch < high:
        assert batch <= fits < 2 * batch


def test_activation_bytes_count_every_linear_layer(predictor: StudentPredictor):
    widths = sum(
        m.in_features + m.out_features for m in predictor.net.modules() if isinstance(m, torch.nn.Linear)
    )
    assert activation_bytes(predictor.net) == 4 * 4 * widths > 0


@pytest.mark.parametrize(
    "mode, pixels_per_actor, compiles",
    [
        (CompileMode.AUTO, COMPILE_MIN_PIXELS - 1, False),
        (CompileMode.AUTO, COMPILE_MIN_PIXELS, True),
        (CompileMode.ALWAYS, 1, True),
        (CompileMode.NEVER, 10 * COMPILE_MIN_PIXELS, False),
    ],
)
def test_auto_compiles_only_runs_large_enough_to_repay_it(mode, pixels_per_actor, compiles):
    assert ModelConfig(student_url="x", compile=mode).compiles(pixels_per_actor) is compiles


def test_precision_is_part_of_the_product_identity():
    from deepsalt.mapping.config import MapConfig
    from deepsalt.mapping.grid import Grid
    from deepsalt.mapping.identity import product_identity
    from deepsalt.mapping.predictor import ModelCard

    config = MapConfig.model_validate(
        {
            "region": {"bounds": [0, 0, 3000, 3000]},
            "inputs": {"stac_url": "http://stac.invalid", "covariates_url": "c"},
            "model": {"student_url": "s", "precision": "bf16"},
            "output": {"url": "o.zarr"},
        }
    )
    grid = Grid.from_config(config.grid, config.region)
    identity = product_identity(config, grid, ModelCard("id", "hash"), {})
    assert identity["model.precision"] == "bf16"
