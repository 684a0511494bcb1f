"""``results.json`` and ``RESULTS.md``: the numbers as data, and the same numbers for people."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """One target of the issue: the measured value against its bound."""

    name: str
    value: float
    bound: float
    at_most: bool
    """True: met when value ≤ bound; False: met when value ≥ bound."""
    absolute: bool = False
    """Judge ``|value|`` (a change that may go either way, e.g. within ±10 %)."""

    @property
    def met(self) -> bool:
        value = abs(self.value) if self.absolute else self.value
        return value <= self.bound if self.at_most else value >= self.bound

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "bound": self.bound,
            "at_most": self.at_most,
            "absolute": self.absolute,
            "met": self.met,
        }


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def fmt(value: float, digits: int = 3) -> str:
    """Readable number: thousands separators for large values, significant digits for small ones."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(fmt(c) if isinstance(c, float) else str(c) for c in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def cpu_text(machine: dict[str, Any]) -> str:
    """The CPU's name, with its family, model and the ISA torch runs on it when the run recorded them."""
    cpu = machine.get("cpu")
    if not cpu:  # runs before 2026-12-02 recorded the name only
        return machine["cpu_model"]
    ident = " ".join(f"{key} {cpu[key]}" for key in ("family", "model", "stepping") if key in cpu)
    parts = [" ".join(p for p in (cpu.get("vendor"), ident) if p)]
    if "cache" in cpu:
        parts.append(f"{cpu['cache']} cache per core")
    parts.append(f"torch runs {cpu['torch_isa']} kernels")
    return f"{machine['cpu_model']} ({'; '.join(p for p in parts if p)})"


HOST_SPEED_SPREAD = 1.25
"""Largest ratio between the single-core GEMM rates measured within one run for the host to count as
steady. Floors measured beside each round absorb a slow host, not one whose speed changes within a
round; quiet hosts stay well inside this (notes.md, session 21)."""


def gemm_rates(results: dict[str, Any]) -> list[float]:
    """Every single-core GEMM rate the mapping family measured (one per round, one beside the
    predictor), in FLOP/s."""
    m = results.get("mapping") or {}
    rates = [r["gemm_flops_per_s"] for r in m.get("floors", {}).get("rounds", [])]
    beside_predictor = m.get("own_code", {}).get("gemm_flops_per_s")
    return rates + ([beside_predictor] if beside_predictor else [])


def host_speed_text(results: dict[str, Any]) -> str:
    """Whether the host kept one speed through the run: the load average sees only this machine's
    processes, not the other tenants of a virtual machine's host, which show as changes in the GEMM
    rate and as stolen CPU time."""
    rates = gemm_rates(results)
    steal = results["meta"].get("steal_share")
    stolen = f"; {steal:.1%} of the CPU time was stolen by the hypervisor" if steal is not None else ""
    if len(rates) < 2:
        return f"Host speed: not measured more than once{stolen}."
    low, high = min(rates), max(rates)
    spread = high / low
    verdict = (
        "steady"
        if spread <= HOST_SPEED_SPREAD
        else f"**not steady** (more than {HOST_SPEED_SPREAD}×): rounds ran at different speeds, "
        "so their figures differ by more than the code does"
    )
    return (
        f"Host speed: the single-core GEMM rate ranged over {low / 1e9:.1f}–{high / 1e9:.1f} GFLOP/s "
        f"({spread:.2f}×, {len(rates)} measurements), {verdict}{stolen}."
    )


HOST_TAKES_MEMORY_BACK = 3.0
"""Fresh pages slower by more than this after lying free than right after a free: the host takes
freed memory back (notes.md, session 22)."""


def fresh_memory_text(machine: dict[str, Any]) -> str | None:
    """How fast the machine hands out memory, and whether probes outside the actors' allocator
    settings would measure it instead of the code (None for runs before 2026-12-03)."""
    rates = machine.get("fresh_memory")
    if not rates:
        return None
    text = (
        f"Memory (one thread, {rates['megabytes']} MB): rewriting pages a process holds ran at "
        f"{rates['resident_gb_s']:.1f} GB/s, first writes to pages new to it at {rates['fresh_gb_s']:.1f} GB/s "
        f"right after others were freed and {rates['after_idle_gb_s']:.2f} GB/s after they lay free for "
        f"{rates['idle_s']:g} s"
    )
    if rates["after_idle_gb_s"] * HOST_TAKES_MEMORY_BACK < rates["fresh_gb_s"]:
        return (
            f"{text}. This host takes freed memory back within seconds, so a process that returns its "
            "arrays to the kernel between blocks pays the slow rate on every block. The actors and this "
            "run keep theirs (`GLIBC_TUNABLES`, `deepsalt.mapping.pipeline.ACTOR_MALLOC_TUNABLES`); a "
            "probe run without that setting measures the host's memory, not the code."
        )
    return f"{text}: freed memory stays quick to reuse here."


