"""Seed means, seed spreads, paired differences and targets, checked by hand on a tiny predictions table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.tables import domain_table, map_targets, spread, summarise

OBSERVED = [1.0, 2.0, 4.0]
# model → (kind, one prediction per sample for each of the seeds 0, 1, 2)
PREDICTED = {
    "DeepSalt": ("deepsalt", [[1, 2, 3], [2, 2, 4], [1, 2, 4]]),  # MAE 1/3, 1/3, 0
    "without SAU": ("deepsalt", [[2, 3, 4], [1, 3, 5], [2, 2, 4]]),  # MAE 2/3, 2/3, 1/3
    "baseline A": ("baseline", [[2, 3, 5]] * 3),  # MAE 1
    "baseline B": ("baseline", [[1.5, 2.5, 4.5]] * 3),  # MAE 1/2
}


def tiny_predictions(split: str = SEEN) -> pd.DataFrame:
    frames = []
    for model, (kind, per_seed) in PREDICTED.items():
        for seed, predicted in enumerate(per_seed):
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "kind": kind,
                        "seed": seed,
                        "split": split,
                        "sample_id": ["a", "b", "c"],
                        "observed": OBSERVED,
                        "predicted": np.asarray(predicted, dtype=float),
                        "std": np.nan,
                        "transform": "none",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_spread_is_the_sample_standard_deviation_over_seeds():
    assert spread([1 / 3, 1 / 3, 0.0]) == pytest.approx(np.sqrt(3) / 9)  # deviations 1/9, 1/9, −2/9; ddof 1
    assert spread([0.5, 0.5]) == 0.0
    assert np.isnan(spread([0.7]))  # one seed has no spread


def test_means_spreads_and_differences_by_hand():
    summary = summarise(tiny_predictions(), ablations=["without SAU"])
    table = summary.table.set_index("model")
    assert table.loc["DeepSalt", "mae"] == pytest.approx(2 / 9)
    assert table.loc["DeepSalt", "mae_sd"] == pytest.approx(np.sqrt(3) / 9)
    assert table.loc["DeepSalt", "seeds"] == 3 and table.loc["DeepSalt", "n"] == 3
    assert table.loc["baseline A", "mae"] == pytest.approx(1.0) and table.loc["baseline A", "mae_sd"] == 0.0
    assert summary.best_baseline == "baseline B"  # the lower held-out-block MAE

    diffs = {(d.model, d.other, d.metric): d for d in summary.differences}
    versus = diffs[("DeepSalt", "baseline B", "mae")]
    # per seed: 1/3 − 1/2, 1/3 − 1/2, 0 − 1/2
    assert versus.mean == pytest.approx(-5 / 18) and versus.sd == pytest.approx(np.sqrt(3) / 9)
    assert versus.seeds == 3 and not versus.beyond_spread  # 5/18 < 2 · 0.192
    removed = diffs[("without SAU", "DeepSalt", "mae")]
    assert removed.mean == pytest.approx(1 / 3) and removed.sd == pytest.approx(0.0, abs=1e-12)
    assert removed.beyond_spread  # the same cost for every seed
    assert ("DeepSalt", "baseline A", "mae") not in diffs  # only the best baseline is compared


def test_targets_need_the_margin_to_exceed_twice_the_spread():
    targets = {t.name: t for t in summarise(tiny_predictions(), ablations=["without SAU"]).targets}
    ratio = targets["MAE vs the best baseline, held-out blocks"]
    # per-seed ratios 2/3, 2/3, 0: mean 4/9 ≤ 0.85, but 0.85 − 4/9 = 0.41 is not > 2 sd = 0.77
    assert ratio.value == pytest.approx(4 / 9) and ratio.spread == pytest.approx(2 * np.sqrt(3) / 9)
    assert not ratio.met and "missed" in ratio.margin
    assert targets["removing SAU costs MAE, held-out blocks"].met
    assert targets["removing SAU costs MAE, held-out blocks"].value == pytest.approx(1 / 3)
    coverage = targets["95 % interval coverage, held-out blocks"]
    assert not coverage.met and coverage.margin.startswith("not computed")  # no model gave a spread here
    # the parts that were not ablated have no target; the unseen region was not evaluated
    assert not any("distillation" in name or "unseen" in name for name in targets)


def test_unseen_ratio_and_record_round_trip():
    both = pd.concat([tiny_predictions(SEEN), tiny_predictions(UNSEEN)], ignore_index=True)
    summary = summarise(both, ablations=["without SAU"])
    unseen = next(t for t in summary.targets if t.name == "MAE vs the best baseline, unseen region")
    assert unseen.value == pytest.approx(4 / 9) and unseen.met  # ≤ 0.90 × on average is enough here
    record = json.loads(json.dumps(summary.record(), default=float))
    assert record["seeds"] == [0, 1, 2] and record["best_baseline"] == "baseline B"
    assert record["best_unseen_baseline"] == "baseline B"
    assert len(record["per_seed"]) == 4 * 2 * 3  # model × split × seed
    assert {d["split"] for d in record["differences"]} == {SEEN, UNSEEN}


def test_the_unseen_target_compares_with_the_best_baseline_of_the_unseen_region():
    unseen = tiny_predictions(UNSEEN)
    # baseline B collapses on the unseen region (MAE 3), baseline A stays at MAE 1
    collapsed = (unseen["model"] == "baseline B").to_numpy()
    unseen.loc[collapsed, "predicted"] = unseen.loc[collapsed, "observed"].to_numpy() + 3.0
    summary = summarise(pd.concat([tiny_predictions(SEEN), unseen], ignore_index=True))
    assert summary.best_baseline == "baseline B" and summary.best_unseen_baseline == "baseline A"
    target = next(t for t in summary.targets if t.name == "MAE vs the best baseline, unseen region")
    assert target.value == pytest.approx(2 / 9)  # DeepSalt's MAE 1/3, 1/3, 0 over A's 1, not B's 3
    diffs = {(d.other, d.split) for d in summary.differences}
    assert ("baseline A", UNSEEN) in diffs and ("baseline B", SEEN) in diffs
    assert ("baseline B", UNSEEN) not in diffs


def test_one_seed_claims_nothing():
    one = tiny_predictions()
    one = one[one["seed"] == 0]
    summary = summarise(one, ablations=["without SAU"])
    assert all(np.isnan(d.sd) and not d.beyond_spread for d in summary.differences)
    cost = next(t for t in summary.targets if t.name.startswith("removing SAU"))
    assert not cost.met and "one seed" in cost.margin


def test_map_targets_read_both_maps():
    scores = {"deepsalt": {"r2_log": 0.78}, "best_baseline": {"r2_log": 0.70, "model": "random forest"}}
    level, versus = map_targets(scores)
    assert level.met and level.value == pytest.approx(0.78)
    assert versus.met and versus.value == pytest.approx(0.08)
    level, versus = map_targets({"deepsalt": {"r2_log": 0.6}, "best_baseline": {"r2_log": 0.65}})
    assert not level.met and not versus.met and "missed" in versus.margin


def test_domain_table_splits_samples_at_a_score_of_one_by_hand():
    """Seed 0 flags sample c (score 3) and seed 1 flags b and c; with std 1 in dS/m ("none"), the
    95 % interval is ±1.96: only a miss of 3 (seed 1, sample c) falls outside it."""
    rows = tiny_predictions()
    full = rows["model"] == "DeepSalt"
    rows.loc[full, "std"] = 1.0
    rows.loc[full, "predicted"] = [1, 2, 4, 1, 2, 7, 1, 2, 4]
    rows["domain_score"] = np.nan
    rows.loc[full, "domain_score"] = [0.5, 0.9, 3.0, 0.5, 1.5, 3.0, 0.2, 0.3, 0.4]
    table = domain_table(rows, "DeepSalt").set_index("domain score")
    inside, flagged = table.loc["inside (≤ 1)"], table.loc["flagged (> 1)"]
    assert inside["share"] == pytest.approx((2 / 3 + 1 / 3 + 1) / 3)
    assert flagged["share"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert inside["mae"] == pytest.approx(0.0) and inside["coverage95"] == pytest.approx(1.0)
    # flagged: seed 0 (sample c, exact) MAE 0, cov 1; seed 1 (b exact, c off by 3) MAE 1.5, cov 1/2;
    # seed 2 flags nothing and is left out of the flagged row's mean
    assert flagged["mae"] == pytest.approx(0.75) and flagged["coverage95"] == pytest.approx(0.75)
    assert flagged["n"] == pytest.approx(1.0)  # (1 + 2 + 0) / 3 samples per seed
    assert domain_table(tiny_predictions(), "DeepSalt").empty  # no domain scores recorded
