"""Exact resume: a run killed at any moment and resumed equals an uninterrupted run.

"Equal" means: the same metrics lines (timing keys aside; eval lines included; none lost, none
duplicated), the same completions, the same summary numbers and the same adapter weights, within
1e-6, on CPU with the same seed. The runs use the tiny random Qwen2 model with the coin-flip and
soft-format rewards, so that advantages are non-zero and the adapters really move, and so that
the coin-flip RNG must be restored too.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from grpo_lab import cli
from grpo_lab.checkpoint import CheckpointCorrupt, verify_checkpoint
from grpo_lab.config import Config, ConfigError
from grpo_lab.notebook import run_or_load
from grpo_lab.rundir import RunDirectoryBusy
from grpo_lab.tracking import read_jsonl
from grpo_lab.trainer import GRPOTrainer, latest_checkpoint

STEPS = 6
TOL = 1e-6


@pytest.fixture(autouse=True)
def one_thread():
    """Same thread count in every run (and in the subprocess): reductions then add up identically."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def resume_config(model_dir: Path, exam: Path, run_dir: Path, **grpo) -> Config:
    data = {
        "name": "tiny_resume",
        "model": {"name_or_path": str(model_dir), "dtype": "float32", "device": "cpu", "lora_r": 4, "lora_alpha": 8},
        "grpo": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 12, "lr": 1e-2, "steps": STEPS,
                 "beta": 0.04, "seed": 3, **grpo},
        "rewards": {"functions": ["coin_flip", "soft_format"], "weights": [1.0, 0.5]},
        "data": {"train": "micro", "template": "micro"},
        "eval": {"exam": str(exam), "k": 2, "every": 2, "max_new_tokens": 12},
        "tracking": {"run_dir": str(run_dir), "wandb_mode": "disabled", "save_every": 1, "progress": False,
                     "log_completions_every": 1},
    }
    return Config.from_dict(data)