def load_text(meta: dict[str, Any]) -> str:
    """What the load average at the start says about the run."""
    if meta.get("under_load"):
        return (
            "Absolute numbers were taken under load (other engineers' tests shared the cores): "
            "compare the side-by-side ratios, not the absolute rates."
        )
    return "No other process of this machine was busy when the run started (load average)."


def machine_section(machine: dict[str, Any], load_note: str, speed_note: str = "") -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return "\n".join(
        [
            "## Machine",
            f"- CPU: {cpu_text(machine)}, {machine['logical_cores']} logical cores "
            f"({machine['usable_cores']} usable), {machine['memory_gb']} GB RAM, GPU: {machine['gpu'] or 'none'}",
            f"- OS: {machine['os']}",
            f"- Versions: {versions}",
            f"- Load average (1/5/15 min) at start: {machine['load_average_1_5_15']}, at end: "
            f"{machine.get('load_average_end', 'n/a')}",
            f"- {load_note}",
            *([f"- {speed_note}"] if speed_note else []),
            *([f"- {memory_note}"] if (memory_note := fresh_memory_text(machine)) else []),
        ]
    )


def targets_section(targets: list[dict[str, Any]]) -> str:
    rows = [
        (
            t["name"],
            fmt(t["value"]),
            ("|x| " if t.get("absolute") else "") + ("≤ " if t["at_most"] else "≥ ") + fmt(t["bound"]),
            "met" if t["met"] else "**missed**",
        )
        for t in targets
    ]
    return "## Targets\n" + table(("target", "measured", "bound", ""), rows)


def timings_section(title: str, timings: dict[str, dict[str, Any]], unit: str) -> str:
    rows = [
        (name, fmt(t["median_s"]), fmt(t["throughput_per_s"]), f"{t['spread']:.0%}", len(t["seconds"]))
        for name, t in timings.items()
    ]
    return f"### {title}\n" + table(("run", "median s", f"{unit}/s", "spread", "runs"), rows)


def render(results: dict[str, Any], notes: str) -> str:
    """The markdown summary (sections for the families that ran)."""
    meta = results["meta"]
    parts = [
        "# DeepSalt benchmarks",
        f"Generated by `make bench{' -- --quick' if meta['quick'] else ''}` on {meta['started']} "
        f"({meta['warmup']} warm-up run(s), median of {meta['repeats']} measured runs per figure; "
        "every ratio compares runs interleaved round-robin in the same process).",
        machine_section(meta["machine"], load_text(meta), host_speed_text(results)),
        targets_section(results["targets"]),
    ]
    if "mapping" in results:
        parts.append(mapping_section(results["mapping"]))
    if "training" in results:
        parts.append(training_section(results["training"]))
    if "cost" in results:
        parts.append(cost_section(results["cost"]))
    if notes:
        parts.append(notes.strip())
    return "\n\n".join(parts) + "\n"


