"""The benchmark harness's own logic: medians, warm-up, interleaving, ratios, cost model, FLOPs, memory.

These tests never time anything; they check the arithmetic the benchmark figures are built from.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS
from torch import nn

from benchmarks import cost, floors, machine
from benchmarks.band_conversion import cases, dense_reflectance, stored_values
from benchmarks.mapping import (
    ActorTiles,
    MapCase,
    Watched,
    actor_peaks_mb,
    actor_tiles,
    centred_tile_bounds,
    marginal_figures,
    matched_speed,
    median_of,
    memory_figures,
    one_actor_figures,
    scaling_figures,
    split_forward,
    steady_px_s,
    steady_tiles,
)
from benchmarks.memory import ActorMemory, high_water_mark, peak_at
from benchmarks.report import (
    Target,
    cpu_text,
    forward_split_text,
    fresh_memory_text,
    host_speed_text,
    load_text,
    machine_section,
    profile_section,
    scaling_text,
    table,
    targets_section,
)
from benchmarks.timing import LinearCost, Timing, fit_linear_cost, floor_ratio, interleaved, measure
from benchmarks.training import chain_unit, overhead, projected_overhead, units_to_target
from deepsalt.mapping.grid import Grid


def test_timing_uses_the_median_of_the_measured_runs():
    t = Timing(seconds=(4.0, 1.0, 2.0), work=100.0)
    assert t.median == 2.0
    assert t.throughput == 50.0
    assert t.per_unit == 0.02
    assert t.spread == pytest.approx(1.5)  # (4 - 1) / 2
    assert t.as_dict()["median_s"] == 2.0


def test_timing_refuses_no_runs_and_non_positive_times():
    with pytest.raises(ValueError, match="at least one measured run"):
        Timing(seconds=(), work=1.0)
    with pytest.raises(ValueError, match="must be positive"):
        Timing(seconds=(1.0, 0.0), work=1.0)


def test_measure_runs_the_warmup_unmeasured_then_the_repeats():
    calls = []
    timing = measure(lambda: calls.append(1), work=10.0, warmup=2, repeats=3)
    assert len(calls) == 5
    assert len(timing.seconds) == 3
    assert timing.work == 10.0


def test_interleaved_runs_round_robin_after_a_warmup_round():
    order: list[str] = []
    runs = {name: (lambda n=name: order.append(n)) for name in ("a", "b", "c")}
    timings = interleaved(runs, {"a": 1.0, "b": 2.0, "c": 3.0}, warmup=1, repeats=2)
    assert order == ["a", "b", "c"] * 3
    assert {k: len(v.seconds) for k, v in timings.items()} == {"a": 2, "b": 2, "c": 2}
    assert timings["c"].work == 3.0


@pytest.mark.parametrize("warmup, repeats", [(-1, 3), (1, 0)])
def test_measure_and_interleaved_refuse_bad_counts(warmup, repeats):
    with pytest.raises(ValueError, match="repeats ≥ 1"):
        measure(lambda: None, 1.0, warmup=warmup, repeats=repeats)
    with pytest.raises(ValueError, match="repeats ≥ 1"):
        interleaved({"a": lambda: None}, {"a": 1.0}, warmup=warmup, repeats=repeats)


def test_floor_ratio_compares_per_pixel_costs():
    # 1.2 µs/px end to end against 0.6 (read) + 0.4 (model) µs/px
    assert floor_ratio(1.2e-6, 0.6e-6, 0.4e-6) == pytest.approx(1.2)


@given(
    fixed=st.floats(0.0, 100.0),
    slope=st.floats(1e-7, 1e-2),
    sizes=st.lists(st.integers(1_000, 10_000_000), min_size=2, max_size=6, unique=True),
)
def test_linear_cost_recovers_fixed_and_marginal_costs(fixed, slope, sizes):
    fit = fit_linear_cost(sizes, [fixed + slope * n for n in sizes])
    assert fit.per_unit == pytest.approx(slope, rel=1e-6)
    assert fit.fixed == pytest.approx(fixed, abs=1e-6 * (fixed + slope * max(sizes)))


def test_linear_cost_needs_two_sizes():
    with pytest.raises(ValueError, match="two different sizes"):
        fit_linear_cost([5, 5], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 sizes but 1 times"):
        fit_linear_cost([1, 2], [1.0])


def test_overhead_is_the_extra_share_of_plain_time():
    assert overhead(11.5, 10.0) == pytest.approx(0.15)
    assert overhead(9.0, 10.0) == pytest.approx(-0.1)


def test_projected_overhead_pays_the_start_up_once_per_run():
    plain, ray = LinearCost(fixed=1.0, per_unit=0.2), LinearCost(fixed=15.0, per_unit=0.2)
    # 200 units: 15 + 40 = 55 s against 1 + 40 = 41 s.
    assert projected_overhead(ray, plain, 200) == pytest.approx(55 / 41 - 1)
    assert projected_overhead(ray, plain, 2000) < projected_overhead(ray, plain, 200)


@given(
    plain_fixed=st.floats(0.0, 5.0),
    plain_unit=st.floats(0.01, 2.0),
    startup=st.floats(0.0, 60.0),
    extra=st.floats(0.0, 0.14),
)
def test_units_to_target_is_where_the_projected_overhead_reaches_the_bound(
    plain_fixed, plain_unit, startup, extra
):
    plain = LinearCost(plain_fixed, plain_unit)
    ray = LinearCost(plain_fixed + startup, plain_unit * (1 + extra))
    units = units_to_target(ray, plain)
    assert units is not None
    assert projected_overhead(ray, plain, units + 1e-6) <= 0.15 + 1e-9
    if units > 1:
        assert projected_overhead(ray, plain, units - 1) > 0.15


def test_no_run_length_meets_the_target_when_each_unit_alone_misses_it():
    plain, ray = LinearCost(1.0, 0.2), LinearCost(1.0, 0.2 * 1.2)
    assert units_to_target(ray, plain) is None


def test_the_default_chain_is_a_whole_number_of_chain_units():
    from deepsalt.training.config import TrainConfig

    per_unit, units = chain_unit()
    defaults = TrainConfig()
    assert {stage: n * units for stage, n in per_unit.items()} == {
        stage: getattr(defaults, stage).epochs for stage in ("sau", "teacher", "student")
    }
    assert min(per_unit.values()) >= 1


# ---------------------------------------------------------------- cost model

MEASURED = cost.Measured(
    read_s_per_pixel=3e-6,
    model_s_per_pixel_cpu=3e-6,
    flops_per_pixel=4e6,
    stored_bytes_per_pixel=300.0,
    pipeline_overhead=1.25,
)
WORKLOAD = cost.Workload(pixels=3e9, nodes=10, startup_s=360)


def test_gpu_node_rates_bottleneck_and_hours():
    node = cost.NodeType("gpu", cores=16, gpus=1, bandwidth_bytes_s=3e8, gpu_flops=1e14, gpu_efficiency=0.1)
    p = cost.project(node, WORKLOAD, MEASURED)
    assert p.io_px_s == pytest.approx(1e6)  # 3e8 B/s / 300 B per output pixel
    assert p.decode_px_s == pytest.approx(16 / 3e-6)  # the cores run the read path
    assert p.model_px_s == pytest.approx(1e13 / 4e6)  # 2.5e6 px/s on the GPU
    assert p.bottleneck == "object-store bandwidth"
    assert p.node_px_s == pytest.approx(1e6 / 1.25)
    assert p.node_hours == pytest.approx(3e9 / 8e5 / 3600)
    assert p.wall_hours == pytest.approx(p.node_hours / 10 + 0.1)


def test_cpu_node_shares_its_cores_between_read_path_and_model():
    node = cost.NodeType("cpu", cores=30, gpus=0, bandwidth_bytes_s=1e10)
    p = cost.project(node, WORKLOAD, MEASURED)
    combined = 30 / (3e-6 + 3e-6)  # read path 3 µs + model 3 µs, per output pixel
    assert p.decode_px_s == p.model_px_s == pytest.approx(combined)
    assert p.bottleneck == "CPU read + forward"
    assert p.node_px_s == pytest.approx(combined / 1.25)


def test_an_overhead_below_one_never_speeds_the_projection_up():
    node = cost.NodeType("cpu", cores=1, gpus=0, bandwidth_bytes_s=1e12)
    fast = cost.Measured(1.5e-6, 1e-6, 1e6, 300.0, pipeline_overhead=0.8)
    assert cost.project(node, WORKLOAD, fast).node_px_s == pytest.approx(1 / 2.5e-6)


class _TwoInputLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(10 + 2, 5)

    def forward(self, a, b):
        return self.linear(torch.cat([a, b], dim=1))


def test_flops_per_pixel_of_a_linear_layer():
    flops = cost.flops_per_pixel(_TwoInputLinear(), torch.rand(7, 10), torch.rand(7, 2))
    assert flops == 2 * 12 * 5


class _Encoder(nn.Module):
    """One encoder layer in eval mode: torch would take its fused fast path."""

    def __init__(self, seq: int, d: int, ff: int):
        super().__init__()
        self.seq = seq
        self.layer = nn.TransformerEncoderLayer(d, 4, ff, 0.0, batch_first=True).eval()

    def forward(self, x, _):
        return self.layer(x.reshape(len(x), self.seq, -1))


def test_flops_per_pixel_counts_encoder_layers_despite_the_fast_path():
    seq, d, ff = 6, 16, 32
    expected = 2 * seq * d * 3 * d + 2 * 2 * seq * seq * d + 2 * seq * d * d + 2 * 2 * seq * d * ff
    assert torch.backends.mha.get_fastpath_enabled()
    flops = cost.flops_per_pixel(_Encoder(seq, d, ff).eval(), torch.rand(4, seq * d), None)
    assert flops == expected
    assert torch.backends.mha.get_fastpath_enabled()  # restored


# ---------------------------------------------------------------- regions, memory, report


@settings(deadline=None)  # the first example pays pyproj's start-up on a loaded machine
@given(
    x=st.floats(-2.5e6, 2.5e6),
    y=st.floats(2.0e5, 3.5e6),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
)
def test_centred_tile_bounds_make_a_grid_of_whole_tiles(x, y, rows, cols):
    bounds = centred_tile_bounds((x, y), (rows, cols), tile=128, resolution=30.0)
    grid = Grid.from_bounds(CRS.from_epsg(5070), bounds, 30.0)
    assert grid.shape == (rows * 128, cols * 128)
    assert abs((bounds[0] + bounds[2]) / 2 - x) <= 15.0
    assert abs((bounds[1] + bounds[3]) / 2 - y) <= 15.0


def test_centred_tile_bounds_refuses_no_tiles():
    with pytest.raises(ValueError, match=r"at least one tile each way, got \(0, 2\)"):
        centred_tile_bounds((0.0, 0.0), (0, 2), tile=1024)


def test_actor_peaks_are_reported_per_actor_in_mb():
    runs = [{11: 300 * 1024**2, 12: 250 * 1024**2}, {13: 310 * 1024**2}]
    assert actor_peaks_mb(runs) == {"per_actor_mb": [300.0, 250.0, 310.0], "max_mb": 310.0}
    with pytest.raises(RuntimeError, match="no 'TileMapper' actor process was seen"):
        actor_peaks_mb([{}])


MB = 1024**2


def _actor(peaks_mb: list[float], predicted: list[int] | None = None, tiles: str = "abcd") -> ActorTiles:
    """An actor that finished tile k (``tiles[k - 1]``) at t = k + 0.5, its peak sampled at t = 0, 1, 2, ..."""
    series = tuple((float(t), int(mb * MB)) for t, mb in enumerate([peaks_mb[0], *peaks_mb]))
    done = tuple(k + 0.5 for k in range(1, len(peaks_mb) + 1))
    return ActorTiles(series, done, tuple(predicted or [100] * len(peaks_mb)), tuple(tiles[: len(peaks_mb)]))


SCENES = {"a": 6, "b": 9, "c": 4, "d": 8, "e": 9, "f": 6, "g": 9, "h": 6}


def test_peak_at_is_the_last_sample_at_or_before_the_time():
    series = [(1.0, 100), (2.0, 150), (3.0, 200)]
    assert peak_at(series, 2.5) == 150
    assert peak_at(series, 3.0) == 200
    with pytest.raises(ValueError, match=r"no memory sample at or before 0\.5; the first is at 1\.0"):
        peak_at(series, 0.5)


def test_actor_tiles_joins_memory_samples_with_the_completion_records_by_pid():
    from deepsalt.mapping.records import TileResult, TileStatus

    def done(tile: str, second: int, predicted: int) -> TileResult:
        when = f"2026-01-01T00:00:0{second}+00:00"
        return TileResult(
            tile=tile, status=TileStatus.DONE, worker="node-a:12", time=when, predicted=predicted
        )

    records = {"t1": done("t1", 5, 7), "t0": done("t0", 2, 9)}
    actors = actor_tiles({12: [(1.0, 10)], 13: [(1.0, 20)]}, records)
    base = 1767225600.0  # 2026-01-01T00:00:00Z
    assert [(a.done, a.predicted) for a in actors] == [((base + 2, base + 5), (9, 7)), ((), ())]
    assert [a.tiles for a in actors] == [("t0", "t1"), ()]


def test_a_set_of_tiles_has_the_floor_of_its_own_tiles_with_shared_sources_decoded_once():
    """Worked by hand: three tiles of 100 pixels; t0 and t1 share source s2."""
    tf = floors.TileFloors(
        pixels={"t0": 100, "t1": 100, "t2": 100},
        sources={
            "t0": frozenset({("a", 0, 0), ("a", 0, 1)}),
            "t1": frozenset({("a", 0, 1), ("b", 0, 0)}),
            "t2": frozenset({("c", 0, 0)}),
        },
        predicted={"t0": 50, "t1": 100, "t2": 0},
        decode_s={("a", 0, 0): 1.0, ("a", 0, 1): 2.0, ("b", 0, 0): 4.0},  # ("c", 0, 0) is sparse
        model_s_per_pixel=0.01,
        write_s={"t0": 0.1, "t1": 0.2, "t2": 0.4},
    )
    assert tf.parts(["t0"]) == pytest.approx({"decode_s": 3.0, "model_s": 0.5, "write_s": 0.1, "sum_s": 3.6})
    # t0 and t1: sources 1 + 2 + 4 (the shared one once), 150 predicted pixels, both writes
    assert tf.seconds(["t0", "t1"]) == pytest.approx(7.0 + 1.5 + 0.3)
    assert tf.per_pixel(["t0", "t1"]) == pytest.approx(8.8 / 200)
    assert tf.per_pixel(["t2"]) == pytest.approx(0.4 / 100)
    # What t1 and t2 add to t0: all three less t0 alone, over their 200 pixels
    everything = 7.0 + 0.01 * 150 + 0.7
    assert tf.marginal_per_pixel(["t0", "t1", "t2"], ["t0"]) == pytest.approx((everything - 3.6) / 200)
    with pytest.raises(ValueError, match="strict subset"):
        tf.marginal_per_pixel(["t0"], ["t0", "t1"])
    with pytest.raises(KeyError, match="t9"):
        tf.seconds(["t9"])


def test_memory_growth_compares_regions_at_the_same_tiles_per_actor():
    production = [_actor([1000, 1010, 1020, 1030], predicted=[50, 60, 70, 60])]  # P on 1 actor, 4 tiles
    double = [  # 2P on 2 actors, 4 tiles each
        _actor([1000, 1020, 1040, 1050], [50, 60, 90, 70], tiles="efgh"),
        _actor([1000, 1010, 1020, 1025], [40, 60, 60, 60]),
    ]
    m = memory_figures({"production": [production], "double": [double]}, SCENES)
    assert m["tiles_per_actor"] == {"production": [4], "double": [4, 4]}
    assert m["runs"]["double"]["max_mb"] == pytest.approx(1050, abs=0.1)
    assert m["growth_same_tiles"] == pytest.approx(1050 / 1030 - 1, abs=1e-3)
    assert m["heaviest_tile_predicted"] == {"production": 70, "double": 90}
    # the largest actor of the 2P run, its tiles, their scenes and its peak after each
    assert m["runs"]["double"]["largest_actors"] == [
        {"tiles": list("efgh"), "scenes": [9, 6, 9, 6], "peak_after_mb": [1000.0, 1020.0, 1040.0, 1050.0]}
    ]
    # Repeated runs: each run's largest actor peak, and the medians compared.
    again = [_actor([1000, 1100, 1150, 1200])]
    third = [_actor([1000, 1010, 1020, 1040])]
    m = memory_figures({"production": [production, again, third], "double": [double]}, SCENES)
    assert m["runs"]["production"]["run_max_mb"] == pytest.approx([1030, 1200, 1040], abs=0.1)
    assert m["runs"]["production"]["median_max_mb"] == pytest.approx(1040, abs=0.1)
    assert m["runs"]["production"]["max_mb"] == pytest.approx(1200, abs=0.1)
    assert m["growth_same_tiles"] == pytest.approx(1050 / 1040 - 1, abs=1e-3)
    with pytest.raises(ValueError, match="finished 4 tiles, not 5"):
        production[0].peak_after(5)


def test_steady_rate_sums_the_actors_rates_after_their_first_tile():
    one = ActorTiles(((0.0, 1),), (10.0, 12.0, 14.0, 16.0), (1, 1, 1, 1))  # 3 tiles in 6 s
    two = [
        ActorTiles(((0.0, 1),), (20.0, 23.0), (1, 1)),  # 1 tile in 3 s
        ActorTiles(((0.0, 1),), (21.0, 23.0), (1, 1)),  # 1 tile in 2 s
    ]
    assert steady_px_s([one], 100) == pytest.approx(50.0)
    assert steady_px_s(two, 100) == pytest.approx(100 / 3 + 100 / 2)
    assert steady_px_s([ActorTiles(((0.0, 1),), (5.0,), (1,))], 100) is None  # one tile: no interval
    named = [
        ActorTiles(((0.0, 1),), (20.0, 23.0, 25.0), (1, 1, 1), ("a", "b", "c")),
        ActorTiles(((0.0, 1),), (21.0,), (1,), ("d",)),  # one tile: not in the steady rate
    ]
    assert steady_tiles(named) == ["b", "c"]
    assert median_of([None, 3.0, 1.0, 2.0]) == 2.0
    assert median_of([None]) is None


def test_scaling_compares_each_two_actor_run_with_its_own_rounds_one_actor_run():
    def one(seconds_per_tile: float) -> Watched:
        return Watched(
            10.0,
            [
                ActorTiles(
                    ((0.0, 1),), (0.0, seconds_per_tile, 2 * seconds_per_tile), (1, 1, 1), ("a", "b", "c")
                )
            ],
        )

    def two(a: float, b: float) -> Watched:
        return Watched(
            8.0,
            [
                ActorTiles(((0.0, 1),), (0.0, a), (1, 1), ("x", "b")),
                ActorTiles(((0.0, 1),), (0.0, b), (1, 1), ("y", "c")),
            ],
        )

    # Round 2's host is twice as slow for both runs: its ratio is still that of the code.
    f = scaling_figures([one(2.0), one(4.0), one(2.0)], [two(2.0, 2.0), two(4.4, 4.4), two(2.5, 2.5)], 100)
    assert [r["ratio"] for r in f["rounds"]] == pytest.approx([2.0, 2 * 4 / 4.4, 2 * 2 / 2.5])
    assert f["ratio"] == pytest.approx(2 * 4 / 4.4)
    assert f["two_actors_steady_px_s"] == pytest.approx(80.0)
    assert f["two_actors_s"] == pytest.approx(8.0)
    assert f["rounds"][0]["two_actors_tile_s"] == [{"b": 2.0}, {"c": 2.0}]
    unfinished = Watched(8.0, [ActorTiles(((0.0, 1),), (3.0,), (1,), ("x",))])
    assert scaling_figures([one(2.0)], [unfinished], 100)["ratio"] is None
    with pytest.raises(ValueError):
        scaling_figures([one(2.0)], [], 100)


def test_scaling_sets_each_actor_against_the_lone_actor_on_the_same_tiles():
    # The lone actor's steady tiles: b (9 scenes) 3 s, c 2 s, d 2 s. Two actors, each at 0.9 of its
    # speed, time only their second tiles, c and d: their rates say 2.1x (300 px in 7 s against 2 x 45 px/s),
    # the same tiles 1.8x.
    alone = [ActorTiles(((0.0, 1),), (5.0, 8.0, 10.0, 12.0), (1,) * 4, ("a", "b", "c", "d"))]
    together = [
        ActorTiles(((0.0, 1),), (5.0, 5.0 + 2 / 0.9), (1, 1), ("a", "c")),
        ActorTiles(((0.0, 1),), (6.0, 6.0 + 2 / 0.9), (1, 1), ("b", "d")),
        ActorTiles(((0.0, 1),), (), (), ()),  # an actor that finished nothing is not counted
    ]
    assert matched_speed(alone, together) == pytest.approx(1.8)
    assert steady_px_s(together, 100) / steady_px_s(alone, 100) == pytest.approx(2.1)
    f = scaling_figures([Watched(12.0, alone)], [Watched(8.0, together)], 100)
    assert f["ratio"] == pytest.approx(1.8)
    assert f["rate_ratio"] == pytest.approx(2.1)
    # An actor with no steady tile the lone actor timed (it drew "a", its first tile elsewhere): no figure.
    odd = [*together[:1], ActorTiles(((0.0, 1),), (6.0, 8.0), (1, 1), ("b", "a"))]
    assert matched_speed(alone, odd) is None
    assert matched_speed(alone, [ActorTiles(((0.0, 1),), (6.0,), (1,), ("b",))]) is None


def test_scaling_text_gives_the_matched_figure_and_the_rate_ratio_beside_it():
    rounds = [{"ratio": 1.74, "rate_ratio": 1.79}, {"ratio": None, "rate_ratio": 1.9}]
    e = {"one_actor_steady_px_s": 100.0, "two_actors_steady_px_s": 180.0, "tiles_per_actor": {}}
    text = scaling_text(e, {"steady_ratio": 1.74, "rate_ratio": 1.8, "rounds": rounds})
    assert "**1.74×** as fast" in text
    assert "(1.74, n/a)" in text
    assert "**1.80** (1.79, 1.90)" in text
    assert "No steady state on every actor" in scaling_text(e, {"steady_ratio": None})


def test_one_actor_figures_are_medians_over_runs_against_the_floors_of_the_timed_tiles_measured_beside_each():
    tf = floors.TileFloors(
        pixels=dict.fromkeys(("a", "b", "c"), 100),
        sources={t: frozenset() for t in "abc"},
        predicted={"a": 0, "b": 100, "c": 200},
        decode_s={},
        model_s_per_pixel=0.01,
        write_s=dict.fromkeys("abc", 0.0),
    )
    runs = [
        Watched(
            30.0, [ActorTiles(((0.0, 1),), (10.0, 12.0, 14.0), (1, 1, 1), ("a", "b", "c"))]
        ),  # 2 tiles in 4 s
        Watched(20.0, [ActorTiles(((0.0, 1),), (10.0, 11.0, 13.0), (1, 1, 1), ("a", "b", "c"))]),  # in 3 s
        Watched(40.0, [ActorTiles(((0.0, 1),), (10.0, 15.0), (1, 1), ("c", "a"))]),  # 1 tile (a) in 5 s
    ]
    # The host ran at half its GEMM rate while the second run's floors were measured.
    slow = tf.at(floors.HostRates(gemm_flops_per_s=50.0, decode_s={}), flops_per_pixel=1.0)
    assert slow.model_s_per_pixel == pytest.approx(0.02)
    f = one_actor_figures(runs, 100, [tf, slow, tf])
    assert f["seconds"] == 30.0
    assert [r["steady_px_s"] for r in f["runs"]] == pytest.approx([50.0, 200 / 3, 20.0])
    assert f["steady_px_s"] == pytest.approx(50.0)
    # floors of b + c: 3 s over 200 px (6 s at the slow rate); of a alone: 0
    assert f["runs"][0]["ratio_steady"] == pytest.approx((1 / 50) / (3 / 200))
    assert f["runs"][1]["ratio_steady"] == pytest.approx((3 / 200) / (6 / 200))
    assert f["runs"][2]["ratio_steady"] is None  # a floor of zero: no ratio
    assert f["ratio_steady"] == pytest.approx(((1 / 50) / (3 / 200) + 0.5) / 2)
    assert [r["steady_floor_s_per_pixel"] for r in f["runs"]] == pytest.approx([3 / 200, 6 / 200, 0.0])
    with pytest.raises(ValueError, match="3 runs but 1 sets of floors"):
        one_actor_figures(runs, 100, [tf])


def _case(name: str, tile_ids: tuple[str, ...]) -> MapCase:
    """A region of 100-pixel tiles side by side (only what the marginal figures read)."""
    from types import SimpleNamespace

    from affine import Affine

    tiles = tuple(
        SimpleNamespace(id=t, y0=0, x0=10 * int(t[1:]), height=10, width=10, n_pixels=100) for t in tile_ids
    )
    return MapCase(name, None, tiles, {}, SimpleNamespace(transform=Affine.identity()))


def test_marginal_figures_pair_each_round_of_p_and_h_with_its_own_floors():
    tf = floors.TileFloors(
        pixels={"t0": 100, "t1": 100},
        sources={"t0": frozenset(), "t1": frozenset()},
        predicted={"t0": 100, "t1": 100},
        decode_s={},
        model_s_per_pixel=0.01,
        write_s={"t0": 0.0, "t1": 0.0},
    )
    slow = tf.at(floors.HostRates(gemm_flops_per_s=50.0, decode_s={}), flops_per_pixel=1.0)
    larger, smaller = _case("P", ("t0", "t1")), _case("H", ("t0",))
    rounds = [
        (Watched(30.0, []), Watched(20.0, []), tf),  # 0.10 s/px added, floor 0.01: 10, fixed 10 s
        (Watched(32.0, []), Watched(20.0, []), slow),  # 0.12 s/px, floor 0.02: 6, fixed 8 s
        (Watched(28.0, []), Watched(19.0, []), tf),  # 0.09 s/px, floor 0.01: 9, fixed 10 s
    ]
    m = marginal_figures(rounds, larger, smaller)
    assert [r["ratio"] for r in m["runs"]] == pytest.approx([10.0, 6.0, 9.0])
    assert [r["fixed_s"] for r in m["runs"]] == pytest.approx([10.0, 8.0, 10.0])
    assert m["ratio"] == pytest.approx(9.0)
    assert m["s_per_pixel"] == pytest.approx(0.10)
    assert m["seconds"] == 20.0
    assert m["floor_s_per_pixel"] == pytest.approx(0.01)
    with pytest.raises(RuntimeError, match="not tiles of"):
        marginal_figures(rounds, larger, _case("H", ("t2",)))


def test_memory_figures_name_the_runs_without_an_actor_that_mapped_a_tile():
    idle = ActorTiles(((0.0, 100),), (), ())
    with pytest.raises(
        RuntimeError, match=r"no 'TileMapper' actor that finished a tile was seen in the \['production'\]"
    ):
        memory_figures({"production": [[_actor([1000])], [idle]], "double": [[_actor([1000])]]}, SCENES)


def test_high_water_mark_is_at_least_the_current_resident_memory():
    me = psutil.Process()
    rss = me.memory_info().rss
    assert high_water_mark(me) >= rss > 0


def test_actor_memory_finds_processes_by_their_title():
    marker = "deepsalt-bench-memory-probe"
    code = "import sys, time; blob = bytearray(64 * 1024**2); print('ready', flush=True); time.sleep(30)"
    with ActorMemory(marker, interval_s=0.05) as memory:
        child = subprocess.Popen([sys.executable, "-c", code, marker], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n"
            memory.sample()
        finally:
            child.kill()
            child.wait()
    assert list(memory.peaks) == [child.pid]
    assert memory.peaks[child.pid] > 64 * 1024**2


def titled(marker: str) -> subprocess.Popen:
    """A sleeping child whose command line holds ``marker``, returned once it does: between the
    fork and the exec the child still shows the test's own command line, and on a busy machine a
    scan right after ``Popen`` met it there."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    process = psutil.Process(child.pid)
    for _ in range(1000):
        if marker in process.cmdline():
            return child
        time.sleep(0.01)
    child.kill()
    child.wait()
    pytest.fail(f"the child never showed {marker!r} in its command line")


