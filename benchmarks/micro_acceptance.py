"""Acceptance figures of the micro world (issue 3): the main job and the coin-flip control on 3 seeds.

    python benchmarks/micro_acceptance.py                 # runs 6 jobs one after another (~30 min)
    python benchmarks/micro_acceptance.py --only control  # just the 3 controls (or: --only main)
    python benchmarks/micro_acceptance.py --analyse-only  # re-reads runs/acceptance/*

For each seed it runs `grpo-lab demo` (accuracy + format rewards) and `grpo-lab demo --control`
(coin-flip rewards), then prints step 0 vs final exam metrics and checks the lines:

  main job:  pass@1 ≥ 3× and ≥ +0.35;  mean length ≥ 2×;  reflection rate ≥ 2.5× with step 0 > 0;
             RL ≤ 300 s, total ≤ 600 s
  control:   no rise beyond noise in pass@1, mean length or reflection rate.

"Beyond noise" is a paired test over the 30 exam questions: for each question, the change of its
metric (mean over its 16 samples) from step 0 to the end; a rise is beyond noise when the mean
change is more than 2 standard errors above zero (t > 2). Questions are the unit because the
16 samples of one question are correlated; this is why exam pass@1 swings between evals.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd

METRICS = {"pass@1": "pass@1", "mean_length": "mean_length", "reflection_rate": "reflection_rate"}


def run(seed: int, control: bool, out: Path, steps: int | None) -> None:
    from grpo_lab.cli import main

    args = ["demo", "--seed", str(seed), "--out", str(out), "--set", "tracking.progress=false"]
    if control:
        args.append("--control")
    if steps is not None:
        args += ["--set", f"grpo.steps={steps}"]
    t0 = time.time()
    code = main(args)
    print(f"  {'control' if control else 'main'} seed {seed}: exit {code}, {time.time() - t0:.0f} s", flush=True)


def paired_t(run_dir: Path, column: str) -> tuple[float, float]:
    """Mean per-question change (final − step 0) and its t statistic over the exam questions."""
    files = sorted((run_dir / "eval").glob("questions_step*.csv"))
    first, last = pd.read_csv(files[0]), pd.read_csv(files[-1])
    diff = last[column] - first[column]
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean() / se) if se > 0 else (0.0 if diff.mean() == 0 else math.inf)


def _eval_curve(run_dir: Path) -> pd.DataFrame:
    from grpo_lab import load_run

    df = load_run(run_dir)
    return df[df["eval/pass@1"].notna()]


def analyse(root: Path, seeds: list[int]) -> bool:
    rows, ok_all = [], True
    for seed in seeds:
        for kind in ("main", "control"):
            run_dir = root / f"{kind}-seed{seed}"
            if not (run_dir / "summary.json").exists():
                print(f"{run_dir}: not run (or not finished)")
                ok_all = False
                continue
            s = json.loads((run_dir / "summary.json").read_text())
            row = {"run": f"{kind} s{seed}", "rl_s": s["rl_seconds"], "total_s": s.get("total_seconds", float("nan"))}
            evals = _eval_curve(run_dir)
            for key in METRICS:
                a, b = s["step0"][key], s["final"][key]
                row[f"{key} 0→end"] = f"{a:.3f}→{b:.3f}"
                row[f"{key} peak"] = evals[f"eval/{key}"].max()  # shown so mid-run excursions are not hidden
                row[f"{key} ×"] = b / a if a > 0 else math.inf
                row[f"{key} t"] = paired_t(run_dir, key)[1]
            p0, p1 = s["step0"]["pass@1"], s["final"]["pass@1"]
            if kind == "main":
                checks = {
                    "pass@1 ≥3×": p1 >= 3 * p0,
                    "pass@1 ≥+0.35": p1 - p0 >= 0.35,
                    "length ≥2×": row["mean_length ×"] >= 2,
                    "reflection ≥2.5×, step0>0": s["step0"]["reflection_rate"] > 0 and row["reflection_rate ×"] >= 2.5,
                    "RL ≤300 s": s["rl_seconds"] <= 300,
                    "total ≤600 s": s.get("total_seconds", 0) <= 600,
                }
            else:
                checks = {f"no {key} rise (t≤2)": row[f"{key} t"] <= 2 for key in METRICS}
            row["failed"] = ", ".join(k for k, v in checks.items() if not v) or "-"
            ok_all &= all(checks.values())
            rows.append(row)
    table = pd.DataFrame(rows).set_index("run")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        print(table)
    print(f"\nacceptance: {'PASS' if ok_all else 'FAIL'}")
    return ok_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path("runs/acceptance"))
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="override grpo.steps (for a quick look)")
    parser.add_argument("--only", choices=["main", "control"], help="run only these jobs, then analyse all")
    args = parser.parse_args()
    if not args.analyse_only:
        for seed in args.seeds:
            for control in (False, True):
                if args.only and args.only != ("control" if control else "main"):
                    continue
                run(seed, control, args.root / f"{'control' if control else 'main'}-seed{seed}", args.steps)
    return 0 if analyse(args.root, args.seeds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