def mapping_section(m: dict[str, Any]) -> str:
    g, f, own, e = m["geometry"], m["floors"], m["own_code"], m["end_to_end"]
    alt, sc, mem, pred = m["alternative"], m["scaling"], m["memory"], m["predictor"]
    p = m["regions"]["production"]
    pixels = p["pixels"]
    regions = table(
        ("region", "grid (h × w)", "tiles", "pixels", "scenes", "scenes per tile", "scene cloud cover %"),
        [
            (
                name,
                " × ".join(map(str, r["grid_shape"])),
                r["tiles"],
                r["pixels"],
                r["scenes"],
                ", ".join(map(str, r["scenes_per_tile"])),
                ", ".join(f"{c:g}" for c in r["scene_cloud_cover"]),
            )
            for name, r in m["regions"].items()
        ],
    )
    us = 1e6 / pixels
    floor_rows = [
        (
            "(a) decode: decompress the source tiles read",
            f["decode_s"] * us,
            "read path (own code)",
            own["read_s"] * us,
        ),
        (
            "(b) model: counted FLOPs at the GEMM rate",
            f["model_s"] * us,
            "predictor on pixels in memory",
            own["model_s"] * us,
        ),
        (
            "(c) write: encode + write the output arrays",
            f["write_s"] * us,
            "store.write_tile",
            own["write_s"] * us,
        ),
        (
            "sum",
            f["sum_s"] * us,
            "sum",
            (own["read_s"] + own["model_s"] + own["write_s"]) * us,
        ),
    ]
    decoded_why = (
        f": {f['decoded_tiles_per_output_tile']:,} of them because a source tile that several output tiles "
        "read is decoded for each (the floor decodes it once), the rest because the cache had dropped them."
        if "decoded_tiles_per_output_tile" in f
        else " (a tile dropped from the cache and needed again is decoded again)."
    )
    steady = e.get("one_actor_steady_px_s")
    steady_floor, marginal_floor = f.get("steady_s_per_pixel"), f.get("marginal_s_per_pixel")
    e2e_rows = [
        (
            "steady state (first tile and start-up left out)",
            1e6 / steady if steady else float("nan"),
            steady_floor * 1e6 if steady_floor else "n/a",
            e.get("ratio_steady"),
            e.get("ratio_steady_p_average_floor", e.get("ratio_steady")),
        ),
        (
            "marginal (fit over H and P: start-up removed)",
            1e6 / e["one_actor_marginal_px_s"],
            marginal_floor * 1e6 if marginal_floor else "n/a",
            e["ratio_marginal"],
            e.get("ratio_marginal_p_average_floor", e["ratio_marginal"]),
        ),
        (
            "as measured (P, start-up and compile included)",
            1e6 / e["one_actor_px_s"],
            f.get("average_s_per_pixel", f["sum_s_per_pixel"]) * 1e6,
            e["ratio_as_measured"],
            e["ratio_as_measured"],
        ),
    ]
    per_tile = table(
        ("tile", "scenes", "pixels predicted", "(a) µs/px", "(b) µs/px", "(c) µs/px", "sum µs/px"),
        [
            (
                tile,
                t["scenes"],
                f"{t['predicted']:,}",
                t["decode_s"] * 1e6,
                t["model_s"] * 1e6,
                t["write_s"] * 1e6,
                t["sum_s"] * 1e6,
            )
            for tile, t in f.get("per_tile", {}).items()
        ],
    )
    dask_rows = [
        (
            r["region"],
            r["pixels"],
            fmt(r["seconds"]) if r["seconds"] else "stopped",
            fmt(r["pixels"] / r["seconds"]) if r["seconds"] else "n/a",
            f"{r['peak_bytes'] / 1024**3:.1f}",
            f"{r['budget_bytes'] / 1024**3:.1f}",
            "yes" if r["finished"] else "no: stopped at the memory budget",
        )
        for r in alt["runs"]
    ]
    return "\n\n".join(
        [
            "## Mapping",
            f"Measured {m.get('measured_at', 'with the run')}. Grid {g['crs']} at 30 m over UTM scenes; tiles of "
            f"{g['tile']}² pixels (one shard each, chunks {g['chunk']}²), blocks of {g['block']}². P is the "
            "production-shaped region, H its western half, 2P P and as many tiles again.\n\n" + regions,
            "### Floors for P, per output pixel (µs), one core\n"
            + table(("physical floor", "µs/px", "own code alone", "µs/px"), floor_rows)
            + f"\n\nGEMM rate {f['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s (1024² fp32, one thread; the first round's, "
            "whose floors this table shows); student "
            f"{f['student_flops_per_pixel'] / 1e6:.3f} MFLOP per predicted pixel (counted); {f['predicted_pixels']:,} of "
            f"{pixels:,} pixels predicted. Decode floor: {f['decoded_tiles']:,} distinct source tiles, "
            f"{f['stored_bytes'] / 1e9:.2f} GB stored → {f['decoded_bytes'] / 1e9:.2f} GB decoded; the read path "
            f"decoded {own['read_tiles_decoded']:,}{decoded_why} "
            f"The student's forward pass runs at **{own['model_share_of_gemm']:.0%}** of the GEMM rate "
            f"measured beside it ({own.get('gemm_flops_per_s', f['gemm_flops_per_s']) / 1e9:.1f} GFLOP/s) "
            f"({own['model_s_per_predicted_pixel'] * 1e6:.2f} µs per predicted pixel, {own['model_sample_pixels']:,} pixels). "
            + forward_split_text(m.get("forward_split"))
            + page_cache_text(m.get("page_cache")),
            "### End-to-end `run_map`, 1 actor, against the physical floors\n"
            + table(
                ("", "µs/px", "floors of the same tiles, µs/px", "÷ those floors", "÷ P's average floors"),
                e2e_rows,
            )
            + f"\n\nRun times (medians): H {e['half_one_actor_s']:.1f} s, P {e['one_actor_s']:.1f} s (fixed cost from the fit "
            f"{e['one_actor_fixed_s']:.1f} s: Ray Data, actor start, checkpoint load and compile). Each cost is "
            "compared with the floors of the tiles it was measured on: the steady state with the tiles after "
            f"the actor's first ({', '.join(f.get('steady_tiles', [])) or 'n/a'}), the marginal cost with what P's "
            "tiles add to H's (a source tile that tiles of H also read is in H's floor). P's average, the "
            "comparison used until 2026-11-30, is beside it. "
            + one_actor_runs_text(e, f)
            + "Floors per tile:\n\n"
            + per_tile,
            scaling_text(e, sc),
            "### The usual alternative (rioxarray mosaic + dask `map_blocks` + `to_zarr`, 2 threads)\n"
            + table(("region", "pixels", "s", "px/s", "peak GB", "budget GB", "finished"), dask_rows)
            + (
                f"\n\nDeepSalt's 2 actors in steady state on P ({fmt(e['two_actors_steady_px_s'])} px/s) against "
                f"the recipe on {alt['held_region']} ({fmt(alt['dask_px_s'])} px/s): **{alt['ratio_steady']:.2f}×**."
                if alt.get("ratio_steady")
                else ""
            ),
            "### Memory per actor (peak resident, VmHWM)\n"
            + table(
                (
                    "case",
                    "tiles per actor",
                    "per-actor peaks, every run (MB)",
                    "largest per run (MB)",
                    "median of those",
                    "heaviest tile (px predicted)",
                ),
                [
                    (
                        name,
                        ", ".join(map(str, mem["tiles_per_actor"][name])),
                        ", ".join(map(str, r["per_actor_mb"])),
                        ", ".join(map(str, r.get("run_max_mb", [r["max_mb"]]))),
                        r.get("median_max_mb", r["max_mb"]),
                        f"{mem['heaviest_tile_predicted'][name]:,}",
                    )
                    for name, r in mem["runs"].items()
                ],
            )
            + "\n\n2P on 2 actors against P on 1 actor (4 tiles per actor each; medians over their runs): "
            + f"**{mem['growth_same_tiles']:+.1%}**."
            + largest_actors_text(mem),
            profile_section(m),
            "### Predictor settings in force\n"
            + table(("setting", "value"), [(k, v) for k, v in pred.items()]),
        ]
    )