@pytest.fixture(scope="module")
def exam_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exam") / "exam.jsonl"
    rows = [{"question": "1 + 2 + 3 = ?", "answer": "6"}, {"question": "4 + 4 = ?", "answer": "8"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def reference_run(tiny_model_dir, exam_file, tmp_path_factory) -> Path:
    """The uninterrupted run everything is compared with."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir), run_dir=run_dir).train()
    torch.set_num_threads(before)
    return run_dir


# ------------------------------------------------------------------------------------ comparing
def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "step_time" and not k.startswith("time/")} for r in records]


def _same_value(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=0, abs_tol=TOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return a == b


def assert_same_records(got: list[dict], want: list[dict], what: str) -> None:
    got, want = _comparable(got), _comparable(want)
    assert [r["step"] for r in got] == [r["step"] for r in want], f"{what}: steps differ (lost or duplicated lines)"
    for g, w in zip(got, want):
        assert g.keys() == w.keys(), f"{what} step {w['step']}: keys differ: {set(g) ^ set(w)}"
        bad = [k for k in w if not _same_value(g[k], w[k])]
        assert not bad, f"{what} step {w['step']}: {[(k, g[k], w[k]) for k in bad]}"


def assert_same_run(run_dir: Path, reference: Path) -> None:
    assert_same_records(read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(reference / "metrics.jsonl"), "metrics")
    assert_same_records(read_jsonl(run_dir / "completions.jsonl"), read_jsonl(reference / "completions.jsonl"),
                        "completions")
    got, want = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    for key in ("step0", "final", "seed", "steps"):
        assert _same_value(got[key], want[key]), f"summary[{key!r}]: {got[key]} != {want[key]}"
    ckpt, ref_ckpt = latest_checkpoint(run_dir), latest_checkpoint(reference)
    assert ckpt.name == ref_ckpt.name == f"step-{STEPS:06d}"
    got_w, want_w = (load_file(str(c / "adapter_model.safetensors")) for c in (ckpt, ref_ckpt))
    assert got_w.keys() == want_w.keys()
    for name in want_w:
        torch.testing.assert_close(got_w[name], want_w[name], atol=TOL, rtol=0, msg=name)
    # The adapters did move: the comparison above is not between two untouched initialisations.
    assert any(float(w.abs().max()) > 0 for n, w in want_w.items() if "lora_B" in n)


# ------------------------------------------------------------------------------------ the tests
# What `grpo-lab train --config CONFIG` does, plus a pause after each logged step so that the
# parent reliably catches the run mid-way even on a loaded machine (the pause changes no number).
TRAIN_SCRIPT = """
import sys, time
import torch
from grpo_lab.config import load_config
from grpo_lab.trainer import GRPOTrainer
torch.set_num_threads(1)
cfg = load_config(sys.argv[1])
GRPOTrainer(cfg, run_dir=cfg.run_dir, callbacks=[lambda trainer, step, metrics: time.sleep(0.2)]).train()
"""


def test_sigkill_at_a_random_step_then_resume_equals_an_uninterrupted_run(
    tiny_model_dir, exam_file, reference_run, tmp_path
):
    """The real thing: training in a subprocess, SIGKILL once the log reaches a random step (plus a
    random fraction of a step, so the kill lands anywhere in the loop: logging, the exam, a
    checkpoint half-written, the next rollout), then `GRPOTrainer(cfg, run_dir).train(resume=True)`
    with the config the run directory holds (what `grpo-lab train --resume RUN_DIR` reads)."""
    rng = random.Random(20260101)
    kill_step = rng.randint(1, STEPS - 1)
    extra_delay = rng.uniform(0.0, 0.3)
    run_dir = tmp_path / "run"
    config_path = tmp_path / "config.yaml"
    resume_config(tiny_model_dir, exam_file, run_dir).to_yaml(config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "TQDM_DISABLE": "1"}
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(config_path)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, f"training ended before step {kill_step}: {stderr.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "training did not reach the kill step in time"
            if metrics.exists():
                steps = [r["step"] for r in read_jsonl(metrics) if "reward" in r]
                if steps and max(steps) >= kill_step:
                    break
            time.sleep(0.005)
        time.sleep(extra_delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the process finished before it could be killed"
    assert not (run_dir / "summary.json").exists() or "final" not in json.loads((run_dir / "summary.json").read_text())

    cfg = Config.from_yaml(run_dir / "config.yaml")  # what `grpo-lab train --resume` reads
    GRPOTrainer(cfg, run_dir=run_dir).train(resume=True)
    assert_same_run(run_dir, reference_run)


class Crash(RuntimeError):
    pass


def _crash_at(hook: str, step: int):
    from grpo_lab.trainer import Callback

    class Crasher(Callback):
        def on_step_end(self, trainer, s, metrics):
            if hook == "step" and s == step:
                raise Crash(f"simulated crash after logging step {s}")

        def on_evaluate(self, trainer, s, result):
            if hook == "evaluate" and s == step:
                raise Crash(f"simulated crash after the exam of step {s}")

    return Crasher()


@pytest.mark.parametrize(
    "hook, step",
    [
        ("evaluate", 0),  # exam of step 0 logged, no checkpoint yet: the run restarts from step 0
        ("step", 1),      # step 1 logged, checkpoint 0 only: the step-0 exam must not be redone
        ("step", 4),      # the exam of step 4 and checkpoint 4 not written yet; a torn last line
        ("evaluate", 4),  # exam of step 4 logged, checkpoint 4 not written: redone exactly once
        ("evaluate", STEPS),  # final checkpoint written, final exam logged, summary not: redone once
    ],
)
def test_crash_anywhere_then_resume_equals_an_uninterrupted_run(
    tiny_model_dir, exam_file, reference_run, tmp_path, hook, step
):
    run_dir = tmp_path / "run"
    cfg = resume_config(tiny_model_dir, exam_file, run_dir)
    with pytest.raises(Crash) as info:
        GRPOTrainer(cfg, run_dir=run_dir, callbacks=[_crash_at(hook, step)]).train()
    assert "run log and the checkpoints" in "\n".join(getattr(info.value, "__notes__", []))
    if (hook, step) == ("step", 4):  # and the process died while writing the next line
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write('{"step": 5, "reward": 0.2, "rewa')

    resumed = GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir), run_dir=run_dir)
    evaluated = []
    original = resumed.evaluate
    resumed.evaluate = lambda s=None: (evaluated.append(resumed.step if s is None else s), original(s))[1]
    if hook == "evaluate" and step == 0:
        with pytest.warns(UserWarning, match="no checkpoint"):
            resumed.train(resume=True)
    else:
        resumed.train(resume=True)
    assert_same_run(run_dir, reference_run)
    # Exams that had finished before the checkpoint are not redone.
    done_before = {0} if (hook, step) != ("evaluate", 0) else set()
    assert not done_before & set(evaluated), evaluated
    assert len(evaluated) == len(set(evaluated))


def test_cli_resume_continues_a_run_and_can_extend_it(tiny_model_dir, exam_file, reference_run, tmp_path):
    """`grpo-lab train --resume RUN_DIR` (in-process): a finished 4-step run extended to 6 steps
    with --set equals a 6-step run, except that both exams at step 4 count once.

    The 4-step run is also the first 4 steps of the 6-step one: nothing in a step depends on the
    run's length (the lr schedule is a warm-up, not a decay to the last step). So a shortened demo
    (`--set grpo.steps=300`) is the first 300 steps of the 500-step recipe and of its reference band."""
    run_dir = tmp_path / "run"
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=4), run_dir=run_dir).train()
    reference = read_jsonl(reference_run / "metrics.jsonl")
    assert_same_records(read_jsonl(run_dir / "metrics.jsonl"), [r for r in reference if r["step"] <= 4],
                        "the 4-step run against the 6-step run's first 4 steps")
    assert cli.main(["train", "--resume", str(run_dir), "--set", f"grpo.steps={STEPS}"]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["grpo"]["steps"] == STEPS
    lines = read_jsonl(run_dir / "metrics.jsonl")
    eval_steps = [r["step"] for r in lines if "eval/pass@1" in r]
    assert eval_steps == [0, 2, 4, 6]  # step 4's final exam of the short run is not duplicated
    assert [r["step"] for r in lines if "reward" in r] == list(range(1, STEPS + 1))
    assert_same_records(lines, reference, "the extended run against the 6-step run")
    assert (run_dir / "report.md").exists()


def test_cli_resume_of_a_directory_without_config_names_it(tmp_path, capsys):
    assert cli.main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "config.yaml" in err


def test_fresh_run_sets_an_earlier_runs_checkpoints_aside(tiny_model_dir, exam_file, tmp_path):
    """Without resume, old checkpoints must not be picked up by a later resume of the new run."""
    run_dir = tmp_path / "run"
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=3), run_dir=run_dir).train()
    cfg = resume_config(tiny_model_dir, exam_file, run_dir, steps=1)
    with pytest.warns(UserWarning, match="starts afresh"):
        GRPOTrainer(cfg, run_dir=run_dir).train()
    assert latest_checkpoint(run_dir).name == "step-000001"
    (previous,) = (run_dir / "previous").iterdir()
    assert (previous / "checkpoints" / "step-000003").exists()


# ------------------------------------------------------------------ what a resume may change (#19.1)
def finished_run(tiny_model_dir, exam_file, tmp_path, steps=4) -> Path:
    run_dir = tmp_path / "run"
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=steps), run_dir=run_dir).train()
    return run_dir


def test_resume_refuses_a_changed_learning_rate_and_records_nothing(tiny_model_dir, exam_file, tmp_path, capsys):
    """Before: config.yaml said lr 0.05 while steps 13-14 trained at the checkpoint's old rate."""
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path)
    config_before = (run_dir / "config.yaml").read_text()
    metrics_before = (run_dir / "metrics.jsonl").read_text()
    assert cli.main(["train", "--resume", str(run_dir), "--set", "grpo.lr=0.05", "--set", "grpo.steps=6"]) == 2
    err = capsys.readouterr().err
    assert "a resume cannot change grpo.lr" in err and "0.01" in err and "0.05" in err
    assert (run_dir / "config.yaml").read_text() == config_before
    assert (run_dir / "metrics.jsonl").read_text() == metrics_before


@pytest.mark.parametrize("key, value", [("seed", 7), ("beta", 0.0), ("group_size", 2)])
def test_resume_through_the_api_refuses_a_changed_setting_naming_it(tiny_model_dir, exam_file, tmp_path, key, value):
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path, steps=2)
    cfg = resume_config(tiny_model_dir, exam_file, run_dir, steps=4, **{key: value})
    with pytest.raises(ConfigError, match=f"a resume cannot change grpo.{key}"):
        GRPOTrainer(cfg, run_dir=run_dir).train(resume=True)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["grpo"]["steps"] == 2


