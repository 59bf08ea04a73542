"""One exam: `grpo-lab eval` on a saved checkpoint reproduces the eval line the run logged for its step."""

from __future__ import annotations

import json

import pytest

from grpo_lab import cli
from grpo_lab.exam import exam_seed
from grpo_lab.tracking import read_jsonl
from grpo_lab.trainer import GRPOTrainer
from tests.conftest import tiny_config


def test_exam_seed_differs_by_step_and_by_run_seed():
    seeds = {exam_seed(s, step) for s in (0, 1) for step in (0, 1, 50)}
    assert len(seeds) == 6


@pytest.fixture
def finished_run(tiny_model_dir, tiny_exam, tmp_path):
    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, steps=2, beta=0.0)
    cfg.eval.every = 1
    cfg.tracking.save_every = 1
    GRPOTrainer(cfg, run_dir=run_dir).train()
    return run_dir


def _logged_eval(run_dir, step: int) -> dict[str, float]:
    lines = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["step"] == step and "eval/pass@1" in r]
    assert len(lines) == 1
    return {k[len("eval/"):]: v for k, v in lines[0].items() if k.startswith("eval/")}


def test_eval_of_a_checkpoint_reproduces_the_logged_exam_exactly(finished_run, tmp_path, capsys):
    checkpoint = finished_run / "checkpoints" / "step-000002"
    out = tmp_path / "eval"
    assert cli.main(["eval", "--adapter", str(checkpoint), "--out", str(out)]) == 0
    assert "exam of step 2" in capsys.readouterr().out
    measured = json.loads((out / "metrics.json").read_text())
    assert measured.pop("step") == 2
    logged = _logged_eval(finished_run, 2)
    assert measured == logged  # every metric, to the last bit


def test_eval_of_the_base_model_reproduces_the_step_0_exam(finished_run, tmp_path):
    out = tmp_path / "eval0"
    assert cli.main(["eval", "--config", str(finished_run / "config.yaml"), "--out", str(out)]) == 0
    measured = json.loads((out / "metrics.json").read_text())
    assert measured.pop("step") == 0
    assert measured == _logged_eval(finished_run, 0)


def test_the_same_checkpoint_at_another_steps_seed_draws_other_samples(finished_run):
    """What makes the check above able to fail: the exam's samples depend on the step's seed."""
    import pandas as pd

    from grpo_lab.config import load_config
    from grpo_lab.exam import run_exam
    from grpo_lab.models import load_policy

    model, tokenizer = load_policy(finished_run / "checkpoints" / "step-000002", device="cpu")
    cfg = load_config(finished_run / "config.yaml")
    logged = pd.read_json(finished_run / "eval" / "samples_step000002.jsonl", lines=True)
    same = run_exam(model, tokenizer, cfg, step=2).samples
    other = run_exam(model, tokenizer, cfg, step=1).samples
    assert same["completion"].tolist() == logged["completion"].tolist()
    assert other["completion"].tolist() != logged["completion"].tolist()