def forward_split_text(split: dict[str, Any] | None) -> str:
    """How the forward pass's time divides between its matrix products and the rest."""
    if not split or split["matrix_share"] is None:  # runs before 2026-12-02 did not split it
        return ""
    rate = split["matrix_flops_per_s"]
    rest = ", ".join(f"{row['op']} {row['seconds']:.2f} s" for row in split["rest_top"][:4])
    return (
        f"Under torch's profiler the matrix products take {split['matrix_share']:.0%} of the forward pass "
        f"and run at {rate / 1e9:.1f} GFLOP/s ({split['matrix_share_of_gemm']:.0%} of that GEMM rate); the rest "
        "is the layer norms, activations, mixture and domain score (compiled, they are the graph's own "
        f"time) and the calls' overhead: {rest}. "
    )


def profile_section(m: dict[str, Any]) -> str:
    """The pyinstrument profile of a tile an actor maps in the steady state (older runs: the first)."""
    steady = m.get("profile_steady_tile")
    if steady is None:  # runs before 2026-12-02 profiled only P's first tile
        title = "### Where the first tile's time goes (pyinstrument, actor code in this process; cold)"
        rows = m.get("profile_one_tile", [])
    else:
        title = (
            f"### Where a steady tile's time goes (pyinstrument, actor code in this process: {steady['tile']} "
            "mapped after P's tiles, forward compiled)"
        )
        rows = steady["self_times"]
    text = (
        title
        + "\n"
        + table(
            ("function (self time)", "s", "share"),
            [(row["function"], row["seconds"], f"{row['share']:.0%}") for row in rows],
        )
    )
    first = m.get("profile_first_tile")
    if first:
        top = ", ".join(f"{row['function']} {row['share']:.0%}" for row in first[:3])
        text += f"\n\nP's first tile on a fresh mapper (cold, waiting for the compile) spent most in: {top}."
    return text