def test_resume_refuses_fewer_steps_than_the_checkpoint(tiny_model_dir, exam_file, tmp_path, capsys):
    """Before: resuming a step-4 checkpoint with grpo.steps=2 ended at step 4 while config.yaml said 2."""
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path)
    assert cli.main(["train", "--resume", str(run_dir), "--set", "grpo.steps=2"]) == 2
    err = capsys.readouterr().err
    assert "grpo.steps = 2 is below the step of the checkpoint being resumed (step-000004, step 4)" in err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["grpo"]["steps"] == 4


def test_resume_with_a_config_file_is_refused(tiny_model_dir, exam_file, tmp_path, capsys):
    """Before: --resume RUN --config X silently ignored X."""
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path, steps=2)
    other = tmp_path / "x.yaml"
    other.write_text("grpo:\n  lr: 0.3\n")
    assert cli.main(["train", "--resume", str(run_dir), "--config", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"--config {other} cannot be combined with --resume" in err


def test_resume_may_change_steps_and_tracking_only(tiny_model_dir, exam_file, tmp_path):
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path, steps=2)
    cfg = resume_config(tiny_model_dir, exam_file, run_dir, steps=3)
    cfg.tracking.wandb_project = "elsewhere"
    GRPOTrainer(cfg, run_dir=run_dir).train(resume=True)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["grpo"]["steps"] == 3 and saved["tracking"]["wandb_project"] == "elsewhere"
    assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r] == [1, 2, 3]



