"""Copy a finished demo run into notebooks/shipped/, the form the notebooks draw before they train.

    .venv/bin/grpo-lab demo --out /tmp/demo-seed0            # the demo recipe, seed 0
    .venv/bin/python tools/ship_demo_run.py /tmp/demo-seed0  # → notebooks/shipped/micro_r1_zero-seed0/

What is kept (notebooks/shipped/README.md says why):
- `config.yaml` as the run wrote it;
- `summary.json`: the step-0 and final exams, the run's times, seed, steps and machine record
  (not the sampler's choice or the trainer's projection);
- `metrics.jsonl`: every exam line as logged, and of each training line the columns the figures
  and the time estimate use (`TRAIN_COLUMNS`), rounded to 5 decimals.

The run must be finished (a `final` exam in its summary), of the packaged demo recipe and seed 0:
the shipped copy stands for what `make demo` gives.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "notebooks" / "shipped" / "micro_r1_zero-seed0"
RECIPE = "micro_r1_zero"
TRAIN_COLUMNS = (
    "reward", "rewards/accuracy_reward/mean", "rewards/format_reward/mean", "completions/mean_length",
    "completions/min_length", "completions/max_length", "completions/mean_length_correct",
    "completions/mean_length_incorrect", "accuracy", "phenomena/reflection_rate", "kl", "entropy", "step_time",
)
SUMMARY_KEYS = ("step0", "final", "rl_seconds", "total_seconds", "seed", "steps", "machine")
DECIMALS = 5


def shipped_lines(metrics_path: Path) -> list[dict]:
    """Exam lines whole; training lines cut to TRAIN_COLUMNS and rounded."""
    from grpo_lab.tracking import read_jsonl  # names the file and line of a damaged record

    return [record if any(key.startswith("eval/") for key in record)
            else {"step": record["step"], **{key: round(record[key], DECIMALS) for key in TRAIN_COLUMNS if key in record}}
            for record in read_jsonl(metrics_path)]


def ship(run_dir: Path, out: Path = SHIPPED) -> Path:
    """Write the shipped copy of `run_dir` to `out` (replacing what is there); returns `out`."""
    from grpo_lab.bands import fingerprint, recipe_differences
    from grpo_lab.config import load_config, packaged_config
    from grpo_lab.tracking import read_summary

    summary_path = run_dir / "summary.json"
    summary = read_summary(summary_path) if summary_path.exists() else {}
    if "final" not in summary:
        raise ValueError(f"{summary_path}: no 'final' exam; ship a finished run")
    config, recipe = load_config(run_dir / "config.yaml"), load_config(packaged_config(RECIPE))
    diff = recipe_differences(fingerprint(recipe.to_dict()), fingerprint(config.to_dict()), recipe_only=True)
    # Keys a band may ignore but the shipped demo run may not: it is the recipe's run, whole.
    for key, want, got in (("grpo.steps", recipe.grpo.steps, config.grpo.steps), ("grpo.seed", 0, config.grpo.seed),
                           ("eval.every", recipe.eval.every, config.eval.every), ("eval.k", recipe.eval.k, config.eval.k)):
        if got != want:
            diff.append(f"{key}: {want!r} vs {got!r}")
    if diff:
        raise ValueError(f"{run_dir / 'config.yaml'}: not the packaged {RECIPE} recipe with seed 0 ({'; '.join(diff)})")
    lines = shipped_lines(run_dir / "metrics.jsonl")
    tmp = out.with_name(out.name + ".tmp")  # written whole, then swapped in: a failure leaves the old copy
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(run_dir / "config.yaml", tmp / "config.yaml")
    kept = {key: summary[key] for key in SUMMARY_KEYS if key in summary}
    (tmp / "summary.json").write_text(json.dumps(kept, indent=2) + "\n")
    (tmp / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished `grpo-lab demo` run (seed 0)")
    parser.add_argument("--out", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    try:
        out = ship(args.run_dir, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"ship_demo_run: {err}", file=sys.stderr)
        return 2
    print(f"shipped {args.run_dir} → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
