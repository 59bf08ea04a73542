"""The demo run committed in notebooks/shipped/ (drawn by notebooks 00 and 04 before they train),
and tools/ship_demo_run.py, which makes it from a finished `grpo-lab demo` run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from grpo_lab import load_run
from grpo_lab.bands import compare_to_band, load_reference
from grpo_lab.config import load_config, packaged_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import ship_demo_run  # noqa: E402  (a script beside the package, not part of it)

SHIPPED = ROOT / "notebooks" / "shipped" / "micro_r1_zero-seed0"
RECIPE = load_config(packaged_config("micro_r1_zero"))


def test_the_shipped_run_is_the_packaged_demo_recipe_run_to_its_last_step():
    """If the demo recipe changes, the shipped copy no longer shows what `make demo` gives: re-run the
    demo and ship it (tools/ship_demo_run.py)."""
    recipe, shipped = RECIPE, load_config(SHIPPED / "config.yaml")
    assert shipped.grpo.steps == recipe.grpo.steps and shipped.grpo.seed == 0
    df = load_run(SHIPPED)
    assert df.attrs["summary"]["steps"] == recipe.grpo.steps
    exam_steps = df.loc[df["eval/pass@1"].notna(), "step"].tolist()
    assert exam_steps == list(range(0, recipe.grpo.steps + 1, recipe.eval.every))
    assert df["reward"].notna().sum() == recipe.grpo.steps  # a training line for every step


def test_the_shipped_run_lies_within_the_reference_band_at_every_exam():
    """The shipped run is seed 0 of the band's seeds at one kernel level; the band must hold it."""
    rows = compare_to_band(load_run(SHIPPED), load_reference("micro_r1_zero"))
    exams = range(0, RECIPE.grpo.steps + 1, RECIPE.eval.every)
    assert len(rows) == 3 * len(exams)  # three phenomena at every exam
    assert (rows["position"] == "within").all(), rows[rows["position"] != "within"]


def _finished_run(run_dir: Path, steps: int = RECIPE.grpo.steps, seed: int = 0, final: bool = True) -> Path:
    cfg = load_config(packaged_config("micro_r1_zero"), [f"grpo.steps={steps}", f"grpo.seed={seed}"])
    run_dir.mkdir(parents=True)
    cfg.to_yaml(run_dir / "config.yaml")
    exam = {"pass@1": 0.2, "mean_length": 20.0, "reflection_rate": 0.01}
    summary = {"step0": exam, "sampler": {"name": "lean"}, "projection": {"step_seconds": 0.5},
               "rl_seconds": 150.25, "seed": seed, "steps": steps, "machine": {"torch_cpu_kernels": "AVX2"}}
    if final:
        summary["final"] = {**exam, "pass@1": 0.6}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [{"step": 0, "eval/pass@1": 0.123456789, "eval/mean_length": 20.0},
             {"step": 1, "reward": 0.123456789, "loss": 0.5, "step_time": 0.4444449, "time/rollout": 0.2}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


def test_shipping_keeps_exam_lines_whole_and_rounds_the_training_columns(tmp_path):
    out = ship_demo_run.ship(_finished_run(tmp_path / "run"), tmp_path / "shipped")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0] == {"step": 0, "eval/pass@1": 0.123456789, "eval/mean_length": 20.0}
    assert lines[1] == {"step": 1, "reward": 0.12346, "step_time": 0.44444}  # no loss, no phase times
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"step0", "final", "rl_seconds", "seed", "steps", "machine"}
    assert (out / "config.yaml").read_text() == (tmp_path / "run" / "config.yaml").read_text()


@pytest.mark.parametrize("what, kwargs, named", [
    ("an unfinished run", {"final": False}, "summary.json"),
    ("another length", {"steps": 20}, f"grpo.steps: {RECIPE.grpo.steps} vs 20"),
    ("another seed", {"seed": 1}, "grpo.seed: 0 vs 1"),
])
def test_shipping_refuses_a_run_that_is_not_the_finished_demo_and_keeps_the_old_copy(tmp_path, what, kwargs, named):
    out = ship_demo_run.ship(_finished_run(tmp_path / "good"), tmp_path / "shipped")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        ship_demo_run.ship(_finished_run(tmp_path / "bad", **kwargs), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, what