def test_a_run_resumed_on_other_kernels_keeps_its_first_machine_and_names_the_second(
    tiny_model_dir, exam_file, tmp_path, monkeypatch
):
    # Bitwise equality needs one kernel level; a run resumed elsewhere mixes two, and its summary says so.
    import grpo_lab.trainer as trainer_module

    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path, steps=2)
    first = json.loads((run_dir / "summary.json").read_text())["machine"]
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=3), run_dir=run_dir).train(resume=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["machine"] == first and "machine_on_resume" not in summary  # same machine: one record
    other = {**first, "torch_cpu_kernels": "AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)"}
    monkeypatch.setattr(trainer_module, "machine_record", lambda device: other)
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=4), run_dir=run_dir).train(resume=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["machine"] == first and summary["machine_on_resume"] == other

# ------------------------------------------------------------------ a fresh run in a used directory (#19.2)
def test_a_fresh_run_killed_early_in_a_finished_runs_directory_destroys_nothing(tiny_model_dir, exam_file, tmp_path):
    """Before: the old run log was cut to the new run's first lines under the old summary, and
    run_or_load returned that partial run as finished."""
    run_dir = finished_run(tiny_model_dir, exam_file, tmp_path, steps=3)
    old = {name: (run_dir / name).read_text() for name in ("metrics.jsonl", "completions.jsonl", "summary.json",
                                                           "config.yaml")}
    with pytest.raises(Crash), pytest.warns(UserWarning, match="starts afresh"):
        GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=3), run_dir=run_dir,
                    callbacks=[_crash_at("step", 1)]).train()
    (previous,) = (run_dir / "previous").iterdir()
    for name, text in old.items():  # the finished run, whole, in one place
        assert (previous / name).read_text() == text, name
    assert (previous / "checkpoints" / "step-000003").exists() and (previous / "eval").is_dir()
    # What is left in the run directory describes the new run only.
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "final" not in summary and "steps" not in summary
    assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r] == [1]
    assert latest_checkpoint(run_dir).name == "step-000000"
    # So run_or_load does not take it for a finished run: it trains.
    df = run_or_load(resume_config(tiny_model_dir, exam_file, run_dir, steps=1), run_dir=run_dir)
    assert [s for s in df["step"] if s > 0] == [1] and df.attrs["summary"]["steps"] == 1


