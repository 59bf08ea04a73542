"""Regenerate the shipped reference bands (grpo_lab/reference_runs/*.json) from finished runs.

    python benchmarks/micro_acceptance.py --root runs/acceptance        # the 6 acceptance runs
    python benchmarks/make_reference_bands.py --root runs/acceptance    # → grpo_lab/reference_runs/

By default it reads the acceptance layout, ROOT/main-seed{0,1,2} (recipe micro_r1_zero) and
ROOT/control-seed{0,1,2} (recipe micro_coin_flip), and writes one JSON file per recipe: every exam
(per-question mean and standard error of pass@1, mean length and reflection rate), the training
metrics in bins of --bin steps, the recipe's fingerprint, and the health checks that fire on each
run with the current default thresholds (none should, on these runs). See grpo_lab/bands.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from grpo_lab.bands import REFERENCE_DIR, make_reference

RECIPES = {"micro_r1_zero": "main", "micro_coin_flip": "control"}
"""Reference name → the run-directory prefix benchmarks/micro_acceptance.py uses for it."""


def _summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("runs/acceptance"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bin", type=int, default=10, help="steps per bin of the training curves")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "grpo_lab" / REFERENCE_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    for name, prefix in RECIPES.items():
        runs = [args.root / f"{prefix}-seed{seed}" for seed in args.seeds]
        finished = [r for r in runs if "final" in _summary(r)]
        for r in runs:
            if r not in finished:
                print(f"skipping {r}: not finished (no final exam in summary.json)")
        if not finished:
            raise SystemExit(f"no finished {prefix} run under {args.root}; run benchmarks/micro_acceptance.py first")
        runs = finished
        ref = make_reference(name, runs, train_bin=args.bin)
        ref.source = {"made_by": "benchmarks/make_reference_bands.py", "runs": "benchmarks/micro_acceptance.py",
                      "code_commit": commit}
        path = args.out / f"{name}.json"
        path.write_text(ref.to_json(), encoding="utf-8")
        fired = {seed: checks for seed, checks in ref.health_alerts.items() if checks}
        print(f"{path}: {len(ref.seeds)} seeds, {len(next(iter(ref.exams.values()))['step'])} exams, "
              f"{path.stat().st_size / 1024:.1f} KiB; health alerts: {fired or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