def page_cache_text(held: dict[str, Any] | None) -> str:
    """Whether P's scenes were held in memory for the runs (``benchmarks/page_cache.py``)."""
    if held is None:  # runs before session 17 read each scene once beforehand
        return "P's scenes were read once before the runs (page cache warmed, not held)."
    text = f"P's scenes were held in memory (locked) through every run: {held['locked_bytes'] / 1e9:.2f} GB"
    if held["not_locked"]:
        text += f"; {len(held['not_locked'])} files could not be locked and were only read once"
    return text + "."


def largest_actors_text(mem: dict[str, Any]) -> str:
    """Each run's largest actor of P and 2P: its tiles, their scenes and its peak after each (empty
    for older results)."""
    rows = [
        (
            name,
            i + 1,
            ", ".join(f"{t} ({n})" for t, n in zip(a["tiles"], a["scenes"], strict=True)),
            ", ".join(f"{mb:,.0f}" for mb in a["peak_after_mb"]),
        )
        for name in ("production", "double")
        for i, a in enumerate(mem["runs"][name].get("largest_actors", []))
    ]
    if not rows:
        return ""
    return (
        "\n\nThe largest actor of each run, its tiles in the order it mapped them, and its peak after each:\n\n"
        + table(("case", "run", "tiles (scenes)", "peak after each tile (MB)"), rows)
    )


def one_actor_runs_text(e: dict[str, Any], f: dict[str, Any]) -> str:
    """P's and H's runs on one actor, whose medians the figures above are, with the floors measured
    beside each round (empty for older results)."""
    runs = e.get("one_actor_runs")
    if not runs:
        return ""
    seconds = ", ".join(f"{r['seconds']:.1f}" for r in runs)
    ratios = ", ".join(fmt(r["ratio_steady"]) if r["ratio_steady"] else "n/a" for r in runs)
    times = "once" if len(runs) == 1 else f"{len(runs)} times"
    text = f"P ran {times} on one actor ({seconds} s; steady state ÷ floors {ratios})"
    pairs, rounds = e.get("marginal_runs"), f.get("rounds")
    if pairs and rounds:
        h_seconds = ", ".join(f"{r['seconds']:.1f}" for r in pairs)
        h_ratios = ", ".join(fmt(r["ratio"]) for r in pairs)
        gemm = ", ".join(f"{r['gemm_flops_per_s'] / 1e9:.1f}" for r in rounds)
        sums = ", ".join(f"{r['sum_s']:.2f}" for r in rounds)
        text += (
            f", each in a round with H ({h_seconds} s; marginal ÷ floors {h_ratios}) after the host's GEMM "
            f"rate and decode times were measured again ({gemm} GFLOP/s; P's floors {sums} s). Each run "
            "is compared with its own round's floors"
        )
    return text + "; the figures above are the medians. "


def scaling_text(e: dict[str, Any], sc: dict[str, Any]) -> str:
    if not sc.get("steady_ratio"):
        return "### Scaling\nNo steady state on every actor (an actor finished fewer than two tiles)."
    text = (
        f"### Scaling\nSteady state on P: 2 actors map the tiles they share with 1 actor "
        f"**{sc['steady_ratio']:.2f}×** as fast (each actor's speed on its steady tiles against the lone "
        "actor's on the same tiles, summed over the actors)."
    )
    if sc.get("rounds"):
        matched = ", ".join(f"{r['ratio']:.2f}" if r.get("ratio") else "n/a" for r in sc["rounds"])
        rates = ", ".join(f"{r['rate_ratio']:.2f}" if r.get("rate_ratio") else "n/a" for r in sc["rounds"])
        text += (
            f" Each round mapped P on two actors after its one-actor runs; the figure is the median of "
            f"each two-actor run against its own round's one actor ({matched})."
        )
        if sc.get("rate_ratio"):
            text += (
                f" As a ratio of steady rates, whatever tiles each run timed: 1 actor "
                f"{fmt(e['one_actor_steady_px_s'])} px/s, 2 actors {fmt(e['two_actors_steady_px_s'])} px/s, "
                f"**{sc['rate_ratio']:.2f}** ({rates}); each actor's first tile is left out, so the runs time "
                "different tiles."
            )
    if sc.get("steady_ratio_double"):
        text += (
            f" On 2P (4 tiles per actor): 2 actors {fmt(e['double_two_actors_steady_px_s'])} px/s, "
            f"{sc['steady_ratio_double']:.2f}× one actor's steady rate on P."
        )
    return text + f" Tiles per actor: {e['tiles_per_actor']}."