# ------------------------------------------------------------------ one writer per run directory (#19.3)
HOLD_LOCK = """
import sys, time
from grpo_lab.rundir import RunDirectoryLock
RunDirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_trainer_in_a_locked_directory_stops_at_once_and_a_killed_holder_frees_it(
    tiny_model_dir, exam_file, tmp_path, capsys
):
    """Before: two trains 0.5 s apart wrote duplicate lines and one died on the other's temporary checkpoint."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = resume_config(tiny_model_dir, exam_file, run_dir, steps=1)
        with pytest.raises(RunDirectoryBusy) as info:
            GRPOTrainer(cfg, run_dir=run_dir).train()
        assert str(run_dir) in str(info.value) and f"process {holder.pid}" in str(info.value)
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # nothing written
        config_path = tmp_path / "c.yaml"
        cfg.to_yaml(config_path)
        start = time.monotonic()
        assert cli.main(["train", "--config", str(config_path)]) == 2
        assert time.monotonic() - start < 5  # stops before the model is loaded
        assert f"is in use by process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # A crashed holder leaves no stuck lock: the kernel released it.
    GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir, steps=1), run_dir=run_dir).train()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 1


# ------------------------------------------------------------------ damaged checkpoints (#19.4)
@pytest.mark.parametrize("damage", ["adapter_model.safetensors", "optimizer.pt", "rng_state.pt", "trainer_state.json",
                                    "missing optimizer.pt", "flipped byte"])
def test_a_damaged_newest_checkpoint_is_skipped_and_resume_still_equals_an_uninterrupted_run(
    exam_file, reference_run, tiny_model_dir, tmp_path, damage
):
    """Before: a traceback (or "Expecting value") naming no file, and the intact checkpoint before it never tried."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference_run, run_dir)
    newest = run_dir / "checkpoints" / f"step-{STEPS:06d}"
    if damage == "missing optimizer.pt":
        (newest / "optimizer.pt").unlink()
        culprit = "optimizer.pt"
    elif damage == "flipped byte":
        data = bytearray((newest / "adapter_model.safetensors").read_bytes())
        data[-1] ^= 0xFF
        (newest / "adapter_model.safetensors").write_bytes(bytes(data))
        culprit = "adapter_model.safetensors"
    else:
        data = (newest / damage).read_bytes()
        (newest / damage).write_bytes(data[: len(data) // 2])
        culprit = damage
    with pytest.warns(UserWarning) as caught:
        GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir), run_dir=run_dir).train(resume=True)
    messages = [str(w.message) for w in caught]
    assert any(f"skipping checkpoint step-{STEPS:06d}" in m and culprit in m for m in messages), messages
    assert any(f"resuming from {run_dir / 'checkpoints' / f'step-{STEPS - 1:06d}'}" in m for m in messages), messages
    assert_same_run(run_dir, reference_run)


def test_when_no_checkpoint_is_intact_resume_stops_naming_each_and_changes_nothing(
    exam_file, reference_run, tiny_model_dir, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(reference_run, run_dir)
    for checkpoint in (run_dir / "checkpoints").glob("step-*"):
        (checkpoint / "trainer_state.json").write_text("{")
    metrics = (run_dir / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointCorrupt) as info, pytest.warns(UserWarning, match="skipping checkpoint"):
        GRPOTrainer(resume_config(tiny_model_dir, exam_file, run_dir), run_dir=run_dir).train(resume=True)
    msg = str(info.value)
    assert "none of the 2 checkpoints" in msg and msg.count("trainer_state.json") == 2
    assert (run_dir / "metrics.jsonl").read_text() == metrics


def test_checkpoints_carry_a_manifest_that_verifies(reference_run):
    for checkpoint in (reference_run / "checkpoints").glob("step-*"):
        manifest = json.loads((checkpoint / "manifest.json").read_text())
        assert set(manifest["files"]) == {p.name for p in checkpoint.iterdir()} - {"manifest.json"}
        verify_checkpoint(checkpoint)


def test_checkpoint_holds_every_rng_and_loads_with_weights_only(reference_run):
    ckpt = latest_checkpoint(reference_run)
    state = json.loads((ckpt / "trainer_state.json").read_text())
    for key in ("step", "num_tokens", "python_random", "numpy_random", "reward_states", "prompts",
                "nonfinite_in_a_row", "nonfinite_total", "eval_metrics"):
        assert key in state, key
    rng = torch.load(ckpt / "rng_state.pt", weights_only=True)
    assert {"scheduler", "torch", "generator"} <= set(rng)
    torch.load(ckpt / "optimizer.pt", weights_only=True)
    assert not list(ckpt.glob("*.bin")) and (ckpt / "adapter_model.safetensors").exists()
    assert not list((reference_run / "checkpoints").glob(".tmp-*"))
