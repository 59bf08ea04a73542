"""grpo_lab.compare_runs / `grpo-lab compare`: final exams side by side, differences, paired t."""

from __future__ import annotations

import math

import pytest
from test_bands import fake_run

import grpo_lab
from grpo_lab import cli
from grpo_lab.compare import compare_runs, paired_runs_change


def test_package_exports_the_new_compare_runs_and_plots_keeps_its_own():
    from grpo_lab import plots

    assert grpo_lab.compare_runs is compare_runs
    assert plots.compare_runs is not compare_runs


def test_table_holds_final_metrics_differences_and_a_paired_t(tmp_path):
    a = fake_run(tmp_path / "a", 0, {0: 0.2, 50: 0.3})
    b = fake_run(tmp_path / "b", 1, {0: 0.2, 50: 0.6}, ["grpo.lr=0.001"])
    result = compare_runs(a, b)
    t = result.table
    assert t.loc["a", "pass@1"] == pytest.approx(0.3) and t.loc["b", "pass@1"] == pytest.approx(0.6)
    assert t.loc["b", "Δ pass@1"] == pytest.approx(0.3)
    # per question the change is +0.3 everywhere: no spread (up to rounding), a huge t
    assert t.loc["b", "t pass@1"] > 1e6
    assert result.differences["b"] == ["grpo.lr: 0.00015 vs 0.001", "grpo.seed: 0 vs 1"]
    assert len(result.figure.axes) == 4


def test_paired_t_is_mean_over_standard_error_of_per_question_changes(tmp_path):
    a = fake_run(tmp_path / "a", 0, {0: 0.5})
    b = fake_run(tmp_path / "b", 0, {0: 0.5})
    # b: half the questions +0.2, half unchanged
    import pandas as pd

    path = b / "eval" / "questions_step000000.csv"
    q = pd.read_csv(path)
    q.loc[::2, "pass@1"] += 0.2
    q.to_csv(path, index=False)
    out = paired_runs_change(a, b)
    diffs = [0.2 if i % 2 == 0 else 0.0 for i in range(30)]
    import statistics

    se = statistics.stdev(diffs) / math.sqrt(30)
    assert out["mean_change"] == pytest.approx(0.1) and out["t"] == pytest.approx(0.1 / se)


def test_runs_on_different_exams_get_no_paired_test(tmp_path):
    a = fake_run(tmp_path / "a", 0, {0: 0.5})
    b = fake_run(tmp_path / "b", 0, {0: 0.5})
    import pandas as pd

    path = b / "eval" / "questions_step000000.csv"
    q = pd.read_csv(path)
    q["question"] = q["question"] + "?"
    q.to_csv(path, index=False)
    with pytest.raises(ValueError, match="different questions"):
        paired_runs_change(a, b)
    assert math.isnan(compare_runs(a, b).table.loc["b", "t pass@1"])


def test_cli_compare_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 0, {0: 0.2, 50: 0.3})
    b = fake_run(tmp_path / "b", 1, {0: 0.2, 50: 0.35})
    assert cli.main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "Δ pass@1" in out and "b vs the first run: grpo.seed: 0 vs 1" in out
    assert (tmp_path / "cmp.png").stat().st_size > 0


def test_compare_needs_two_runs_and_names_a_missing_one(tmp_path, capsys):
    with pytest.raises(ValueError, match="at least two"):
        compare_runs(tmp_path)
    assert cli.main(["compare", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "nope: no metrics.jsonl" in capsys.readouterr().err


def test_differences_name_the_torch_kernel_level_when_two_runs_ran_on_different_ones(tmp_path):
    # Same config and seed, different kernels: not a bitwise repeat, and the comparison says so.
    import json

    a = fake_run(tmp_path / "a", 0, {0: 0.2, 50: 0.3})
    b = fake_run(tmp_path / "b", 0, {0: 0.2, 50: 0.35})
    c = fake_run(tmp_path / "c", 0, {0: 0.2, 50: 0.3})
    machine = {"torch": "2.13.0+cpu", "cpu": "AMD EPYC", "cores": 2, "torch_cpu_kernels": "AVX512"}
    for run, kernels in ((a, "AVX512"), (b, "AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)"), (c, "AVX512")):
        (run / "summary.json").write_text(json.dumps({"final": {}, "machine": {**machine, "torch_cpu_kernels": kernels}}))
    result = compare_runs(a, b, c)
    assert result.differences["b"] == ["machine.torch_cpu_kernels: 'AVX512' vs 'AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)'"]
    assert result.differences["c"] == []
    assert "same config (other than tracking)" in result.to_text()
