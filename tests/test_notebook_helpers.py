"""Helpers the notebooks lean on: run_or_load, estimate_run, load_policy, load_eval_samples, LivePlot."""

from __future__ import annotations

import pytest
import torch

from grpo_lab.estimate import count_exams, estimate_run
from grpo_lab.evaluate import load_eval_samples
from grpo_lab.models import load_policy
from grpo_lab.notebook import run_or_load, run_status
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


class _InterruptAt:
    """A callback that raises KeyboardInterrupt after `step`, as Kernel > Interrupt does mid-run."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt

    def on_evaluate(self, trainer, step, result): ...

    def on_train_end(self, trainer): ...


def _metrics(run_dir):
    from grpo_lab.tracking import read_jsonl

    return [{k: v for k, v in r.items() if k != "step_time" and not k.startswith("time/")}
            for r in read_jsonl(run_dir / "metrics.jsonl")]


def test_run_or_load_resumes_an_interrupted_run_exactly(tiny_model_dir, tiny_exam, tmp_path):
    from tests.test_resume import assert_same_records

    torch.set_num_threads(1)
    reference = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "reference", steps=4).with_overrides(
        ["tracking.save_every=1", "eval.every=2"])
    run_or_load(reference)
    cfg = reference.with_overrides([f"tracking.run_dir={tmp_path / 'run'}"])
    with pytest.raises(KeyboardInterrupt):
        run_or_load(cfg, callbacks=[_InterruptAt(3)])
    assert run_status(cfg) == "interrupted (checkpoint at step 2)"  # step 3 was logged, not saved
    df = run_or_load(cfg)  # what running the cell again does
    assert run_status(cfg) == "finished" and df["step"].max() == 4
    assert_same_records(_metrics(tmp_path / "run"), _metrics(tmp_path / "reference"), "metrics")
    assert not (tmp_path / "run" / "previous").exists()  # resumed, not restarted


def test_run_or_load_restarts_only_when_asked_and_keeps_the_earlier_run(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    run_or_load(cfg)
    first = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    run_or_load(cfg, restart=True)
    [previous] = (tmp_path / "run" / "previous").iterdir()
    assert (previous / "metrics.jsonl").read_bytes() == first


def test_run_status_of_a_directory_without_a_run_is_new(tiny_model_dir, tiny_exam, tmp_path):
    assert run_status(tiny_config(tiny_model_dir, tiny_exam, tmp_path / "nothing")) == "new"


def test_estimate_run_measures_a_probe_and_leaves_the_real_run_unchanged(tiny_model_dir, tiny_exam, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "plain", steps=3).with_overrides(["eval.every=2"])
    run_or_load(cfg)
    estimate = estimate_run(cfg, probe_steps=2)
    probed = cfg.with_overrides([f"tracking.run_dir={tmp_path / 'after_probe'}"])
    run_or_load(probed)
    assert _metrics(tmp_path / "after_probe") == _metrics(tmp_path / "plain")
    assert (estimate.steps, estimate.exams) == (3, 3)  # exams at steps 0, 2 and the end
    assert estimate.step_seconds > 0 and estimate.exam_seconds > 0 and estimate.peak_memory_bytes > 0
    projected = estimate.load_seconds + 3 * estimate.step_seconds + 3 * estimate.exam_seconds
    assert estimate.total_seconds == pytest.approx(projected)
    assert str(estimate).startswith("≈ ") and "min on this machine" in str(estimate)
    assert str(estimate).endswith("a lower bound if completions grow (no reference run to scale by)")
    assert not list(tmp_path.glob("grpo-lab-probe-*"))


def test_count_exams_counts_the_start_every_n_steps_and_the_end(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=500)
    assert count_exams(cfg.with_overrides(["eval.every=50"])) == 11
    assert count_exams(cfg.with_overrides(["eval.every=0"])) == 2
    assert count_exams(cfg.with_overrides(["eval.every=30", "eval.at_start=false"])) == 17


def test_estimate_run_scales_by_a_reference_runs_growth(tiny_model_dir, tiny_exam, tmp_path):
    from grpo_lab.estimate import _growth

    run = tmp_path / "ref"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(f'{{"step": {s}, "step_time": {t}}}\n' for s, t in
                                               enumerate([1.0, 1.0, 2.0, 4.0], start=1)))
    assert _growth(run, 2) == pytest.approx(2.0)  # mean 2.0 over a start of 1.0
    with pytest.raises(ValueError, match="no step_time logged for more than 4 steps"):
        _growth(run, 4)


def test_live_plot_progress_line_names_the_phenomena_and_the_time_left():
    live = LivePlot(every=10, total=100)
    metrics = {"reward": 0.5, "accuracy": 0.25, "completions/mean_length": 40.2, "phenomena/reflection_rate": 0.1}
    live.on_step_end(None, 1, metrics)
    start = live._start[0]
    line = live.progress_line(11, metrics, start + 20.0)  # 10 steps in 20 s
    assert line == ("step 11/100 · reward 0.50 · accuracy 0.25 · length 40 · reflection 0.10 · 2.0 s/step"
                    " · ≈ 3.0 min left")


def test_run_or_load_prints_a_probe_estimate_before_training_but_not_when_loading(tiny_model_dir, tiny_exam, tmp_path, capsys):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=3)
    run_or_load(cfg, estimate=True)  # the default probes only runs of more than PROBE_MIN_STEPS steps
    trained = capsys.readouterr().out
    assert "a two-step probe first says how long" in trained
    assert "min on this machine: 3 steps ×" in trained
    run_or_load(cfg)
    assert "min on this machine" not in capsys.readouterr().out  # loaded: nothing probed
    run_or_load(cfg.with_overrides([f"tracking.run_dir={tmp_path / 'quiet'}"]), estimate=False)
    assert "min on this machine" not in capsys.readouterr().out


def test_run_or_load_probes_long_runs_by_default_and_skips_short_ones(tiny_model_dir, tiny_exam, tmp_path, capsys,
                                                                      monkeypatch):
    import grpo_lab.notebook as notebook

    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "short", steps=2)
    run_or_load(cfg)
    assert "probe" not in capsys.readouterr().out
    monkeypatch.setattr(notebook, "PROBE_MIN_STEPS", 1)  # as if 2 steps were a long run
    run_or_load(cfg.with_overrides([f"tracking.run_dir={tmp_path / 'long'}"]))
    assert "min on this machine: 2 steps" in capsys.readouterr().out
