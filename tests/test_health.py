"""Run-health checks (grpo_lab/health.py): each fires once on a run built to trigger it, stays silent
on normal runs, and reaches the progress bar, the warnings, events.jsonl and the report."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict

import pytest
import torch
from conftest import tiny_config

from grpo_lab.config import ConfigError, HealthConfig, load_config
from grpo_lab.health import CHECKS, HealthMonitor, HealthWarning, health_report
from grpo_lab.rewards import answer_is_readable, extract_answer, unparsed_ratio
from grpo_lab.tracking import read_jsonl

HEALTHY = {"completions/clipped_ratio": 0.0, "frac_reward_zero_std": 0.2, "rewards/format_reward/mean": 0.9,
           "completions/unparsed_ratio": 0.0, "entropy": 0.2, "kl": 0.05, "loss": 0.0, "grad_norm": 0.1,
           "reward": 0.5, "nonfinite_skipped": 0.0}


def feed(monitor: HealthMonitor, steps: int, **changes) -> list[str]:
    fired = []
    for step in range(1, steps + 1):
        fired += [a.check for a in monitor.check(step, {**HEALTHY, **changes})]
    return fired


@pytest.mark.parametrize("check, changes", [
    ("truncated", {"completions/clipped_ratio": 0.97}),
    ("no_signal", {"frac_reward_zero_std": 1.0}),
    ("format_stuck", {"rewards/format_reward/mean": 0.0}),
    ("unparsed", {"completions/unparsed_ratio": 0.8}),
    ("kl_blowup", {"kl": 5.0}),
])
def test_each_check_fires_once_after_patience_steps_in_a_row(check, changes):
    h = HealthConfig(patience=3, format_stuck_steps=3)
    monitor = HealthMonitor(h, warn=False)
    assert feed(monitor, 2, **changes) == []  # not yet: 2 < patience
    assert feed(monitor, 30, **changes) == [check]  # fires once, never again
    assert monitor.alerts[0].step == 1 and monitor.status() == check


def test_a_healthy_run_and_an_interrupted_streak_raise_nothing():
    h = HealthConfig(patience=3)
    monitor = HealthMonitor(h, warn=False)
    assert feed(monitor, 50) == []
    for step in range(1, 40):  # bad every other step: never 3 in a row
        bad = {"completions/clipped_ratio": 0.99} if step % 2 else {}
        assert monitor.check(step, {**HEALTHY, **bad}) == []
    assert monitor.status() == "ok"


def test_entropy_collapse_is_relative_to_the_runs_own_start():
    monitor = HealthMonitor(HealthConfig(patience=3, entropy_collapse_fraction=0.1), warn=False)
    for step, entropy in enumerate([2.0, 2.0, 2.0, 0.5, 0.3, 0.19, 0.19, 0.19], start=1):
        fired = monitor.check(step, {**HEALTHY, "entropy": entropy})
    assert [a.check for a in monitor.alerts] == ["entropy_collapse"] and fired
    assert monitor.alerts[0].threshold == pytest.approx(0.2)
    # a model that starts with a low entropy and keeps it is not collapsing
    assert feed(HealthMonitor(HealthConfig(patience=3), warn=False), 30, entropy=0.01) == []


def test_a_non_finite_value_fires_at_once_with_its_name():
    monitor = HealthMonitor(HealthConfig(patience=5), warn=False)
    monitor.check(1, HEALTHY)
    alerts = monitor.check(2, {**HEALTHY, "grad_norm": math.inf, "nonfinite_skipped": 1.0})
    assert [a.check for a in alerts] == ["nonfinite"] and "grad_norm" in alerts[0].condition


def test_legitimately_missing_values_are_not_non_finite():
    """mean_length_correct is NaN when no answer is right: that is not a numerical problem."""
    monitor = HealthMonitor(HealthConfig(patience=1), warn=False)
    assert monitor.check(1, {**HEALTHY, "completions/mean_length_correct": math.nan}) == []


def test_alert_message_says_what_it_means_and_what_to_try_and_warns():
    monitor = HealthMonitor(HealthConfig(patience=1))
    with pytest.warns(HealthWarning, match="What it means: .*What to try: raise grpo.max_new_tokens"):
        monitor.check(1, {**HEALTHY, "completions/clipped_ratio": 1.0})


def test_disabled_monitor_checks_nothing():
    assert feed(HealthMonitor(HealthConfig(enabled=False, patience=1), warn=False), 5, kl=99.0) == []


def test_replay_restores_state_without_reporting_again():
    """What a resume does: the steps before the checkpoint are replayed silently."""
    seen = []
    records = [{"step": s, **HEALTHY, "kl": 9.0} for s in range(1, 6)]
    monitor = HealthMonitor(HealthConfig(patience=3), on_alert=seen.append, warn=False)
    monitor.replay(records)
    assert seen == [] and monitor.fired == {"kl_blowup"}
    assert monitor.check(6, {**HEALTHY, "kl": 9.0}) == []  # already fired before the crash


def test_health_thresholds_load_from_yaml_and_bad_values_name_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("health:\n  patience: 4\n  max_kl: 0.5\n")
    cfg = load_config(path)
    assert (cfg.health.patience, cfg.health.max_kl) == (4, 0.5)
    with pytest.raises(ConfigError, match="health.max_clipped_ratio"):
        load_config(None, ["health.max_clipped_ratio=2"])
    with pytest.raises(ConfigError, match="health.pat"):
        load_config(None, ["health.patiense=3"])


# ------------------------------------------------------------------------ the parse metric
@pytest.mark.parametrize("completion, readable", [
    ("<think> 1 + 2 </think> <answer> 3 </answer>", True),
    ("<answer> \\frac{1}{2} </answer>", True),
    ("<think> 1 + 2 = 3", False),                      # cut before the answer
    ("<answer>  </answer>", False),                    # empty
    ("<answer> the sum of them </answer>", False),     # not math
])
def test_unparsed_separates_could_not_read_from_wrong(completion, readable):
    assert answer_is_readable(extract_answer(completion)) is readable


def test_unparsed_ratio_counts_unreadable_answers_not_wrong_ones():
    wrong_but_readable = "<answer> 41 </answer>"
    assert unparsed_ratio([wrong_but_readable, "<answer> 42 </answer>", "no tags", "<think> cut"]) == 0.5


# ------------------------------------------------------------------------ on real (tiny) runs
@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_run_with_too_small_max_new_tokens_and_an_unwritten_format_fires_its_alerts(
        tiny_model_dir, tiny_exam, tmp_path, one_thread):
    """max_new_tokens 2: every completion is cut before any answer; the random model never writes
    the format. Each alert fires once, is warned, written to events.jsonl, in the report table."""
    from grpo_lab.trainer import GRPOTrainer

    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, max_new_tokens=2, steps=4).with_overrides(
        ["health.patience=2", "health.format_stuck_steps=3"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = GRPOTrainer(cfg, run_dir=run_dir)
        trainer.train()
    warned = [str(w.message) for w in caught if issubclass(w.category, HealthWarning)]
    events = read_jsonl(run_dir / "events.jsonl")
    fired = {e["check"]: e["step"] for e in events}
    assert fired == {"truncated": 2, "unparsed": 2, "no_signal": 2, "format_stuck": 3}
    assert len(warned) == len(events) == 4
    assert trainer.monitor.status() == "format_stuck,no_signal,truncated,unparsed"
    metrics = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r]
    assert all(r["completions/unparsed_ratio"] == 1.0 for r in metrics)
    table = health_report(run_dir)
    assert table.loc["truncated", "status"] == "FIRED at step 2" and table.loc["kl_blowup", "status"] == "ok"
    from grpo_lab.report import write_report

    text = write_report(run_dir).read_text()
    assert "completions truncated at the length cap" in text and "raise grpo.max_new_tokens" in text


def test_the_demo_reference_runs_raise_no_alert_with_the_current_thresholds():
    """benchmarks/make_reference_bands.py replays every check over every step of the acceptance runs
    and stores what fired: the demo recipe (3 seeds) must be silent, with today's thresholds."""
    from grpo_lab.bands import load_reference

    ref = load_reference("micro_r1_zero")
    assert ref.health_thresholds == asdict(HealthConfig()), "thresholds changed: rerun make_reference_bands.py"
    assert len(ref.seeds) >= 3
    assert ref.health_alerts == {f"seed{s}": [] for s in ref.seeds}


