"""Tests for grpo_lab.plots and grpo_lab.report on a small synthetic run.

The metric values are synthetic (made-up trends), written with RunLogger as a trainer would.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from grpo_lab import plots  # noqa: E402
from grpo_lab.report import FIGURES, summary_rows, write_report  # noqa: E402
from grpo_lab.tracking import RunLogger, load_run  # noqa: E402

STEPS = 20
EVAL_EVERY = 5


@pytest.fixture(autouse=True)
def quiet_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A synthetic 20-step run: training metrics every step, eval every 5 steps from step 0."""
    rng = np.random.default_rng(0)
    run_dir = tmp_path / "synthetic_run"
    with RunLogger(run_dir, {"name": "synthetic", "seed": 0}) as logger:
        for step in range(STEPS + 1):
            if step > 0:
                mean_len = 50 + 5 * step + rng.normal(0, 3)
                logger.log(
                    {
                        "reward": 0.2 + 0.03 * step,
                        "rewards/accuracy_reward/mean": 0.1 + 0.03 * step + rng.normal(0, 0.02),
                        "completions/mean_length": mean_len,
                        "completions/min_length": mean_len - 30,
                        "completions/max_length": mean_len + 60,
                        "completions/mean_length_correct": mean_len - 10,
                        "completions/mean_length_incorrect": mean_len + 15,
                        "phenomena/reflection_rate": 0.05 + 0.01 * step,
                        "kl": 0.001 * step,
                    },
                    step=step,
                )
            if step % EVAL_EVERY == 0:
                logger.log(
                    {
                        "eval/pass@1": 0.10 + 0.01 * step,
                        "eval/cons@16": 0.15 + 0.01 * step,
                        "eval/pass@16": 0.40 + 0.01 * step,
                        "eval/mean_length": 60.0 + 4 * step,
                        "eval/reflection_rate": 0.05 + 0.005 * step,
                    },
                    step=step,
                )
        logger.log_completions(
            STEPS,
            [
                {"prompt": f"What is {i} + 1?", "completion": f"<think>wait</think><answer>{i + 1}</answer>",
                 "reward": 1.0, "length": 12}
                for i in range(5)
            ],
        )
    return run_dir


@pytest.fixture
def df(run_dir: Path) -> pd.DataFrame:
    return load_run(run_dir)


def _lines_with_data(fig: Figure) -> list:
    return [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata())]


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_smooth_is_a_trailing_ema_that_ignores_missing_steps():
    s = pd.Series([0.0, np.nan, 1.0, 1.0, 1.0])
    out = plots.smooth(s, window=3)
    assert list(out.index) == [0, 2, 3, 4]
    assert out.iloc[0] == 0.0  # starts at the first value, no NaN warm-up
    assert 0.0 < out.iloc[1] < out.iloc[2] < out.iloc[3] < 1.0  # trails towards the new level
    assert plots.smooth(s, window=1).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_plot_accuracy_draws_pass1_cons16_and_raw_plus_smoothed_training_accuracy(df):
    fig = plots.plot_accuracy(df)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = _lines_with_data(fig)
    assert len(lines) == 4  # train raw, train smoothed, pass@1, cons@16
    labels = [line.get_label() for line in lines]
    assert "eval pass@1" in labels and "eval cons@16" in labels
    pass1 = next(line for line in lines if line.get_label() == "eval pass@1")
    assert list(pass1.get_xdata()) == [0, 5, 10, 15, 20]  # only rows where eval ran


def test_plot_response_length_draws_a_band_between_min_and_max(df):
    fig = plots.plot_response_length(df)
    ax = fig.axes[0]
    assert len(_lines_with_data(fig)) == 3  # raw, smoothed, eval markers
    assert len(ax.collections) == 1  # the min..max band
    assert "min..max" in [h.get_label() for h in ax.get_legend_handles_labels()[0]]


def test_plot_response_length_prefers_a_std_band_when_logged(df):
    df = df.assign(**{"completions/std_length": 5.0})
    fig = plots.plot_response_length(df)
    assert "mean ± std" in fig.axes[0].get_legend_handles_labels()[1]


def test_plot_reflection_and_length_by_correctness_draw_their_series(df):
    assert len(_lines_with_data(plots.plot_reflection(df))) == 3  # train raw, smoothed, eval
    assert len(_lines_with_data(plots.plot_length_by_correctness(df))) == 4  # 2 outcomes x (raw, smoothed)


def test_length_by_correctness_falls_back_to_eval_columns():
    df = pd.DataFrame({"step": [0, 10], "eval/mean_length_correct": [50.0, 80.0],
                       "eval/mean_length_incorrect": [70.0, 120.0]})
    assert len(_lines_with_data(plots.plot_length_by_correctness(df))) == 2


@pytest.mark.parametrize(
    "panel, key",
    [
        (plots.plot_accuracy, "eval/pass@1"),
        (plots.plot_response_length, "completions/mean_length"),
        (plots.plot_reflection, "eval/reflection_rate"),
        (plots.plot_length_by_correctness, "completions/mean_length_correct"),
    ],
)
def test_panels_say_no_data_instead_of_crashing_on_missing_columns(panel, key):
    df = pd.DataFrame({"step": [1, 2, 3], "reward": [0.1, 0.2, 0.3]})
    fig = panel(df)
    assert isinstance(fig, Figure)
    assert not _lines_with_data(fig)
    assert f"no data for {key}" in _texts(fig)