def test_actor_memory_samples_known_actors_between_the_scans_for_new_ones():
    marker = "deepsalt-bench-memory-rescan"
    probe = ActorMemory(marker)
    child = titled(marker)
    try:
        probe.sample(rescan=False)
        assert probe.peaks == {}  # not looked for yet
        probe.sample()
        probe.sample(rescan=False)
        assert len(probe.series[child.pid]) == 2  # found by the scan, then sampled without one
    finally:
        child.kill()
        child.wait()
    probe.sample(rescan=False)  # a watched actor that ended is dropped, its samples kept
    assert len(probe.series[child.pid]) == 2


def test_actor_memory_leaves_out_processes_that_were_running_before():
    marker = "deepsalt-bench-memory-earlier"
    child = titled(marker)
    try:
        probe = ActorMemory(marker)
        probe.sample()
        assert child.pid in probe.peaks  # it is found ...
        with ActorMemory(marker, interval_s=0.05) as memory:
            memory.sample()
    finally:
        child.kill()
        child.wait()
    assert memory.peaks == {}  # ... but not by a watch that began after it


def test_actor_memory_ignores_processes_outside_its_own_tree():
    marker = "deepsalt-bench-memory-stranger"
    # The shell exits at once, so the sleeper is re-parented away from this process. The marker is
    # assembled by the shell, so the shell's own command line (our child, briefly) never holds it.
    shell = (
        f"m={marker[:-3]}; {sys.executable} -c 'import time; time.sleep(30)' ${{m}}{marker[-3:]} "
        ">/dev/null 2>&1 & echo $!"
    )
    with ActorMemory(marker, interval_s=0.05) as memory:
        pid = int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True).stdout)
        try:
            assert marker in " ".join(psutil.Process(pid).cmdline())
            memory.sample()
        finally:
            os.kill(pid, signal.SIGKILL)
    assert memory.peaks == {}


