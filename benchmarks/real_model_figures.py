"""The figures of a real-model R1-Zero run and its coin-flip control (a benchmark, not a test).

    grpo-lab demo --model smollm2-135m            # ~30 min on 2 cores: runs/smollm2-135m_r1_zero-seed0
    grpo-lab demo --model smollm2-135m --control  # runs/smollm2-135m_coin_flip-seed0
    python benchmarks/real_model_figures.py       # the table in docs/real_model.md

For each run and each exam metric: step 0, every later exam, and the change from step 0 to the
last exam paired over the 30 exam questions (mean change and t = mean / SE; |t| > 2 is beyond the
exam's noise at roughly the 5% level). One extra column needs no format at all: "last number",
whether the last integer the model wrote equals the sum, so that what RL taught about *where* to
put the answer can be told apart from whether the answer is right.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

import pandas as pd

from grpo_lab.evaluate import load_eval_samples
from grpo_lab.report import paired_exam_change

METRICS = ("pass@1", "format_rate", "mean_length")


def last_number_correct(run_dir: Path, step: int) -> pd.Series:
    """Per question: the fraction of samples whose last integer equals the gold sum (no format needed)."""
    from grpo_lab.data import load_exam

    golds = [int(r["answer"]) for r in load_exam("sums")]
    samples = load_eval_samples(run_dir, step)

    def right(row) -> bool:
        numbers = re.findall(r"-?\d+", str(row["completion"]))
        return bool(numbers) and int(numbers[-1]) == golds[int(row["question_idx"])]

    return samples.assign(ok=samples.apply(right, axis=1)).groupby("question_idx")["ok"].mean()


def paired(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    diff = (b - a).tolist()
    mean = statistics.fmean(diff)
    se = statistics.stdev(diff) / math.sqrt(len(diff))
    return mean, (mean / se if se > 0 else (0.0 if mean == 0 else math.inf))


def describe(run_dir: Path) -> list[dict]:
    rows = []
    files = {int(f.stem.removeprefix("questions_step")): f for f in (run_dir / "eval").glob("questions_step*.csv")}
    exams = sorted(files)
    frames = {s: pd.read_csv(files[s]) for s in exams}
    for metric in METRICS:
        if metric not in frames[exams[0]].columns:
            continue
        change = paired_exam_change(run_dir, metric)
        rows.append({"metric": metric, **{f"step {s}": frames[s][metric].mean() for s in exams},
                     "change": change["mean_change"], "t": change["t"]})
    # Whole-exam metrics that have no per-question column: as logged, not paired.
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for metric in ("format_rate", f"cons@{len(load_eval_samples(run_dir, exams[0]).sample_idx.unique())}"):
        values = {line["step"]: line[f"eval/{metric}"] for line in logged if f"eval/{metric}" in line}
        if values:
            rows.append({"metric": f"{metric} (not paired)", **{f"step {s}": values.get(s) for s in exams}})
    last = {s: last_number_correct(run_dir, s) for s in exams}
    mean, t = paired(last[exams[0]], last[exams[-1]])
    rows.append({"metric": "last number right", **{f"step {s}": last[s].mean() for s in exams}, "change": mean, "t": t})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs", help="the directory holding the two runs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    pd.set_option("display.width", 200)
    for name in ("smollm2-135m_r1_zero", "smollm2-135m_coin_flip"):
        run_dir = Path(args.runs) / f"{name}-seed{args.seed}"
        summary = json.loads((run_dir / "summary.json").read_text())
        print(f"\n{name} (seed {args.seed}): RL {summary.get('rl_seconds', float('nan')):.0f} s, "
              f"whole demo {summary.get('total_seconds', float('nan')):.0f} s")
        print(pd.DataFrame(describe(run_dir)).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