def test_every_check_is_documented():
    for check in CHECKS.values():
        assert check.meaning and check.advice and check.title
    assert json.dumps(sorted(CHECKS))  # names are plain strings (wandb keys health/<name>)


def test_an_alert_goes_to_events_jsonl_and_offline_wandb_as_a_logged_event(tmp_path, monkeypatch):
    """Offline there is no wandb alert to send: the alert is a logged `health/<check>` value at its
    step (read back from the offline run's own .wandb file) plus the message in the summary."""
    pytest.importorskip("wandb")
    from grpo_lab.health import HealthAlert
    from grpo_lab.tracking import RunLogger, offline_wandb_history, offline_wandb_runs

    (tmp_path / "wandb_dir").mkdir()
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    with RunLogger(run_dir, {}, wandb_mode="offline") as logger:
        for step in range(1, 4):
            logger.log({"reward": 0.0}, step=step)
        logger.log_health(HealthAlert("truncated", 3, 0.97, 0.5, "completions/clipped_ratio 0.97 > 0.5 for 3 steps"))
        assert logger.wandb_active
    event = read_jsonl(run_dir / "events.jsonl")[0]
    assert event["kind"] == "health" and event["check"] == "truncated" and "What to try" in event["message"]
    history = offline_wandb_history(offline_wandb_runs(run_dir)[0], wait_s=60)
    assert [row.get("health/truncated") for row in history] == [None, None, 1.0], history