def test_targets_are_met_in_the_stated_direction():
    assert Target("ratio", 1.2, 1.25, at_most=True).met
    assert not Target("ratio", 1.3, 1.25, at_most=True).met
    assert Target("speed-up", 2.0, 2.0, at_most=False).met
    assert not Target("speed-up", 1.69, 1.7, at_most=False).met


def test_targets_section_marks_misses():
    rows = [Target("a", 1.0, 1.25, True).as_dict(), Target("b", 1.5, 1.7, False).as_dict()]
    text = targets_section(rows)
    assert "| a | 1 | ≤ 1.25 | met |" in text
    assert "| b | 1.5 | ≥ 1.7 | **missed** |" in text


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
cache size\t: 512 KB

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
"""


def test_cpu_identity_reads_the_first_processor_and_the_isa_torch_runs():
    identity = machine.cpu_identity(CPUINFO)
    assert identity == {
        "vendor": "AuthenticAMD",
        "family": "25",
        "model": "1",
        "stepping": "1",
        "cache": "512 KB",
        "torch_isa": torch.backends.cpu.get_cpu_capability(),
    }
    assert machine.first_processor(CPUINFO)["model name"] == "AMD EPYC"


def test_cpu_text_tells_hosts_of_one_name_apart_and_reads_older_runs():
    recorded = {"cpu_model": "AMD EPYC", "cpu": {**machine.cpu_identity(CPUINFO), "torch_isa": "AVX2"}}
    assert cpu_text(recorded) == (
        "AMD EPYC (AuthenticAMD family 25 model 1 stepping 1; 512 KB cache per core; torch runs AVX2 kernels)"
    )
    assert cpu_text({"cpu_model": "AMD EPYC"}) == "AMD EPYC"


def test_forward_split_puts_compiled_and_eager_matrix_products_apart_from_the_rest():
    split = split_forward(
        {
            "mkldnn::_linear_pointwise": 4_000_000.0,  # compiled linears
            "aten::addmm": 500_000.0,  # eager
            "aten::bmm": 500_000.0,
            "## Call CompiledFxGraph None ##": 3_000_000.0,  # the inductor kernels' own time
            "aten::empty": 1_000_000.0,
        },
        top=2,
    )
    assert split.seconds == pytest.approx(9.0)
    assert split.matrix_s == pytest.approx(5.0)
    assert split.rest_top == (("## Call CompiledFxGraph None ##", 3.0), ("aten::empty", 1.0))
    figures = split.as_dict(flops=250e9, gemm_flops_per_s=100e9)
    assert figures["matrix_share"] == pytest.approx(5 / 9)
    assert figures["matrix_flops_per_s"] == pytest.approx(50e9)
    assert figures["matrix_share_of_gemm"] == pytest.approx(0.5)
    text = forward_split_text(figures)
    assert "take 56% of the forward pass and run at 50.0 GFLOP/s (50% of that GEMM rate)" in text
    assert "overhead: ## Call CompiledFxGraph None ## 3.00 s, aten::empty 1.00 s." in text
    assert forward_split_text(None) == ""


def test_profile_section_shows_the_steady_tile_and_names_older_runs_first_tile_profile_as_cold():
    row = {"function": "decompress (tiff_blocks.py:197)", "seconds": 3.2, "share": 0.2}
    steady = profile_section(
        {
            "profile_steady_tile": {"tile": "r00000_c00001", "self_times": [row]},
            "profile_first_tile": [
                {"function": "lock.acquire (<built-in>:0)", "seconds": 16.8, "share": 0.38}
            ],
        }
    )
    assert "steady tile's time goes" in steady and "r00000_c00001 mapped after" in steady
    assert "| decompress (tiff_blocks.py:197) | 3.2 | 20% |" in steady
    assert (
        "first tile on a fresh mapper (cold, waiting for the compile) spent most in: lock.acquire" in steady
    )
    older = profile_section({"profile_one_tile": [row]})
    assert "first tile's time goes" in older and "cold" in older
    assert "| decompress (tiff_blocks.py:197) | 3.2 | 20% |" in older


def speed_results(round_rates, beside_predictor, steal=None):
    return {
        "meta": {"steal_share": steal},
        "mapping": {
            "floors": {"rounds": [{"gemm_flops_per_s": r * 1e9} for r in round_rates]},
            "own_code": {"gemm_flops_per_s": beside_predictor * 1e9},
        },
    }


def test_host_speed_is_steady_only_while_every_gemm_rate_of_the_run_is_within_the_spread():
    steady = host_speed_text(speed_results([96.4, 91.4, 84.5], 96.2, steal=0.004))
    assert "84.5–96.4 GFLOP/s (1.14×, 4 measurements), steady; 0.4% of the CPU time was stolen" in steady
    unsteady = host_speed_text(speed_results([35.6, 75.5, 73.3], 69.5))
    assert "35.6–75.5 GFLOP/s (2.12×, 4 measurements), **not steady**" in unsteady
    assert "stolen" not in unsteady  # older runs did not record it
    assert "not measured more than once" in host_speed_text({"meta": {}, "mapping": {}})


def test_steal_share_is_the_stolen_part_of_the_cpu_time_between_two_readings():
    assert machine.steal_share((10.0, 1000.0), (13.0, 1100.0)) == pytest.approx(0.03)
    assert machine.steal_share((10.0, 1000.0), (10.0, 1000.0)) is None
    stolen, total = machine.cpu_seconds()
    assert 0 <= stolen <= total


def test_fresh_memory_writes_into_pages_it_hands_back_to_the_kernel():
    process = psutil.Process()
    before = process.memory_info().rss
    rates = machine.fresh_memory(megabytes=64, idle_s=0.0)
    # Each mapping is unmapped again: under the actors' allocator a numpy array would stay resident,
    # and the rates would not be of fresh pages.
    assert process.memory_info().rss - before < 32 * 2**20
    assert rates.megabytes == 64 and rates.idle_s == 0.0
    assert min(rates.resident_gb_s, rates.fresh_gb_s, rates.after_idle_gb_s) > 0
    assert set(rates.as_dict()) == {"megabytes", "resident_gb_s", "fresh_gb_s", "after_idle_gb_s", "idle_s"}


def recorded_machine(fresh_memory=None):
    return {
        "cpu_model": "AMD EPYC",
        "logical_cores": 2,
        "usable_cores": 2,
        "memory_gb": 23.4,
        "gpu": None,
        "os": "Linux",
        "versions": {"torch": "2.13.0"},
        "load_average_1_5_15": [0.1, 0.0, 0.0],
        **({"fresh_memory": fresh_memory} if fresh_memory else {}),
    }


def test_fresh_memory_text_says_when_the_host_takes_freed_memory_back():
    rates = {"megabytes": 256, "resident_gb_s": 18.8, "fresh_gb_s": 4.19, "idle_s": 3.0}
    taken = fresh_memory_text(recorded_machine(rates | {"after_idle_gb_s": 0.25}))
    assert taken is not None
    assert "4.2 GB/s right after others were freed and 0.25 GB/s after they lay free for 3 s" in taken
    assert "takes freed memory back" in taken and "GLIBC_TUNABLES" in taken
    kept = fresh_memory_text(recorded_machine(rates | {"after_idle_gb_s": 3.9}))
    assert kept is not None and kept.endswith("freed memory stays quick to reuse here.")
    assert fresh_memory_text(recorded_machine()) is None  # runs before 2026-12-03
    section = machine_section(recorded_machine(rates | {"after_idle_gb_s": 0.25}), "load note")
    assert "- Memory (one thread, 256 MB): rewriting pages a process holds ran at 18.8 GB/s" in section
    assert "Memory (" not in machine_section(recorded_machine(), "load note")


def test_load_text_follows_the_load_at_the_start():
    assert "under load" in load_text({"under_load": True})
    assert "No other process" in load_text({"under_load": False})


def test_table_formats_large_and_small_numbers():
    text = table(("x", "y"), [("big", 1234567.0), ("small", 0.000123456), ("nan", math.nan)])
    assert "| big | 1,234,567 |" in text
    assert "| small | 0.000123 |" in text
    assert "| nan | n/a |" in text


def test_band_conversion_cases_pick_and_resample_and_agree_with_the_dense_baseline():
    """The benchmark compares like with like: its baseline (the dense product it replaced) gives the
    same reflectance, NaN pattern and out-of-range flags as BandMatcher on both cases."""
    measured = cases()
    assert measured["picked"].pick is not None and measured["resampled"].pick is None
    for matcher in measured.values():
        raw = stored_values(matcher.n_bands, 3000)
        got, beyond = matcher.reflectance(raw)
        old, old_beyond = dense_reflectance(matcher, raw)
        assert np.isnan(old).any(axis=1).any() and np.isfinite(old).all(axis=1).any()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(old))
        np.testing.assert_array_equal(beyond, old_beyond)
        np.testing.assert_allclose(got, old, rtol=1e-6, atol=1e-7)


def locked_kib() -> int:
    """This process's locked memory (``VmLck``), KiB."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmLck is Linux's")
