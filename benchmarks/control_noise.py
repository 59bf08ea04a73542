"""How often would the acceptance's control line fail if nothing had changed? The exam's own noise.

    python benchmarks/control_noise.py                     # 100 exams of the micro base model (~3 min on 2 cores)
    python benchmarks/control_noise.py --exams 40 --adapter RUN/checkpoints/step-000300

`benchmarks/micro_acceptance.py` calls a coin-flip control's rise "beyond noise" when a paired t
over the 30 exam questions exceeds 2, for each phenomenon (pass@1, mean length, reflection rate),
at the end and over the late exams, on each of 3 seeds: 18 one-sided tests. This script measures
what those tests do when the policy does not move at all. It examines one fixed policy (the micro
base model, or an adapter) many times, each time with another exam seed, so that two exams differ
only by their samples, and reports:

- per test: how often t > 2 over every pair of exams (a t test with 29 degrees of freedom would say
  2.7%; the reflection rate is a rare event, mostly 0 per question, so it need not behave so);
- per control run: draws of 1 + L distinct exams (step 0, then the L late exams, the last being the
  end), as the acceptance tests a run of 500 steps (L = 5) or 300 steps (L = 3); how often at least
  one of its 6 tests fails;
- per acceptance (3 seeds, independent): 1 - (1 - that)^3.

This is the floor of the line's false alarms: a real control also random-walks (docs/micro_world.md),
which is a change the line is there to catch.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_vs_trl import machine_kind  # noqa: E402  (the CPU kind, as the speed benchmark prints it)
from micro_acceptance import METRICS, change_and_t  # noqa: E402  (the acceptance's own test)

THRESHOLD = 2.0  # micro_acceptance: a rise is beyond noise when t > 2
SEEDS_PER_ACCEPTANCE = 3
LATE_EXAMS = {500: 5, 300: 3}  # exams at or after 60% of the run: 300-500 of 500, 200-300 of 300
EXAM_SEED_BASE = 777  # default --seed: exam seeds no run uses (a run's are grpo.seed × 1,000,003 + step)


def sit_exams(n: int, adapter: Path | None, k: int | None, seed: int = EXAM_SEED_BASE) -> list[pd.DataFrame]:
    """n per-question tables of one fixed policy, each exam with its own seed."""
    from peft import PeftModel

    from grpo_lab.config import load_config, packaged_config
    from grpo_lab.data import load_exam
    from grpo_lab.exam import run_exam
    from grpo_lab.micro_world import ensure_exam, ensure_micro_model
    from grpo_lab.models import load_model_and_tokenizer

    ensure_micro_model(progress=False)
    ensure_exam()
    overrides = [f"grpo.seed={seed}"] + ([f"eval.k={k}"] if k else [])
    cfg = load_config(packaged_config("micro_coin_flip"), overrides)
    cfg.model.use_lora = False
    model, tokenizer = load_model_and_tokenizer(cfg.model)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    exam = load_exam(cfg.eval.exam, cfg.data.question_field, cfg.data.answer_field)
    # The sampler puts the model in eval mode without gradients for the exam, as in training.
    return [run_exam(model, tokenizer, cfg, step, exam=exam).per_question
            for step in tqdm(range(n), desc="exams", unit="exam")]


def pair_t(values: np.ndarray) -> np.ndarray:
    """t[a, b]: the paired t of the change from exam a to exam b, for `values` of shape (exams,
    questions): `change_and_t(values[a], [values[b]])` for every pair at once (the diagonal is 0)."""
    diff = values[None, :, :] - values[:, None, :]
    mean, se = diff.mean(axis=-1), diff.std(axis=-1, ddof=1) / math.sqrt(values.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, mean / se, np.where(mean == 0, 0.0, np.sign(mean) * np.inf))


def largest_t_per_run(tables: list[pd.DataFrame], late: int, draws: int, seed: int = 0) -> np.ndarray:
    """Simulated control runs: each draws 1 + `late` distinct exams (step 0, then the late window,
    whose last exam is the end) and keeps the largest of its 6 t values (3 metrics × end, late)."""
    rng = random.Random(seed)
    largest = np.empty(draws)
    for i in range(draws):
        start, *later = (tables[j] for j in rng.sample(range(len(tables)), 1 + late))
        largest[i] = max(change_and_t(start[key], [table[key] for table in window])[1]
                         for key in METRICS for window in (later[-1:], later))
    return largest


def false_alarms(tables: list[pd.DataFrame], runs: dict[int, np.ndarray]) -> dict[str, float]:
    """Rates of t > THRESHOLD: per test over all pairs of `tables`, and per simulated control run
    and per acceptance over `runs` (`simulate`'s steps → largest t of each run)."""
    out: dict[str, float] = {}
    n = len(tables)
    off_diagonal = ~np.eye(n, dtype=bool)  # every ordered pair (start, end): both orders are a rise test
    for key in METRICS:
        t = pair_t(np.stack([table[key].to_numpy(dtype=float) for table in tables]))
        out[f"per test, {key}"] = float((t[off_diagonal] > THRESHOLD).sum() / off_diagonal.sum())
    for steps, largest in runs.items():
        run_rate = float((largest > THRESHOLD).mean())
        out[f"per control run, {steps} steps"] = run_rate
        out[f"per acceptance, {steps} steps"] = 1 - (1 - run_rate) ** SEEDS_PER_ACCEPTANCE
    return out


def simulate(tables: list[pd.DataFrame], draws: int, seed: int = 0) -> dict[int, np.ndarray]:
    """`largest_t_per_run` for each run length the acceptance knows, where there are exams enough."""
    return {steps: largest_t_per_run(tables, late, draws, seed)
            for steps, late in LATE_EXAMS.items() if len(tables) >= 1 + late}


def threshold_for(largest: np.ndarray, per_acceptance: float) -> float:
    """The t above which the control line would fail `per_acceptance` of acceptances with no drift."""
    per_run = 1 - (1 - per_acceptance) ** (1 / SEEDS_PER_ACCEPTANCE)
    return float(np.quantile(largest, 1 - per_run))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exams", type=int, default=100, help="exams of the fixed policy (default 100)")
    parser.add_argument("--adapter", type=Path, help="a LoRA checkpoint to examine instead of the base model")
    parser.add_argument("--k", type=int, default=None, help="samples per question (default: the recipe's 16)")
    parser.add_argument("--draws", type=int, default=5000, help="simulated control runs (default 5000)")
    parser.add_argument("--seed", type=int, default=EXAM_SEED_BASE,
                        help=f"exam seeds are those of a run with grpo.seed SEED (default {EXAM_SEED_BASE}); "
                             "another SEED gives an independent batch of exams")
    args = parser.parse_args(argv)
    if args.exams < 2:
        parser.error("--exams: at least 2 (a pair)")
    import torch

    from grpo_lab.cpu import set_threads

    set_threads()  # at most 2 threads unless OMP_NUM_THREADS says otherwise, as the CLI does
    policy = str(args.adapter) if args.adapter else "the micro base model"
    print(f"# control noise: {args.exams} exams of {policy} (micro_coin_flip's exam, k {args.k or 16}, "
          f"exam seeds of grpo.seed {args.seed}), "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# machine: {machine_kind()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    t0 = time.time()
    tables = sit_exams(args.exams, args.adapter, args.k, args.seed)
    print(f"# {time.time() - t0:.0f} s for the exams; means over them: "
          + ", ".join(f"{key} {sum(t[key].mean() for t in tables) / len(tables):.3f}" for key in METRICS))
    runs = simulate(tables, args.draws)
    rates = false_alarms(tables, runs)
    for name, rate in rates.items():
        print(f"{name:34s} {100 * rate:5.1f}%")
    print(f"(a t test with 29 degrees of freedom: 2.7% per test; per acceptance, 18 independent tests: "
          f"{100 * (1 - (1 - 0.0275) ** 18):.0f}%)")
    for steps, largest in runs.items():
        print(f"t threshold for 5% false alarms per acceptance, {steps} steps: {threshold_for(largest, 0.05):.2f}")
    key = "per acceptance, 500 steps"
    if key in rates:
        print(f"false_alarm_per_acceptance={rates[key]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