def test_panels_draw_into_a_given_axis(df):
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_accuracy(df, ax=ax) is fig
    assert ax.get_lines()


def test_r1_zero_figure_has_the_four_panels_in_a_two_by_two_grid_at_notebook_width(df):
    fig = plots.plot_r1_zero_figures(df)
    assert len(fig.axes) == len(plots.PANELS) == 4
    assert all(ax.get_lines() for ax in fig.axes)
    grid = [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in fig.axes]
    assert grid == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert fig.get_figwidth() <= 10  # legible without shrinking in a normal notebook column


def test_compare_runs_draws_one_curve_per_run_having_the_key(df):
    other = df.assign(**{"eval/pass@1": df["eval/pass@1"] * 0.5})
    fig = plots.compare_runs({"a": df, "b": other, "empty": pd.DataFrame({"step": [1]})}, "eval/pass@1")
    assert [line.get_label() for line in _lines_with_data(fig)] == ["a", "b"]
    train = plots.compare_runs({"a": df, "b": df}, "reward")
    assert len(_lines_with_data(train)) == 4  # raw + smoothed for each run
    assert "no data for kl2" in _texts(plots.compare_runs({"a": df}, "kl2"))


def test_write_report_creates_pngs_and_a_markdown_with_the_metric_values(run_dir):
    report = write_report(run_dir, dpi=50)
    assert report == run_dir / "report.md"
    for name in FIGURES:
        png = run_dir / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 300_000
    text = report.read_text()
    # eval/pass@1 went 0.1 (step 0) -> 0.3 (step 20): difference +0.2, ratio 3x
    assert "| `eval/pass@1` | 0.1 (0) | 0.3 (20) | +0.2 | 3.00× |" in text
    for key in ("eval/cons@16", "eval/pass@16", "eval/mean_length", "eval/reflection_rate"):
        assert f"`{key}`" in text
    assert "figures/accuracy.png" in text and "figures/r1_zero.png" in text
    assert text.count("### Sample") == 3
    assert "What is 0 + 1?" in text


def test_report_prefers_summary_json_step0_and_final(run_dir):
    (run_dir / "summary.json").write_text(json.dumps({"step0": {"eval/pass@1": 0.05}, "final": {"eval/pass@1": 0.5}}))
    rows = {r["metric"]: r for r in summary_rows(load_run(run_dir))}
    assert rows["eval/pass@1"]["first"] == 0.05 and rows["eval/pass@1"]["last"] == 0.5
    assert rows["eval/pass@1"]["ratio"] == pytest.approx(10.0)
    assert rows["eval/cons@16"]["first"] == pytest.approx(0.15)  # not in summary: from metrics


def test_write_report_lists_cons_at_other_k(tmp_path):
    with RunLogger(tmp_path / "k8", {}) as logger:
        logger.log({"eval/pass@1": 0.25, "eval/cons@8": 0.5, "eval/mean_length_correct": float("nan")}, step=0)
    text = write_report(tmp_path / "k8", dpi=40).read_text()
    assert "| `eval/cons@8` | 0.5 (0) | 0.5 (0) | +0 | 1.00× |" in text


def test_write_report_handles_a_run_without_eval_or_completions(tmp_path):
    with RunLogger(tmp_path / "bare", {}) as logger:
        logger.log({"reward": 0.0}, step=1)
    text = write_report(tmp_path / "bare", dpi=40).read_text()
    assert "No evaluation metrics" in text and "No completions" in text
    assert (tmp_path / "bare" / "figures" / "r1_zero.png").exists()


def test_write_report_says_which_machine_and_kernels_the_run_used(tmp_path):
    # Bitwise reproducibility holds only at the same torch kernel level; the report names it.
    with RunLogger(tmp_path / "m", {}) as logger:
        logger.log({"eval/pass@1": 0.25}, step=0)
        logger.summary({"machine": {"torch": "2.13.0+cpu", "cpu": "AMD EPYC", "cores": 2,
                                    "torch_cpu_kernels": "AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)"}})
    text = write_report(tmp_path / "m", dpi=40).read_text()
    assert "Ran on AMD EPYC, 2 cores; torch 2.13.0+cpu, CPU kernels AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)." in text
    with RunLogger(tmp_path / "m", {}, resume=True) as logger:  # resumed on another machine
        logger.summary({"machine_on_resume": {"torch": "2.13.0+cpu", "cpu": "AMD EPYC", "cores": 2,
                                              "torch_cpu_kernels": "AVX512"}})
    text = write_report(tmp_path / "m", dpi=40).read_text()
    assert "Resumed elsewhere: Ran on AMD EPYC, 2 cores; torch 2.13.0+cpu, CPU kernels AVX512. Its bits mix" in text
    with RunLogger(tmp_path / "old", {}) as logger:  # a run from before the record: no line, no error
        logger.log({"eval/pass@1": 0.25}, step=0)
    assert "Ran on" not in write_report(tmp_path / "old", dpi=40).read_text()