def test_held_files_stay_locked_in_memory_until_exit(tmp_path):
    from benchmarks.page_cache import HeldFiles, warm

    data = np.random.default_rng(0).integers(0, 255, 3 << 20, dtype=np.uint8).tobytes()
    paths = [str(tmp_path / f"scene{i}.tif") for i in range(2)]
    for i, path in enumerate(paths):
        Path(path).write_bytes(data[: (1 << 20) * (1 + i)])
    (tmp_path / "empty.tif").write_bytes(b"")
    before = locked_kib()
    with HeldFiles([*paths, paths[0], str(tmp_path / "empty.tif")]) as held:
        if held.not_locked:  # no CAP_IPC_LOCK and RLIMIT_MEMLOCK below 3 MiB
            assert set(held.not_locked) <= set(paths) and held.locked_bytes < 3 << 20
        else:
            assert held.locked_bytes == 3 << 20  # each file once; the empty one skipped
            assert locked_kib() - before >= 3 << 10
    assert locked_kib() == before
    assert warm(paths) == 3 << 20


def test_the_report_says_whether_the_scenes_were_held():
    from benchmarks.report import page_cache_text

    assert "held in memory (locked) through every run: 4.20 GB." in page_cache_text(
        {"locked_bytes": 4.2e9, "not_locked": {}}
    )
    assert "2 files could not be locked" in page_cache_text(
        {"locked_bytes": 0, "not_locked": {"a": "Operation not permitted", "b": "Operation not permitted"}}
    )
    assert "warmed, not held" in page_cache_text(None)


def test_the_recipes_budget_counts_the_benchmarks_locked_pages_as_available():
    from benchmarks.dask_recipe import MEMORY_SHARE, memory_budget

    held = 4 << 30
    with_held, without = memory_budget(held), memory_budget()
    assert with_held - without == pytest.approx(held * MEMORY_SHARE, abs=512 << 20)  # memory moves a little
