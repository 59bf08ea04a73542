"""Tests for grpo_lab.tracking: the local run directory, wandb modes, and loading into pandas.

All metric values here are synthetic, made up for the tests.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grpo_lab import tracking
from grpo_lab.tracking import (
    EVAL_METRIC_NAMES,
    TRAIN_METRIC_NAMES,
    RunLogger,
    load_completions,
    load_run,
    load_runs,
    read_jsonl,
)


@pytest.fixture(autouse=True)
def quiet_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep wandb quiet, offline and inside tmp_path whatever the caller's environment says."""
    wandb_dir = tmp_path / "wandb_dir"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return wandb_dir


def write_synthetic_run(run_dir: Path, steps: int = 5, mode: str = "disabled") -> None:
    with RunLogger(run_dir, {"seed": 0, "lr": 1e-6}, wandb_mode=mode) as logger:
        for step in range(1, steps + 1):
            logger.log({"reward": step / 10, "completions/mean_length": 100.0 + step}, step=step)


def test_metric_name_tuples_follow_trl_and_eval_conventions():
    assert {"reward", "reward_std", "completions/mean_length", "kl"} <= set(TRAIN_METRIC_NAMES)
    assert {"eval/pass@1", "eval/cons@16", "eval/pass@16", "eval/mean_length", "eval/reflection_rate"} <= set(
        EVAL_METRIC_NAMES
    )
    assert all(name.startswith("eval/") for name in EVAL_METRIC_NAMES)
    assert len(set(TRAIN_METRIC_NAMES)) == len(TRAIN_METRIC_NAMES)


def test_disabled_mode_writes_no_wandb_files(tmp_path, quiet_wandb):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir, mode="disabled")
    assert not any(quiet_wandb.iterdir())
    assert not (run_dir / "wandb").exists()
    assert not list(tmp_path.rglob("*.wandb"))
    assert sorted(p.name for p in run_dir.iterdir()) == ["completions.jsonl", "config.yaml", "metrics.jsonl"]


def test_wandb_mode_env_var_wins_over_argument(tmp_path, quiet_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with RunLogger(tmp_path / "run", {}, wandb_mode="offline") as logger:
        assert logger.wandb_mode == "disabled" and not logger.wandb_active
    assert not any(quiet_wandb.iterdir())


def test_invalid_wandb_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="sometimes"):
        RunLogger(tmp_path / "run", {}, wandb_mode="sometimes")


def test_offline_mode_creates_an_offline_run_directory_and_keeps_local_logs(tmp_path, quiet_wandb):
    run_dir = tmp_path / "run"
    with RunLogger(run_dir, {"seed": 0}, wandb_mode="offline") as logger:
        assert logger.wandb_active
        logger.log({"reward": 0.5}, step=1)
        logger.log_completions(1, [{"prompt": "1+1", "completion": "<answer>2</answer>", "reward": 1.0, "length": 4}])
        logger.summary({"final": {"eval/pass@1": 0.5}})
    offline_runs = [p for p in quiet_wandb.rglob("offline-run-*") if p.is_dir()]
    assert len(offline_runs) == 1
    assert list(offline_runs[0].glob("*.wandb"))
    assert read_jsonl(run_dir / "metrics.jsonl") == [{"step": 1, "reward": 0.5}]
    assert (run_dir / "wandb_run_id").read_text().strip()


def test_config_yaml_round_trips_dataclass_like_values(tmp_path):
    config = {"model": {"name": "tiny", "path": Path("/tmp/x")}, "betas": (0.9, 0.99)}
    RunLogger(tmp_path / "run", config, wandb_mode="disabled").close()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved == {"model": {"name": "tiny", "path": "/tmp/x"}, "betas": [0.9, 0.99]}
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_every_metrics_line_has_a_step(tmp_path):
    write_synthetic_run(tmp_path / "run", steps=4)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


def test_log_converts_numpy_scalars_to_plain_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    with RunLogger(tmp_path / "run", {}, wandb_mode="disabled") as logger:
        logger.log({"reward": np.float32(0.25), "num_tokens": np.int64(7)}, step=np.int64(3))
    assert read_jsonl(tmp_path / "run" / "metrics.jsonl") == [{"step": 3, "reward": 0.25, "num_tokens": 7}]


