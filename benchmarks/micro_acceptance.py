"""Acceptance figures of the micro world (issue 3): the main job and the coin-flip control on 3 seeds.

    python benchmarks/micro_acceptance.py                 # runs 6 jobs one after another (~18 min on 2 cores)
    python benchmarks/micro_acceptance.py --only control  # just the 3 controls (or: --only main)
    python benchmarks/micro_acceptance.py --analyse-only  # re-reads runs/acceptance/*

For each seed it runs `grpo-lab demo` (accuracy + format rewards) and `grpo-lab demo --control`
(coin-flip rewards), then prints step 0 vs final exam metrics and checks the lines:

  main job:  pass@1 ≥ 3× and ≥ +0.35;  mean length ≥ 2×;  reflection rate ≥ 2.5× with step 0 > 0;
             RL ≤ 300 s, total ≤ 600 s
  control:   no rise beyond noise in pass@1, mean length or reflection rate.

"Beyond noise" is a paired test over the 30 exam questions: for each question, the change of its
metric (mean over its 16 samples) from step 0; a rise is beyond noise when the mean change is
more than 2 standard errors above zero (t > 2). Questions are the unit because the 16 samples of
one question are correlated; this is why exam pass@1 swings between evals. The control is tested
twice, and must pass both:

  end:   the last exam vs step 0;
  late:  the mean of the exams in the last 40% of the run (steps 300-500 of 500: five exams,
         2,400 samples) vs step 0. A coin-flip run random-walks, so one end point can land low by
         luck; the late mean catches a drift that the end point would hide.
"""

from __future__ import annotations

import argparse
import functools
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


LATE = 0.6  # "late" exams: those at or after this fraction of the run's steps


def paired_t(run_dir: Path, column: str, late: bool = False) -> tuple[float, float]:
    """Mean per-question change from step 0 and its t statistic over the exam questions.

    The change is to the last exam, or (late=True) to the per-question mean of the exams at or
    after `LATE` of the run.
    """
    exams = _exams(run_dir)
    steps = list(exams)
    if late:
        chosen = [step for step in steps if step > 0 and step >= LATE * steps[-1]]
        return change_and_t(exams[steps[0]][column], [exams[step][column] for step in chosen])
    return change_and_t(exams[steps[0]][column], [exams[steps[-1]][column]])


def change_and_t(start: pd.Series, later: list[pd.Series]) -> tuple[float, float]:
    """Mean per-question change from `start` to the mean of `later` exams, and its paired t."""
    diff = sum(later) / len(later) - start
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    mean = float(diff.mean())
    return mean, float(mean / se) if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))


@functools.cache
def _exams(run_dir: Path) -> dict[int, pd.DataFrame]:
    """The run's per-question exam tables (eval/questions_step*.csv), by step, read once."""
    files = sorted((run_dir / "eval").glob("questions_step*.csv"))
    return {int(f.stem.removeprefix("questions_step")): pd.read_csv(f) for f in files}


def _eval_curve(run_dir: Path) -> pd.DataFrame:
    from grpo_lab import load_run

    df = load_run(run_dir)
    return df[df["eval/pass@1"].notna()]


def analyse(root: Path, seeds: list[int]) -> bool:
    """Print one table for the main runs and one for the controls; True if every line passes."""
    tables: dict[str, list[dict]] = {"main": [], "control": []}
    ok_all = True
    for kind in ("main", "control"):
        for seed in seeds:
            run_dir = root / f"{kind}-seed{seed}"
            s = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
            if "final" not in s:  # a summary is written from step 0 on; "final" only when the run finished
                print(f"{run_dir}: not run (or not finished)")
                ok_all = False
                continue
            row = {"run": f"{kind} s{seed}", "RL s": round(s["rl_seconds"]),
                   "total s": round(s.get("total_seconds", float("nan"))),
                   # torch's kernel level decides the run's bits (AVX2 and AVX512 runs of a seed differ)
                   "kernels": (s.get("machine") or {}).get("torch_cpu_kernels", "?").split(" (")[0]}
            evals = _eval_curve(run_dir)
            ratio, t_values = {}, {}
            for key in METRICS:
                a, b = s["step0"][key], s["final"][key]
                ratio[key] = b / a if a > 0 else math.inf
                t_end = paired_t(run_dir, key)[1]
                peak = evals[f"eval/{key}"].max()  # shown so that mid-run excursions are not hidden
                if kind == "main":
                    row[key] = f"{a:.3f}→{b:.3f} ({ratio[key]:.2f}×, t {t_end:.1f}, peak {peak:.3f})"
                else:
                    d_late, t_late = paired_t(run_dir, key, late=True)
                    row[key] = f"{a:.3f}→{b:.3f} (t {t_end:+.1f}); late {a + d_late:.3f} (t {t_late:+.1f})"
                    t_values[f"{key} end"], t_values[f"{key} late"] = t_end, t_late
            p0, p1 = s["step0"]["pass@1"], s["final"]["pass@1"]
            if kind == "main":
                checks = {
                    "pass@1 ≥3×": p1 >= 3 * p0,
                    "pass@1 ≥+0.35": p1 - p0 >= 0.35,
                    "length ≥2×": ratio["mean_length"] >= 2,
                    "reflection ≥2.5×, step0>0": s["step0"]["reflection_rate"] > 0 and ratio["reflection_rate"] >= 2.5,
                    "RL ≤300 s": s["rl_seconds"] <= 300,
                    "total ≤600 s": s.get("total_seconds", 0) <= 600,
                }
            else:
                checks = {f"{name} t≤2": t <= 2 for name, t in t_values.items()}
            row["failed"] = ", ".join(k for k, v in checks.items() if not v) or "-"
            ok_all &= all(checks.values())
            tables[kind].append(row)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        for kind, rows in tables.items():
            if rows:
                print(f"\n{kind}:")
                print(pd.DataFrame(rows).set_index("run").to_string())
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