def test_online_an_alert_is_also_sent_as_a_wandb_alert(tmp_path):
    """The online path, with a stand-in for the wandb run (no network here): run.alert is called
    once with the check's title and message, besides the logged value and the summary entry."""
    from grpo_lab.health import HealthAlert
    from grpo_lab.tracking import RunLogger

    class FakeRun:
        def __init__(self):
            self.logged, self.alerts, self.summary = [], [], {}

        def log(self, data, step):
            self.logged.append((step, data))

        def alert(self, title, text, level=None):
            self.alerts.append((title, text, str(level)))

    logger = RunLogger(tmp_path / "run", {}, wandb_mode="disabled")
    fake = logger._wandb_run = FakeRun()
    logger.wandb_mode = "online"
    logger.log_health(HealthAlert("kl_blowup", 7, 3.0, 1.0, "kl 3 > 1.0 for 10 steps"))
    assert fake.logged == [(7, {"health/kl_blowup": 1.0})]
    assert "KL blow-up" in fake.summary["health/kl_blowup"]
    [(title, text, level)] = fake.alerts
    assert title == "grpo-lab: KL blow-up" and "lower grpo.lr" in text and level.endswith("WARN")


def test_weights_made_non_finite_fire_the_alert_before_the_run_stops(tiny_model_dir, tiny_exam, tmp_path, one_thread):
    """Full fine-tuning in float16: AdamW's eps is 0 in 16 bits, a zero-gradient weight gets 0/0, and
    the trainer stops the run. The nonfinite alert is in events.jsonl first, and the stop names the dtype."""
    from grpo_lab.trainer import GRPOTrainer, TrainingStopped

    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, steps=3).with_overrides(
        ["model.dtype=float16", "model.use_lora=false", "grpo.lr=1e-4"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainingStopped, match="float16: AdamW's eps"):
            GRPOTrainer(cfg, run_dir=run_dir).train()
    events = read_jsonl(run_dir / "events.jsonl")
    assert [(e["check"], e["step"]) for e in events] == [("nonfinite", 1)]
    assert "trainable weights became NaN/inf" in events[0]["condition"]
    assert health_report(run_dir).loc["nonfinite", "status"] == "FIRED at step 1"