def test_torn_last_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "reward": 0.1}\n{"step": 2, "reward": 0.2}\n{"step": 3, "rew')
    with pytest.warns(UserWarning, match=r"metrics\.jsonl.*line 3"):
        records = read_jsonl(path)
    assert [r["step"] for r in records] == [1, 2]


def test_corrupt_middle_line_raises_naming_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl: line 2"):
        read_jsonl(path)


def test_load_run_merges_lines_of_the_same_step(tmp_path):
    with RunLogger(tmp_path / "run", {"seed": 1}, wandb_mode="disabled") as logger:
        logger.log({"reward": 0.1}, step=0)
        logger.log({"eval/pass@1": 0.2, "reward": 0.15}, step=0)
        logger.log({"reward": 0.3}, step=2)
        logger.log({"reward": 0.2}, step=1)
    df = load_run(tmp_path / "run")
    assert list(df["step"]) == [0, 1, 2]
    assert df.loc[0, "reward"] == 0.15  # the later line wins
    assert df.loc[0, "eval/pass@1"] == 0.2
    assert pd.isna(df.loc[1, "eval/pass@1"])
    assert df.attrs["config"] == {"seed": 1}
    assert df.attrs["name"] == "run"
    assert df.attrs["run_dir"] == str(tmp_path / "run")


def test_load_run_without_metrics_names_the_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_run(tmp_path / "nowhere")


def test_load_runs_concatenates_runs_with_a_run_column(tmp_path):
    write_synthetic_run(tmp_path / "runs" / "seed0", steps=3)
    write_synthetic_run(tmp_path / "runs" / "seed1", steps=2)
    (tmp_path / "runs" / "not_a_run").mkdir()
    df = load_runs(str(tmp_path / "runs" / "*"))
    assert len(df) == 5
    assert df.groupby("run").size().to_dict() == {"seed0": 3, "seed1": 2}
    assert set(df.attrs["configs"]) == {"seed0", "seed1"}


def test_load_runs_with_no_match_names_the_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        load_runs(str(tmp_path / "nothing_here*"))


def test_truncate_after_drops_later_steps_so_a_resumed_run_has_no_duplicates(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir, steps=5)
    with RunLogger(run_dir, {"seed": 0}, wandb_mode="disabled", resume=True) as logger:
        assert len(read_jsonl(run_dir / "metrics.jsonl")) == 5  # resume keeps the old lines
        logger.truncate_after(3)  # the checkpoint was taken after step 3
        for step in (4, 5, 6):
            logger.log({"reward": 1.0}, step=step)
    df = load_run(run_dir)
    assert list(df["step"]) == [1, 2, 3, 4, 5, 6]
    assert list(df["reward"]) == [0.1, 0.2, 0.3, 1.0, 1.0, 1.0]
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 6


def test_resume_repairs_a_torn_last_line_before_appending(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir, steps=2)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "rew')  # the crash
    with pytest.warns(UserWarning, match="torn"):
        logger = RunLogger(run_dir, {}, wandb_mode="disabled", resume=True)
    logger.log({"reward": 0.3}, step=3)
    logger.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")] == [1, 2, 3]


def test_a_fresh_run_in_an_existing_directory_starts_clean(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir, steps=3)
    with pytest.warns(UserWarning, match="afresh"):
        write_synthetic_run(run_dir, steps=2)
    assert list(load_run(run_dir)["step"]) == [1, 2]


def test_wandb_init_failure_warns_and_local_logging_continues(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")

    def broken_init(*args, **kwargs):
        raise TimeoutError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="wandb.init failed.*no network"):
        logger = RunLogger(tmp_path / "run", {}, wandb_mode="online")
    assert not logger.wandb_active
    logger.log({"reward": 0.4}, step=1)
    logger.log_completions(1, [{"prompt": "p", "completion": "c", "reward": 0.0}])
    logger.close()
    assert load_run(tmp_path / "run")["reward"].tolist() == [0.4]


def test_wandb_init_gets_a_short_timeout(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    seen = {}

    def fake_init(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(wandb, "init", fake_init)
    with pytest.warns(UserWarning):
        RunLogger(tmp_path / "run", {}, wandb_mode="online", wandb_init_timeout=5)
    assert seen["settings"].init_timeout == 5
    assert seen["mode"] == "online"


def test_summary_is_merged_into_summary_json(tmp_path):
    with RunLogger(tmp_path / "run", {}, wandb_mode="disabled") as logger:
        logger.summary({"step0": {"eval/pass@1": 0.1}})
        logger.summary({"final": {"eval/pass@1": 0.4}})
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary == {"step0": {"eval/pass@1": 0.1}, "final": {"eval/pass@1": 0.4}}
    assert load_run(tmp_path / "run").attrs["summary"] == summary


def test_completions_are_logged_with_their_step_and_load_into_pandas(tmp_path):
    rows = [
        {"prompt": "2+2", "completion": "<think>..</think><answer>4</answer>", "reward": 1.0, "length": 9},
        {"prompt": "2+3", "completion": "<answer>6</answer>", "reward": 0.0, "length": 5},
    ]
    with RunLogger(tmp_path / "run", {}, wandb_mode="disabled") as logger:
        logger.log_completions(10, rows)
    df = load_completions(tmp_path / "run")
    assert list(df.columns) == ["step", "prompt", "completion", "reward", "length"]
    assert list(df["step"]) == [10, 10]
    assert df.attrs["name"] == "run"


def test_module_exposes_default_wandb_timeout_shorter_than_wandbs_90s():
    assert tracking.DEFAULT_WANDB_INIT_TIMEOUT < 90