def training_section(t: dict[str, Any]) -> str:
    rows = [
        (stage, s["samples_per_epoch"], s["epochs"], fmt(s["samples_per_s"]))
        for stage, s in t["stages"].items()
    ]
    o = t["ray_overhead"]
    unit = ", ".join(f"{stage} {n}" for stage, n in o["unit_epochs"].items())
    return "\n\n".join(
        [
            "## Training",
            f"Measured {t.get('measured_at', 'with the run')}. Plain loop in this process, one torch thread.\n\n"
            + table(("stage", "samples/epoch", "epochs", "samples/s"), rows),
            timings_section("Ray Train (1 worker) vs plain loop, whole chain", o["timings"], "samples"),
            f"One chain unit is {unit} epochs; the default chain is {o['default_units']} units "
            f"(≈ {o['default_plain_s']:.0f} s in the plain loop). Fitted over {o['units_short']} and "
            f"{o['units_long']} units (metrics reported to Ray at most every {o['report_interval_s']:.0f} s "
            f"and at the end): Ray Train's start-up {o['ray_fixed_s']:.1f} s against {o['plain_fixed_s']:.1f} s "
            f"for the plain loop (**+{o['startup_s']:.1f} s** per run, paid once for the three stages); per "
            f"unit {o['ray_unit_s']:.2f} s against {o['plain_unit_s']:.2f} s (**{o['per_unit_overhead']:+.1%}**, "
            f"{o['unit_overhead_s'] * 1e3:+.0f} ms). As measured at {o['units_long']} units: "
            f"{o['overhead_measured']:.1%}.",
            f"The target is judged on a user's default chain, where the start-up is paid once: projected "
            f"overhead **{o['overhead_default_run']:.1%}**. "
            + (
                f"At these costs a chain needs ≥ {o['units_to_target']:.0f} units of this data "
                f"(≈ {o['units_to_target'] / o['default_units']:.1f}× the default run's training work) for ≤ 15 %."
                if o.get("units_to_target") is not None
                else "The per-unit overhead alone exceeds 15 %, so no run length meets the target."
            ),
        ]
    )


def cost_section(c: dict[str, Any]) -> str:
    w, m = c["workload"], c["measured"]
    rows = [
        (
            p["node"],
            fmt(p["io_px_s"]),
            fmt(p["decode_px_s"]),
            fmt(p["model_px_s"]),
            p["bottleneck"],
            fmt(p["node_px_s"]),
            fmt(p["node_hours"]),
            f"{p['wall_hours']:.2f} h on {p['nodes']} nodes",
        )
        for p in c["projections"]
    ]
    return "\n\n".join(
        [
            "## Cost model: western US",
            f"{w['pixels']:.1e} pixels at 30 m; start-up {w['startup_s']:.0f} s. Measured here per output pixel "
            "(production-shaped region, one core): read path "
            f"{m['read_s_per_pixel'] * 1e6:.2f} µs; student forward {m['model_s_per_pixel_cpu'] * 1e6:.2f} µs on CPU; "
            f"{m['flops_per_pixel'] / 1e6:.3f} MFLOP; {m['stored_bytes_per_pixel']:.0f} stored bytes read; "
            f"end-to-end overhead over read + model {m['pipeline_overhead']:.2f}×.",
            "Assumptions per node type: " + "; ".join(c["node_notes"]),
            table(
                (
                    "node",
                    "I/O px/s",
                    "read px/s",
                    "model px/s",
                    "bottleneck",
                    "node px/s",
                    "node-hours",
                    "wall",
                ),
                rows,
            ),
        ]
    )
