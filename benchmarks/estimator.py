"""``DeepSaltRegressor`` against the baselines users would pick, on public soil spectral tables.

    .venv/bin/python -m benchmarks.estimator                 # every table, 10-fold CV (≈ 1 h on 2 cores)
    .venv/bin/python -m benchmarks.estimator --timing-only   # the n=300 × 1700 fit times per setting

Each table and target is cross-validated with 10 outer folds (grouped by sample where a table
has replicate scans); every model is fitted on the same training rows with its own inner CV.
Writes ``results/estimator/folds.csv`` (one row per fold and model), ``results.json`` and
``RESULTS.md``. The settings are the estimator's defaults on every table: nothing is tuned to one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from deepsalt.estimator import DeepSaltRegressor, TunedPLSR, TunedSVR
from deepsalt.estimator.spectra import LIBRARY_PARTS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "estimator"
OUT = ROOT / "results" / "estimator"
FOLDS = 10
SEED = 0


@dataclass(frozen=True)
class Table:
    name: str
    file: str
    targets: tuple[str, ...]
    kind: str
    grouped: bool = False
    """Replicate scans of one sample share a ``sample_id``: outer and inner folds keep them together."""
    library: tuple[str, ...] = LIBRARY_PARTS
    """Shipped spectra the estimator may pretrain on (a table's own soils are left out)."""

    def load(self, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """X, y, groups and the spectral axis (None for a covariates-only table)."""
        table = pd.read_csv(FIXTURES / self.file).dropna(subset=[target])
        bands = [c for c in table.columns if _is_number(c)]
        if self.kind == "covariates":
            columns = [c for c in table.columns if c not in ("sample_id", "file_id", *self.targets)]
            return (
                table[columns].to_numpy(float),
                table[target].to_numpy(float),
                table["sample_id"].to_numpy(),
                None,
            )
        axis = np.array([float(c) for c in bands])
        return (
            table[bands].to_numpy(float),
            table[target].to_numpy(float),
            table["sample_id"].to_numpy(),
            axis,
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


TABLES = (
    Table(
        "yamsys_mir",
        "yamsys_mir_every4th.csv.gz",
        ("C", "clay"),
        "MIR",
        grouped=True,
        library=("icraf_vnir", "ossl_kssl_mir"),
    ),
    Table("limesoda_h138_mir", "limesoda_h138_mir.csv.gz", ("SOC", "Clay"), "MIR"),
    Table("limesoda_nrw115_mir", "limesoda_nrw115_mir.csv.gz", ("SOC", "Clay"), "MIR"),
    Table("limesoda_ssp460_visnir", "limesoda_ssp460_visnir.csv.gz", ("SOC", "Clay"), "vis-NIR"),
    Table("geeves_visnir", "geeves_visnir.csv.gz", ("TotalCarbon", "clay"), "vis-NIR"),
    Table("limesoda_bb250_covariates", "limesoda_bb250_covariates.csv.gz", ("SOC", "Clay"), "covariates"),
    Table("limesoda_b204_covariates", "limesoda_b204_covariates.csv.gz", ("SOC", "Clay"), "covariates"),
)


def _models(table: Table, axis: np.ndarray | None) -> dict:
    wavelengths = [] if axis is None else axis
    return {
        "plsr": TunedPLSR(wavelengths=wavelengths),
        "svr": TunedSVR(wavelengths=wavelengths),
        "deepsalt": DeepSaltRegressor(wavelengths=wavelengths, library=table.library),
    }


def _ablation(table: Table, axis: np.ndarray | None) -> dict:
    """The same stack without the network: what the network adds over stacking PLSR and SVR."""
    wavelengths = [] if axis is None else axis
    return {"no_network": DeepSaltRegressor(wavelengths=wavelengths, members=("plsr", "svr"))}


ABLATION_SUFFIX = "__no_network"
FOLD_SHARE = "__folds"


def run_table(
    table: Table, target: str, save: Path | None = None, models=_models, only: range | None = None
) -> list[dict]:
    """Outer 10-fold CV of the three models on one table and target: one record per fold and model,
    appended to ``save`` (CSV) as each fold finishes, so a long run keeps what it finished; folds
    already in ``save`` are not run again (the folds are fixed by the seed)."""
    X, y, groups, axis = table.load(target)
    finished = set(pd.read_csv(save)["fold"]) if save is not None and save.exists() else set()
    folds = (
        GroupKFold(FOLDS).split(X, y, groups)
        if table.grouped
        else KFold(FOLDS, shuffle=True, random_state=SEED).split(X)
    )
    records: list[dict] = []
    for fold, (train, test) in enumerate(folds):
        if fold in finished or (only is not None and fold not in only):
            continue
        done = len(records)
        fit_groups = groups[train] if table.grouped else None
        for name, model in models(table, axis).items():
            cpu, wall = time.process_time(), time.perf_counter()
            model.fit(X[train], y[train], groups=fit_groups)
            fit_cpu, fit_wall = time.process_time() - cpu, time.perf_counter() - wall
            record = {
                "table": table.name,
                "kind": table.kind,
                "target": target,
                "fold": fold,
                "model": name,
                "n_train": len(train),
                "n_test": len(test),
                "fit_cpu_s": fit_cpu,
                "fit_wall_s": fit_wall,
            }
            if isinstance(model, DeepSaltRegressor):
                mean, std = model.predict(X[test], return_std=True)
                record["inside95"] = int(np.sum(np.abs(mean - y[test]) <= 1.959964 * std))
                weights = model.stack_weights_
                for family in ("plsr", "svr", "network"):
                    record[f"weight_{family}"] = sum(
                        v for k, v in weights.items() if k.split(":")[0] == family
                    )
                record["stacked"] = bool(model.stacked_)
                record["stack_weights"] = json.dumps({k: round(v, 4) for k, v in weights.items()})
            else:
                mean = model.predict(X[test])
            record["sse"] = float(np.sum((mean - y[test]) ** 2))
            records.append(record)
        if save is not None:
            pd.DataFrame(records[done:]).to_csv(save, mode="a", header=not save.exists(), index=False)
        print(f"{table.name} {target} fold {fold} done", flush=True)
    return records


def _run_and_save(
    table: Table, target: str, folder: Path, fresh: bool, ablation: bool = False, only: range | None = None
) -> None:
    """One table and target into ``parts/``; a fold range (a second process sharing a table's folds)
    goes to its own file, merged with the table's at rendering."""
    share = "" if only is None else f"{FOLD_SHARE}{only.start}-{only.stop - 1}"
    path = folder / f"{table.name}__{target}{ABLATION_SUFFIX if ablation else ''}{share}.csv"
    if fresh:
        path.unlink(missing_ok=True)
    run_table(table, target, path, _ablation if ablation else _models, only)


def fold_rmse(folds: pd.DataFrame) -> pd.DataFrame:
    """Per-fold RMSE, one column per model, indexed by table, kind, target and fold."""
    rmse = folds.assign(rmse=np.sqrt(folds["sse"] / folds["n_test"]))
    return rmse.pivot_table(index=["table", "kind", "target", "fold"], columns="model", values="rmse")


def summarise(folds: pd.DataFrame) -> pd.DataFrame:
    """One row per table and target: pooled out-of-fold RMSE per model, ratios, the paired per-fold
    differences to the better baseline (mean, standard error, folds won), coverage and weights."""
    per_fold = fold_rmse(folds)
    rows = []
    for (table, kind, target), part in folds.groupby(["table", "kind", "target"], sort=False):
        rmse = {m: float(np.sqrt(p["sse"].sum() / p["n_test"].sum())) for m, p in part.groupby("model")}
        ours = part[part.model == "deepsalt"]
        better_name = "plsr" if rmse["plsr"] <= rmse["svr"] else "svr"
        better = rmse[better_name]
        paired = per_fold.loc[(table, kind, target)]
        diff = paired["deepsalt"] - paired[better_name]
        rows.append(
            {
                "table": table,
                "kind": kind,
                "target": target,
                "n": int(ours["n_test"].sum()),
                "rmse_plsr": rmse["plsr"],
                "rmse_svr": rmse["svr"],
                "rmse_deepsalt": rmse["deepsalt"],
                "better_baseline": better_name,
                "ratio_to_better_baseline": rmse["deepsalt"] / better,
                "fold_ratio_median": float((paired["deepsalt"] / paired[better_name]).median()),
                "fold_diff_mean": float(diff.mean()),
                "fold_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else np.nan,
                "folds_won": int((diff < 0).sum()),
                "coverage95": float(ours["inside95"].sum() / ours["n_test"].sum()),
                "network_weight_mean": float(ours["weight_network"].mean()),
                "folds_network_weight_gt0": int((ours["weight_network"] > 0).sum()),
                "folds": len(ours),
                "folds_stacked": int(ours["stacked"].sum()),
                "fit_cpu_s_median": float(ours["fit_cpu_s"].median()),
                **_network_adds(paired),
            }
        )
    return pd.DataFrame(rows)


def _network_adds(paired: pd.DataFrame) -> dict:
    """DeepSalt against the same stack without its network, on the folds both ran (pooled RMSE as
    the root of the mean per-fold MSE; equal-sized folds make it the pooled RMSE up to rounding)."""
    if "no_network" not in paired:
        return {"ablation_folds": 0}
    both = paired.dropna(subset=["no_network", "deepsalt"])
    ours, without = np.sqrt((both["deepsalt"] ** 2).mean()), np.sqrt((both["no_network"] ** 2).mean())
    return {
        "ablation_folds": len(both),
        "rmse_deepsalt_ablation_folds": float(ours),
        "rmse_no_network": float(without),
        "ratio_to_no_network": float(ours / without),
        "folds_network_helped": int((both["deepsalt"] < both["no_network"]).sum()),
    }


def timing(n_rows: int = 300, n_bands: int = 1700) -> list[dict]:
    """CPU and wall seconds of one ``fit`` on n_rows × n_bands (the SSP.460 vis-NIR spectra put on a
    1700-point axis), with the defaults and with each costly setting changed alone."""
    table = TABLES[3]
    X, y, _, axis = table.load("SOC")
    fine = np.linspace(axis[0], axis[-1], n_bands)
    X = np.stack([np.interp(fine, axis, row) for row in X[:n_rows]])
    y = y[:n_rows]
    variants = {
        "defaults": {},
        "n_networks=1": {"n_networks": 1},
        "pretrain='own'": {"pretrain": "own"},
        "pretrain='none'": {"pretrain": "none"},
        "augment=False": {"augment": False},
        "members=('plsr','svr')": {"members": ("plsr", "svr")},
        "cv=3": {"cv": 3},
    }
    out = []
    for label, params in variants.items():
        cpu, wall = time.process_time(), time.perf_counter()
        DeepSaltRegressor(wavelengths=fine, **params).fit(X, y)
        out.append(
            {
                "setting": label,
                "fit_cpu_s": time.process_time() - cpu,
                "fit_wall_s": time.perf_counter() - wall,
                "load_1min": os.getloadavg()[0],
            }
        )
        print(out[-1], flush=True)
    return out


def _markdown(summary: pd.DataFrame, folds: pd.DataFrame, timings: list[dict]) -> str:
    lines = [
        "# DeepSaltRegressor against tuned PLSR and tuned RBF SVR",
        "",
        "Produced by `.venv/bin/python -m benchmarks.estimator` (10-fold CV per table and target;",
        "yamsys folds grouped by soil sample); the run committed here used `--first-target-only",
        "--no-timing` (one target per table: the first listed in `TABLES`), then `--timing-only`,",
        "`--ablation --first-target-only --no-timing` and `--render-only`; finished folds are resumed",
        "from `parts/`, and `--folds a-b` let a second process share a table's folds (same seeded",
        "folds, merged at rendering). RMSE pooled over the out-of-fold predictions, in the",
        "target's units. `ratio` = DeepSalt RMSE / the better baseline's RMSE on that table and target.",
        "`n` counts the rows predicted out of fold; a table with fewer than 10 folds in the last",
        "columns was stopped before its run finished (its figures cover the folds run).",
        "`folds stacked`: folds whose inner CV found stacking better than choosing one member, both",
        "judged on held-out inner folds (a diagnostic: the stack predicts in every fold).",
        "",
        "Paired per fold (same training and test rows for all three models): `Δ fold RMSE` = DeepSalt",
        "minus the better baseline, mean ± standard error over the folds; `won` = folds where",
        "DeepSalt's RMSE is lower; `fold ratio` = median over folds of the per-fold RMSE ratio.",
        "",
        "| table | kind | target | n | PLSR | SVR | DeepSalt | ratio | fold ratio (median) | Δ fold RMSE | won | 95 % coverage | network weight (mean) | folds with network weight > 0 | folds stacked |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        lines.append(
            f"| {r.table} | {r.kind} | {r.target} | {r.n} | {r.rmse_plsr:.4g} | {r.rmse_svr:.4g} | "
            f"{r.rmse_deepsalt:.4g} | {r.ratio_to_better_baseline:.3f} (vs {r.better_baseline}) | "
            f"{r.fold_ratio_median:.3f} | {r.fold_diff_mean:+.3g} ± {r.fold_diff_se:.2g} | "
            f"{r.folds_won}/{r.folds} | {r.coverage95:.3f} | "
            f"{r.network_weight_mean:.2f} | {r.folds_network_weight_gt0}/{r.folds} | {r.folds_stacked}/{r.folds} |"
        )
    complete = summary[summary.folds == FOLDS]
    spectral = complete[complete.kind != "covariates"]
    covariates = complete[complete.kind == "covariates"]
    by_table = spectral.groupby("table")["ratio_to_better_baseline"].mean()
    lines += [
        "",
        f"Complete runs only ({FOLDS} folds). Spectral tables ({len(spectral)} table × target): median ratio over table × target {spectral.ratio_to_better_baseline.median():.3f} "
        f"(worst {spectral.ratio_to_better_baseline.max():.3f}); median over tables (mean of their targets) "
        f"{by_table.median():.3f}; network weight > 0 in "
        f"{int(spectral.folds_network_weight_gt0.sum())} of {int(spectral.folds.sum())} folds; "
        f"95 % coverage {spectral.coverage95.min():.3f}–{spectral.coverage95.max():.3f}. "
        f"Covariates-only ({len(covariates)}): ratio "
        f"{', '.join(f'{v:.3f}' for v in covariates.ratio_to_better_baseline)}; 95 % coverage "
        f"{', '.join(f'{v:.3f}' for v in covariates.coverage95)}.",
        "",
        "## Stack weights per fold (PLSR / SVR / network)",
        "",
    ]
    ablated = summary[summary.ablation_folds > 0] if "ablation_folds" in summary else summary.iloc[:0]
    if len(ablated):
        lines[-3:-3] = [
            "",
            "## What the network adds: the same stack without it (`members=('plsr', 'svr')`)",
            "",
            "`python -m benchmarks.estimator --ablation --no-timing` on the same folds. `ratio` =",
            "DeepSalt RMSE / RMSE of the stack without the network, on the folds both ran; `helped` =",
            "folds where DeepSalt's RMSE is lower.",
            "",
            "| table | target | folds | DeepSalt | stack without network | ratio | helped | stack without network / better baseline |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {r.table} | {r.target} | {r.ablation_folds} | "
                f"{r.rmse_deepsalt_ablation_folds:.4g} | "
                f"{r.rmse_no_network:.4g} | {r.ratio_to_no_network:.3f} | "
                f"{r.folds_network_helped}/{r.ablation_folds} | "
                f"{r.rmse_no_network / min(r.rmse_plsr, r.rmse_svr):.3f} |"
                for r in ablated.itertuples()
            ),
        ]
        spectral_ablated = ablated[ablated.kind != "covariates"]
        lines[-3:-3] = [
            "",
            f"Spectral tables: DeepSalt / stack without network, median {spectral_ablated.ratio_to_no_network.median():.3f}; "
            "the stack without network / the better baseline, median "
            f"{(spectral_ablated.rmse_no_network / spectral_ablated[['rmse_plsr', 'rmse_svr']].min(axis=1)).median():.3f}.",
        ]
    ours = folds[folds.model == "deepsalt"]
    for (table, target), part in ours.groupby(["table", "target"], sort=False):
        cells = " ".join(
            f"{r.weight_plsr:.2f}/{r.weight_svr:.2f}/{r.weight_network:.2f}" for r in part.itertuples()
        )
        lines.append(f"- {table} {target}: {cells}")
    if timings:
        lines += [
            "",
            "## Fit time, n = 300 × 1700 spectral columns, one thread",
            "",
            "`python -m benchmarks.estimator --timing-only`: one `fit` per setting (each changed alone",
            "from the defaults) on the SSP.460 vis-NIR spectra interpolated to 1700 columns. CPU seconds",
            "of the one-thread process are the one-core cost; wall seconds also count the time other",
            "processes held the shared cores (the 1-minute load average is given beside them).",
            "",
            "| setting | CPU s | wall s | load (1 min) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {t['setting']} | {t['fit_cpu_s']:.1f} | {t['fit_wall_s']:.1f} | {t['load_1min']:.1f} |"
            for t in timings
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.estimator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--tables", default=",".join(t.name for t in TABLES))
    parser.add_argument(
        "--jobs", type=int, default=2, help="table × target runs in parallel (one thread each)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--timing-only", action="store_true", help="measure the fit times, then re-render")
    parser.add_argument("--render-only", action="store_true", help="re-render from the tables already run")
    parser.add_argument("--no-timing", action="store_true", help="cross-validate only")
    parser.add_argument("--first-target-only", action="store_true", help="one target per table")
    parser.add_argument(
        "--fresh", action="store_true", help="discard finished folds in parts/ instead of resuming"
    )
    parser.add_argument("--folds", help="only these outer folds, e.g. 7-9 (written to their own part file)")
    parser.add_argument(
        "--ablation", action="store_true", help="cross-validate the stack without its network instead"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parts = args.out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    timing_json = args.out / "timing.json"
    if args.timing_only or not (args.no_timing or args.render_only):
        timing_json.write_text(json.dumps(timing(), indent=1))
    if not (args.timing_only or args.render_only):
        wanted = set(args.tables.split(","))
        # First targets of every table before second ones, so a partial run covers every table.
        targets = 1 if args.first_target_only else 2
        jobs = sorted(
            ((t, target) for t in TABLES if t.name in wanted for target in t.targets[:targets]),
            key=lambda job: job[0].targets.index(job[1]),
        )
        only = None
        if args.folds:
            first, last = (int(v) for v in args.folds.split("-"))
            only = range(first, last + 1)
        with ProcessPoolExecutor(args.jobs) as pool:
            list(
                pool.map(
                    _run_and_save,
                    *zip(*jobs, strict=True),
                    [parts] * len(jobs),
                    [args.fresh] * len(jobs),
                    [args.ablation] * len(jobs),
                    [only] * len(jobs),
                )
            )
    order = [
        f"{t.name}__{target}.csv"
        for target_index in (0, 1)
        for t in TABLES
        if len(t.targets) > target_index
        for target in [t.targets[target_index]]
    ]
    done = [parts / name for name in order if (parts / name).exists()]
    if not done:
        return
    shares = [s for p in done for s in sorted(parts.glob(f"{p.stem}*.csv")) if s != p]
    folds = pd.concat([pd.read_csv(path) for path in done + shares]).drop_duplicates(
        ["table", "target", "fold", "model"]
    )
    folds.to_csv(args.out / "folds.csv", index=False)
    timings = json.loads(timing_json.read_text()) if timing_json.exists() else []
    summary = summarise(folds)
    (args.out / "results.json").write_text(
        json.dumps({"summary": summary.to_dict(orient="records"), "timing": timings}, indent=1)
    )
    (args.out / "RESULTS.md").write_text(_markdown(summary, folds, timings))
    print(summary.to_string())


if __name__ == "__main__":
    main()
