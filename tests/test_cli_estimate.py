"""`grpo-lab train --estimate`: a probe's projection of the run, with nothing trained or written."""

from __future__ import annotations

from grpo_lab import cli
from tests.conftest import tiny_config


def test_train_estimate_prints_a_projection_and_writes_no_run(tiny_model_dir, tiny_exam, tmp_path, capsys):
    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, steps=40)
    cfg.eval.every = 10
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert cli.main(["train", "--config", str(path), "--estimate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("≈ ") and "40 steps ×" in out and "peak memory" in out
    assert not run_dir.exists()


def test_every_run_projects_its_remaining_time_after_two_steps(tiny_model_dir, tiny_exam, tmp_path):
    from grpo_lab.tracking import read_summary
    from grpo_lab.trainer import GRPOTrainer

    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=5)
    cfg.eval.every = 2
    GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    projection = read_summary(tmp_path / "run" / "summary.json")["projection"]
    assert projection["steps_left"] == 3 and projection["exams_left"] == 2  # the exam at step 4, and the final one
    assert projection["step_seconds"] > 0 and projection["exam_seconds"] > 0 and projection["peak_memory_bytes"] > 2**20
    assert projection["seconds_left"] >= 3 * projection["step_seconds"]
