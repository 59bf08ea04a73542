"""Each run-health check firing on a real run built to trigger it, and none on the demo.

    python benchmarks/health_alerts.py              # every scenario (about 6 min on 2 cores)
    python benchmarks/health_alerts.py kl_blowup    # some of them, by name

Each scenario is the micro R1-Zero recipe (grpo_lab/configs/micro_r1_zero.yaml) with one thing
broken on purpose, trained for a few dozen steps with no exams, in a temporary directory; the
script prints which checks fired and at which step (from the run's events.jsonl, where the trainer
writes them), next to the check the scenario was built to fire. The demo itself is checked by
replaying every check over the shipped demo run (notebooks/shipped/) and over the reference runs'
stored alerts (grpo_lab/reference_runs/micro_r1_zero.json, 3 seeds), which must be silent.

Nothing here is scripted into the metrics: the alerts come from what the broken runs did.
The last line is `scenarios_as_expected=<k>/<n>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no "Loading weights" bar between the lines of the table
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grpo_lab.bands import load_reference  # noqa: E402
from grpo_lab.config import load_config, packaged_config  # noqa: E402
from grpo_lab.health import health_report  # noqa: E402
from grpo_lab.tracking import read_jsonl  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_vs_trl import machine_kind  # noqa: E402  (the CPU kind, as the speed benchmark prints it)

NO_EXAMS = ["eval.at_start=false", "eval.every=0", "eval.k=1", "tracking.save_every=0",
            "tracking.log_completions_every=0", "tracking.progress=false", "tracking.wandb_mode=disabled"]


def length_reward(prompts: list[str], completions: list[str], **kwargs) -> list[float]:
    """A reward that pays for length (a well-meant "think longer" bonus, on its own): 0.01 a character."""
    return [len(c) / 100 for c in completions]


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    overrides: tuple[str, ...]
    expect: frozenset[str]
    reward_funcs: tuple = ()
    """Reward functions in place of the config's (none: the recipe's accuracy + format)."""


SCENARIOS = [
    Scenario("truncated", "max_new_tokens 4: every completion is cut before its answer",
             ("grpo.steps=40", "grpo.max_new_tokens=4"), frozenset({"truncated", "unparsed", "no_signal", "format_stuck"})),
    Scenario("unwritten_stop", "generation stops at </think>: no answer is ever written",
             ("grpo.steps=40", "grpo.stop_strings=[</think>]"), frozenset({"unparsed", "no_signal", "format_stuck"})),
    Scenario("kl_blowup", "lr 0.05 (330× the recipe's): the policy leaves the base model",
             ("grpo.steps=20", "grpo.lr=0.05"), frozenset({"kl_blowup"})),
    Scenario("entropy_collapse", "the only reward pays for length (lr 1e-3, no KL): the policy fills the cap "
             "with one repeated phrase", ("grpo.steps=100", "grpo.lr=1e-3", "grpo.beta=0.0"),
             frozenset({"entropy_collapse"}), reward_funcs=(length_reward,)),
    Scenario("nonfinite", "full fine-tuning in float16: AdamW's eps is 0 in 16 bits, 0/0 makes weights NaN",
             ("grpo.steps=5", "model.dtype=float16", "model.use_lora=false", "grpo.lr=1e-4"), frozenset({"nonfinite"})),
]


def run_scenario(scenario: Scenario, tmp: Path) -> tuple[dict[str, int], float, str]:
    """Train the broken recipe; return {check: step it fired}, seconds, and how the run ended."""
    from grpo_lab.trainer import GRPOTrainer, TrainingStopped

    run_dir = tmp / scenario.name
    cfg = load_config(packaged_config("micro_r1_zero"), [f"tracking.run_dir={run_dir}", *NO_EXAMS, *scenario.overrides])
    start = time.perf_counter()
    ended = "finished"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the alerts are read back from events.jsonl below
        try:
            funcs = {"reward_funcs": list(scenario.reward_funcs)} if scenario.reward_funcs else {}
            GRPOTrainer(cfg, run_dir=run_dir, **funcs).train()
        except TrainingStopped as exc:
            ended = f"stopped: {str(exc)[:80]}..."
    seconds = time.perf_counter() - start
    events = read_jsonl(run_dir / "events.jsonl") if (run_dir / "events.jsonl").exists() else []
    return {e["check"]: e["step"] for e in events if e.get("kind") == "health"}, seconds, ended


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.names or s.name in args.names]
    if args.names and len(chosen) != len(args.names):
        parser.error(f"unknown scenario; choose from {[s.name for s in SCENARIOS]}")

    import torch

    print(f"machine: {machine_kind()}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    ok = 0
    # The demo: silent on the shipped run (every check replayed over its metrics) and on the reference seeds.
    shipped = ROOT / "notebooks" / "shipped" / "micro_r1_zero-seed0"
    table = health_report(shipped)
    fired = sorted(table.index[table["status"].str.startswith("FIRED")])
    reference = load_reference("micro_r1_zero").health_alerts
    silent = not fired and all(not alerts for alerts in reference.values())
    ok += silent
    print(f"\n{'demo (shipped run, 500 steps) + reference seeds':<52} expect: nothing     fired: "
          f"{fired or 'nothing'}; reference runs: {reference}  {'OK' if silent else 'UNEXPECTED'}")

    with tempfile.TemporaryDirectory(prefix="grpo-lab-health-") as tmp:
        for scenario in chosen:
            fired, seconds, ended = run_scenario(scenario, Path(tmp))
            as_expected = scenario.expect <= set(fired)
            ok += as_expected
            shown = ", ".join(f"{check}@{step}" for check, step in sorted(fired.items(), key=lambda kv: kv[1])) or "nothing"
            rewards = f" + rewards {[f.__name__ for f in scenario.reward_funcs]}" if scenario.reward_funcs else ""
            print(f"\n{scenario.name}: {scenario.what}\n  overrides: {' '.join(scenario.overrides)}{rewards}\n"
                  f"  expect: {', '.join(sorted(scenario.expect))}\n  fired:  {shown}   ({seconds:.0f} s, {ended})"
                  f"  {'OK' if as_expected else 'UNEXPECTED'}")
    print(f"scenarios_as_expected={ok}/{len(chosen) + 1}")
    return 0 if ok == len(chosen) + 1 else 1


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    sys.exit(main())
