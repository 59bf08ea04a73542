"""A shortened main job (`grpo-lab demo`): checks the pipeline end to end, not the thresholds."""

from __future__ import annotations

import json

from grpo_lab.cli import main


def test_shortened_demo_writes_summary_report_and_figures(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main([
        "demo", "--seed", "0", "--out", str(out),
        "--set", "grpo.steps=4", "--set", "grpo.prompts_per_step=4", "--set", "grpo.group_size=4",
        "--set", "eval.k=4", "--set", "eval.every=2", "--set", "tracking.wandb_mode=disabled",
        "--set", "tracking.progress=false",
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for part in ("step0", "final"):
        assert set(summary[part]) == {"pass@1", "cons@4", "pass@4", "mean_length", "reflection_rate"}
        assert 0.0 <= summary[part]["pass@1"] <= 1.0 and summary[part]["mean_length"] > 0
    assert summary["seed"] == 0 and 0 < summary["rl_seconds"] <= summary["total_seconds"]
    # The arithmetic it ran on: a run is bitwise reproducible only at the same torch and kernel level.
    import torch

    assert summary["machine"]["torch"] == torch.__version__
    assert summary["machine"]["torch_cpu_kernels"].startswith(torch.backends.cpu.get_cpu_capability())
    for png in ("accuracy.png", "response_length.png", "reflection.png"):
        assert (out / "figures" / png).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "pass@1" in report
    printed = capsys.readouterr().out
    assert "pass@1" in printed and str(out) in printed


def test_bad_override_exits_with_a_message_naming_the_key(tmp_path, capsys):
    code = main(["train", "--config", "micro_r1_zero", "--set", "grpo.group_size=1"])
    assert code == 2
    assert "grpo.group_size" in capsys.readouterr().err
