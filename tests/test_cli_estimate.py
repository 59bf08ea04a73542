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
