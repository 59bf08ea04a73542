"""Helpers the notebooks lean on: run_or_load, load_policy, load_eval_samples, LivePlot."""

from __future__ import annotations

import pytest
import torch

from grpo_lab.evaluate import load_eval_samples
from grpo_lab.models import load_policy
from grpo_lab.notebook import run_or_load
from grpo_lab.plots import LivePlot
from tests.conftest import tiny_config


def test_run_or_load_trains_once_then_loads(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    first = run_or_load(cfg)
    mtime = (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns
    second = run_or_load(cfg)
    assert (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns == mtime  # not retrained
    assert first["step"].tolist() == second["step"].tolist()


def test_run_or_load_refuses_a_finished_run_with_another_recipe(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    run_or_load(cfg)
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(FileExistsError, match=r"grpo\.beta: 0\.04 \(run\) vs 0\.5 \(now\)"):
        run_or_load(cfg.with_overrides(["grpo.beta=0.5"]))
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before  # nothing overwritten
    # Only where and how it logs differs: the finished run is the same recipe, so it loads.
    assert len(run_or_load(cfg.with_overrides(["tracking.log_completions_every=0"]))) > 0


def test_load_policy_restores_the_trained_adapter(tiny_model_dir, tiny_exam, tmp_path):
    from grpo_lab.trainer import GRPOTrainer

    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    trainer = GRPOTrainer(cfg, run_dir=tmp_path / "run")
    trainer.train()
    model, tokenizer = load_policy(tmp_path / "run", device="cpu")
    ids = tokenizer(["User : 1 + 2 = ? Assistant :"], return_tensors="pt")
    with torch.no_grad():
        expected = trainer.model(**ids).logits
        got = model(**ids).logits
    torch.testing.assert_close(got, expected)


def test_load_eval_samples_first_last_and_missing_step(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    run_or_load(cfg)
    first, last = load_eval_samples(tmp_path / "run", "first"), load_eval_samples(tmp_path / "run", "last")
    assert (first.attrs["step"], last.attrs["step"]) == (0, 2)
    assert {"completion", "correct", "length", "n_reflections"} <= set(last.columns)
    with pytest.raises(KeyError, match="evaluated steps: \\[0, 2\\]"):
        load_eval_samples(tmp_path / "run", 1)


def test_live_plot_is_silent_outside_jupyter_but_collects_metrics(tiny_model_dir, tiny_exam, tmp_path):
    live = LivePlot(every=1)
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    run_or_load(cfg, callbacks=[live])
    assert not live.active
    assert [r["step"] for r in live.rows if "reward" in r] == [1, 2]
