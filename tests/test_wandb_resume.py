"""wandb survives a crash: a run killed with SIGKILL and resumed (`--resume`) leaves ONE offline wandb
run, with the same run id, that holds every step of metrics.jsonl exactly once, with its exams,
completion tables and watched-question tables. The offline run is read back from wandb's own
transaction log (run-<id>.wandb) with wandb's protobuf classes (grpo_lab.tracking.read_offline_wandb).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grpo_lab.config import Config
from grpo_lab.tracking import offline_wandb_history, offline_wandb_runs, read_jsonl, read_offline_wandb

pytest.importorskip("wandb")

STEPS = 6

TRAIN = """
import sys, time
import torch
from grpo_lab.config import load_config
from grpo_lab.trainer import GRPOTrainer
torch.set_num_threads(1)
cfg = load_config(sys.argv[1])
pause = [lambda trainer, step, metrics: time.sleep(0.3)] if sys.argv[2] == "slow" else []
GRPOTrainer(cfg, run_dir=cfg.run_dir, callbacks=pause).train(resume=sys.argv[3] == "resume")
"""


def config(model_dir: Path, exam: Path, run_dir: Path) -> Config:
    return Config.from_dict({
        "name": "tiny_wandb",
        "model": {"name_or_path": str(model_dir), "dtype": "float32", "device": "cpu", "lora_r": 4, "lora_alpha": 8},
        "grpo": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 12, "lr": 1e-2, "steps": STEPS,
                 "beta": 0.04, "seed": 3},
        "rewards": {"functions": ["coin_flip", "soft_format"], "weights": [1.0, 0.5]},
        "data": {"train": "micro", "template": "micro"},
        "eval": {"exam": str(exam), "k": 2, "every": 2, "max_new_tokens": 12, "watch": [1]},
        "tracking": {"run_dir": str(run_dir), "wandb_mode": "offline", "save_every": 1, "progress": False,
                     "log_completions_every": 1},
    })


def _env(wandb_dir: Path) -> dict[str, str]:
    # No WANDB_* from this process: an earlier in-process wandb run leaves e.g. WANDB_SERVICE set,
    # and a child would then hand its records to that (parent's) service instead of writing its own.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**inherited, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
            "WANDB_DIR": str(wandb_dir), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, abs_tol=1e-9)
    return a == b


def test_sigkill_then_resume_leaves_one_offline_wandb_run_with_every_step_once(tiny_model_dir, tiny_exam, tmp_path):
    run_dir, wandb_dir = tmp_path / "run", tmp_path / "wandb_dir"
    wandb_dir.mkdir()
    config_path = tmp_path / "config.yaml"
    config(tiny_model_dir, tiny_exam, run_dir).to_yaml(config_path)
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(config_path), "slow", "fresh"], env=_env(wandb_dir),
                                stdout=subprocess.DEVNULL, stderr=err)
    kill_step = 3  # after its exam at step 2 and mid-way to the next: lines of step 3 will be redone
    deadline = time.monotonic() + 240
    try:
        while True:
            assert proc.poll() is None, f"training ended early: {stderr.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "training did not reach the kill step in time"
            metrics = run_dir / "metrics.jsonl"
            if metrics.exists() and any(r.get("step", 0) >= kill_step and "reward" in r for r in read_jsonl(metrics)):
                break
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    first = list((wandb_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(first) == 1, "the killed attempt wrote an offline run"

    resumed = subprocess.run([sys.executable, "-c", TRAIN, str(run_dir / "config.yaml"), "fast", "resume"],
                             env=_env(wandb_dir), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # One offline run to sync, the same id; the interrupted attempt is kept but set aside.
    offline = offline_wandb_runs(run_dir, wandb_dir)
    assert len(offline) == 1 and offline[0].name.endswith(run_id) and offline[0] != first[0]
    assert (first[0].parent / ("superseded-" + first[0].name)).is_dir()
    records = read_offline_wandb(offline[0], wait_s=60)  # the service may still be writing
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run_record.run_id == run_id

    # Every step of metrics.jsonl exactly once, with the same values (exams included).
    history = offline_wandb_history(offline[0])
    steps = [row["_step"] for row in history]
    local: dict[int, dict] = {}
    for record in read_jsonl(run_dir / "metrics.jsonl"):
        local.setdefault(record["step"], {}).update(record)
    assert steps == sorted(local) == list(range(STEPS + 1)), steps
    for row in history:
        want = local[row["_step"]]
        for key, value in want.items():
            if key == "step":
                continue
            assert key in row, f"step {row['_step']}: {key} missing from the wandb run"
            assert _same(row[key], value), (row["_step"], key, row[key], value)
    exam_steps = {s for s, r in local.items() if "eval/pass@1" in r}
    assert exam_steps == {0, 2, 4, 6}
    # Tables: completions at every step, the watched question at every exam.
    completions = {r["step"] for r in read_jsonl(run_dir / "completions.jsonl")}
    watched = {r["step"] for r in read_jsonl(run_dir / "watched.jsonl")}
    assert completions == set(range(1, STEPS + 1)) and watched == exam_steps
    for row in history:
        assert ("completions" in row) == (row["_step"] in completions), row["_step"]
        assert ("watched" in row) == (row["_step"] in watched), row["_step"]
        if "watched" in row:
            assert row["watched"]["_type"] == "table-file" and row["watched"]["nrows"] == 2  # k = 2 samples
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "final" in summary


def test_reader_refuses_a_file_that_is_not_a_wandb_log(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not a log at all")
    with pytest.raises(ValueError, match="not a wandb transaction log"):
        read_offline_wandb(path)
