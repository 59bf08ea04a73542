"""Reliability: the numerical guard, failures mid-run, atomic writes, wandb never blocking,
security of loading and grading, and fuzzing of the text functions.

Exact resume after a SIGKILL is in tests/test_resume.py; bad inputs in tests/test_bad_input.py.
"""

from __future__ import annotations

import ast
import json
import math
import os
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

import grpo_lab
import grpo_lab.trainer as trainer_module
from grpo_lab.phenomena import LEXICONS, count_reflections, find_aha_examples
from grpo_lab.rewards import (
    RewardFunctionError,
    accuracy_reward,
    compute_rewards,
    extract_answer,
    format_reward,
    grade_answer,
    is_correct,
    soft_format_reward,
)
from grpo_lab.tracking import RunLogger, load_run, read_jsonl
from grpo_lab.trainer import GRPOTrainer, TrainingStopped, latest_checkpoint
from tests.conftest import tiny_config

PACKAGE = Path(grpo_lab.__file__).parent


def digit_reward(prompts, completions, **kwargs):
    """Differs between a random model's completions, so advantages (and updates) are non-zero."""
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def lora_weights(trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


def make_trainer(tiny_model_dir, tiny_exam, run_dir, reward_funcs=None, **grpo):
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, **grpo)
    cfg.tracking.save_every = 1
    return GRPOTrainer(cfg, run_dir=run_dir, reward_funcs=reward_funcs or [digit_reward])


# ------------------------------------------------------------------------------ numerical guard
def poison_loss(monkeypatch, bad_calls: set[int], where: str = "loss") -> list[int]:
    """Make grpo_loss return a NaN loss (or a finite loss with NaN gradients) on the given calls."""
    calls = []
    real = trainer_module.grpo_loss

    class NaNGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")

    def loss_fn(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        calls.append(len(calls) + 1)
        if len(calls) in bad_calls:
            loss = loss * float("nan") if where == "loss" else NaNGradient.apply(loss)
        return loss, stats

    monkeypatch.setattr(trainer_module, "grpo_loss", loss_fn)
    return calls


def test_nan_steps_in_a_row_stop_training_with_the_last_good_checkpoint_intact(
    tiny_model_dir, tiny_exam, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=6, max_nonfinite_steps=2)
    poison_loss(monkeypatch, bad_calls={3, 4, 5, 6})  # one loss call per step: steps 3.. are NaN
    after_step_2 = {}
    trainer.callbacks.append(trainer_module._FunctionCallback(
        lambda t, step, m: after_step_2.update(lora_weights(t)) if step == 2 else None))
    with pytest.raises(TrainingStopped) as info:
        trainer.train()
    msg = str(info.value)
    assert "2 steps in a row (up to step 4)" in msg and "grpo.max_nonfinite_steps = 2" in msg
    assert "step-000002" in msg and "is intact" in msg

    # The skipped steps changed nothing, and were not checkpointed.
    assert latest_checkpoint(run_dir).name == "step-000002"
    now = lora_weights(trainer)
    for name, before in after_step_2.items():
        assert torch.equal(now[name], before), name
    saved = load_file(str(run_dir / "checkpoints" / "step-000002" / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in saved.values())

    # Counted and logged, and the reason is in summary.json.
    lines = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["nonfinite_skipped"] for r in lines] == [0.0, 0.0, 1.0, 1.0]
    assert [r["nonfinite_total"] for r in lines] == [0.0, 0.0, 1.0, 2.0]
    assert math.isnan(lines[2]["loss"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"]["step"] == 4 and "NaN/inf" in summary["stopped"]["reason"]
    assert "step0" in summary and "final" not in summary

    # Once the cause is fixed, the run resumes from the last good checkpoint and finishes.
    monkeypatch.undo()
    make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=6, max_nonfinite_steps=2).train(resume=True)
    lines = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert [r["nonfinite_skipped"] for r in lines] == [0.0] * 6
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] is None and "final" in summary


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_a_single_nonfinite_step_is_skipped_and_training_goes_on(tiny_model_dir, tiny_exam, tmp_path, monkeypatch, where):
    run_dir = tmp_path / "run"
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=3)
    trainer.config.eval.at_start = False
    poison_loss(monkeypatch, bad_calls={2}, where=where)
    snapshots = {}
    trainer.callbacks.append(trainer_module._FunctionCallback(lambda t, step, m: snapshots.update({step: lora_weights(t)})))
    df = trainer.train()
    assert df["nonfinite_skipped"].tolist() == [0.0, 1.0, 0.0]
    assert not math.isfinite(df["grad_norm"][1])
    for name in snapshots[1]:
        assert torch.equal(snapshots[1][name], snapshots[2][name]), "a skipped step must not move the weights"
    assert any(not torch.equal(snapshots[2][n], snapshots[3][n]) for n in snapshots[2] if "lora_B" in n)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert trainer.nonfinite_in_a_row == 0 and trainer.nonfinite_total == 1
    assert latest_checkpoint(run_dir).name == "step-000003"


# ------------------------------------------------------------------------------ failures mid-run
def _raises(prompts, completions, **kw):
    raise ZeroDivisionError("boom")


def _wrong_length(prompts, completions, **kw):
    return [0.0] * (len(completions) - 1)


def _nan(prompts, completions, **kw):
    return [float("nan")] + [0.0] * (len(completions) - 1)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (_raises, "reward function '_raises' raised ZeroDivisionError on completion index 0: boom"),
        (_wrong_length, "reward function '_wrong_length' returned the wrong number of rewards: expected 8, got 7"),
        (_nan, "reward function '_nan' returned nan (not finite) at completion index 0"),
    ],
)
def test_reward_function_failure_mid_run_is_surfaced_and_nothing_is_lost(
    tiny_model_dir, tiny_exam, tmp_path, bad, fragment
):
    run_dir = tmp_path / "run"
    calls = []

    def flaky(prompts, completions, **kw):  # fine for two steps, then misbehaves
        calls.append(1)
        return digit_reward(prompts, completions) if len(calls) <= 2 else bad(prompts, completions, **kw)

    flaky.__name__ = bad.__name__
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, reward_funcs=[flaky], steps=4)
    with pytest.raises(RewardFunctionError) as info:
        trainer.train()
    assert fragment in str(info.value)
    assert "after step 2 of 4 had completed" in "\n".join(info.value.__notes__)
    df = load_run(run_dir)
    assert list(df["step"]) == [0, 1, 2] and "step0" in df.attrs["summary"]
    assert latest_checkpoint(run_dir).name == "step-000002"
    assert [r["step"] for r in read_jsonl(run_dir / "completions.jsonl")][-1] == 2


# ------------------------------------------------------------------------------ atomic writes
def test_a_crash_while_saving_a_checkpoint_leaves_the_previous_one_intact(tiny_model_dir, tiny_exam, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=3)
    real_save = torch.save

    def failing_save(obj, path, *args, **kwargs):
        if "step-000002" in str(path):
            raise OSError("disk full")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(trainer_module.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.train()
    assert (run_dir / "checkpoints" / ".tmp-step-000002").exists()  # the half-written one...
    assert latest_checkpoint(run_dir).name == "step-000001"  # ...is ignored
    monkeypatch.undo()
    make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=3).train(resume=True)
    assert latest_checkpoint(run_dir).name == "step-000003"
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))
    assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r] == [1, 2, 3]


def test_resaving_a_step_replaces_it_whole(tiny_model_dir, tiny_exam, tmp_path):
    run_dir = tmp_path / "run"
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=0)
    first = trainer.save_checkpoint()
    (first / "marker").write_text("old")
    again = trainer.save_checkpoint()
    assert again == first and not (again / "marker").exists()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000000"]


def test_every_metrics_line_is_on_disk_as_soon_as_log_returns(tmp_path):
    with RunLogger(tmp_path / "run", {}, wandb_mode="disabled") as logger:
        for step in (1, 2, 3):
            logger.log({"reward": step / 10}, step=step)
            # Another reader (a notebook, a crash) sees the whole line immediately.
            assert read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1] == {"step": step, "reward": step / 10}


def test_load_run_skips_a_torn_last_line_with_a_warning(tmp_path):
    with RunLogger(tmp_path / "run", {}, wandb_mode="disabled") as logger:
        logger.log({"reward": 0.1}, step=1)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "reward": 0.')
    with pytest.warns(UserWarning, match=r"metrics.jsonl: skipping torn last line 2"):
        df = load_run(tmp_path / "run")
    assert list(df["step"]) == [1]


# ------------------------------------------------------------------------------ wandb
def test_wandb_init_that_hangs_falls_back_to_local_logging_within_the_timeout(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # conftest disables wandb; this test needs it on
    release = threading.Event()

    def hanging_init(*args, **kwargs):
        release.wait(60)  # a network call that never answers (wandb's own timeout ignored)
        raise RuntimeError("released")

    monkeypatch.setattr(wandb, "init", hanging_init)
    try:
        start = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logger = RunLogger(tmp_path / "run", {"seed": 0}, wandb_mode="online", wandb_init_timeout=0.5)
            for step in (1, 2, 3):
                logger.log({"reward": 0.5}, step=step)
            logger.log_completions(3, [{"prompt": "p", "completion": "c"}])
            logger.summary({"final": {"pass@1": 0.5}})
            logger.close()
        elapsed = time.monotonic() - start
    finally:
        release.set()
    assert elapsed < 10, f"RunLogger waited {elapsed:.1f} s on wandb.init"
    wandb_warnings = [w for w in caught if "wandb" in str(w.message)]
    assert len(wandb_warnings) == 1 and "did not return within" in str(wandb_warnings[0].message)
    assert "logging to" in str(wandb_warnings[0].message)
    assert not logger.wandb_active
    assert load_run(tmp_path / "run")["step"].tolist() == [1, 2, 3]


def test_training_goes_on_when_wandb_init_fails(tiny_model_dir, tiny_exam, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)

    def broken_init(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=1)
    cfg.tracking.wandb_mode = "online"
    cfg.eval.at_start = False
    with pytest.warns(UserWarning, match="wandb.init failed.*no network"):
        df = GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    assert list(df["step"]) == [1]


# ------------------------------------------------------------------------------ security
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_every_torch_load_in_the_package_uses_weights_only():
    """torch.load unpickles: only weights_only=True keeps a checkpoint from running code."""
    offenders, found = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _calls(tree):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name != "load" or not (isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "torch"):
                continue
            found += 1
            ok = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                     for k in call.keywords)
            if not ok:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}")
    assert found >= 2  # the trainer's optimizer and RNG states
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


def test_the_package_never_evals_or_execs_text_nor_unpickles():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _calls(tree):
            func = call.func
            if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile"):
                offenders.append(f"{path.name}:{call.lineno} {func.id}()")
            if isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "pickle":
                offenders.append(f"{path.name}:{call.lineno} pickle.{func.attr}()")
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                value = node.value
                assert not (isinstance(value, ast.Constant) and value.value is True), f"{path.name}: trust_remote_code=True"
    assert not offenders, offenders


def test_grading_does_not_run_code_in_the_answer(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"exec(\"open('{marker}', 'w')\")",
        f"\\boxed{{__import__('pathlib').Path('{marker}').touch()}}",
        "(lambda: [].__class__.__base__.__subclasses__())()",
    ]
    completions = [f"<think>x</think><answer>{p}</answer>" for p in payloads]
    assert accuracy_reward([""] * len(payloads), completions, answer=["42"] * len(payloads)) == [0.0] * len(payloads)
    assert not marker.exists()


def test_grading_has_a_time_limit_per_answer():
    start = time.monotonic()
    assert grade_answer("9^{9^{9^{9^{9}}}}", "1") is False
    assert grade_answer("x" * 5000, "1") is False  # over MAX_ANSWER_CHARS: not even parsed
    assert time.monotonic() - start < 15


# ------------------------------------------------------------------------------ fuzzing
TAGGY = st.lists(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "\\", " ", "\n",
                     "42", "wait", ", ", "Wait,", "recheck", "$", "\\frac{1}{2}", "-", "."])
    | st.text(max_size=8),
    max_size=40,
).map("".join)
FUZZ = settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(TAGGY, st.sampled_from(["42", "-3", r"\frac{1}{2}", "x+1"]))
def test_fuzz_whole_completions_grade_without_error(text, gold):
    assert is_correct(text, gold) in (True, False)
    assert accuracy_reward(["p"], [text], answer=[gold]) in ([0.0], [1.0])


@FUZZ
@given(TAGGY)
def test_fuzz_extraction_format_and_reflection_agree(text):
    answer = extract_answer(text)
    if format_reward([""], [text]) == [1.0]:
        assert soft_format_reward([""], [text]) == [1.0]
        assert answer is None or answer in text
    for lexicon in LEXICONS:
        assert count_reflections(text, lexicon) >= 0


@FUZZ
@given(st.lists(TAGGY, min_size=1, max_size=6), st.data())
def test_fuzz_find_aha_examples_never_raises(texts, data):
    correct = data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts)))
    assert len(find_aha_examples(texts, correct, max_examples=2)) <= 2


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 20_000 + "1" + "</answer>" * 20_000,
        "<answer>" + "\\boxed{" * 30_000 + "</answer>",
        "<think>" + "wait, " * 30_000 + "</think><answer>3</answer>",
        "{" * 50_000 + "}" * 50_000,
        "re-evaluate recheck " * 10_000,
    ],
)
def test_pathological_long_inputs_take_bounded_time(text):
    start = time.monotonic()
    extract_answer(text)
    format_reward([""], [text])
    soft_format_reward([""], [text])
    for lexicon in LEXICONS:
        count_reflections(text, lexicon)
    is_correct(text, "3")
    assert time.monotonic() - start < 10


# ------------------------------------------------------------------------------ issue 19: hostile use
def test_weights_made_nonfinite_by_a_step_stop_training_and_are_never_saved(tiny_model_dir, tiny_exam, tmp_path):
    """Before: grpo.lr=.inf passed the NaN guard; step 1 saved an all-NaN adapter, then sampling crashed."""
    run_dir = tmp_path / "run"
    trainer = make_trainer(tiny_model_dir, tiny_exam, run_dir, steps=3)
    real_step = trainer.optimizer.step

    def exploding_step(*args, **kwargs):  # what an infinite learning rate does to the weights
        real_step(*args, **kwargs)
        if trainer.step == 1:  # the update of step 2
            with torch.no_grad():
                for p in trainer.optimizer.param_groups[0]["params"]:
                    p.fill_(float("inf"))

    trainer.optimizer.step = exploding_step
    with pytest.raises(TrainingStopped) as info:
        trainer.train()
    assert "step 2 made trainable weights NaN/inf" in str(info.value) and "step-000001" in str(info.value)
    assert latest_checkpoint(run_dir).name == "step-000001"
    assert not (run_dir / "checkpoints" / "step-000002").exists()
    saved = load_file(str(run_dir / "checkpoints" / "step-000001" / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in saved.values())
    assert json.loads((run_dir / "summary.json").read_text())["stopped"]["step"] == 1


def test_save_checkpoint_refuses_nonfinite_weights(tiny_model_dir, tiny_exam, tmp_path):
    trainer = make_trainer(tiny_model_dir, tiny_exam, tmp_path / "run", steps=0)
    with torch.no_grad():
        next(p for n, p in trainer.model.named_parameters() if "lora_" in n).fill_(float("nan"))
    with pytest.raises(TrainingStopped, match="NaN/inf"):
        trainer.save_checkpoint()
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*"))


def _returns(value):
    def reward(prompts, completions, **kw):
        return value(len(completions))
    return reward


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda n: {0.5: 1.0, 0.7: 2.0}, "returned dict, expected a list of 2 floats"),
        (lambda n: ["1.0"] * n, "returned '1.0' (str, not a real number) at completion index 0"),
        (lambda n: [True] * n, "returned True (bool, not a real number) at completion index 0"),
        (lambda n: [0.0, 1e39][:n], "returned 1e+39 at completion index 1, beyond the float32 range"),
        (lambda n: "10", "returned str, expected a list of 2 floats"),
    ],
    ids=["dict", "strings", "bools", "1e39", "a string"],
)
def test_rewards_must_be_real_numbers_in_float32_range(make, fragment):
    """Before: a dict's keys, "1.0", True and 1e39 (inf in float32) were all accepted as rewards."""
    bad = _returns(make)
    bad.__name__ = "bad_reward"
    with pytest.raises(RewardFunctionError) as info:
        compute_rewards([bad], None, ["p", "q"], ["a", "b"])
    assert "reward function 'bad_reward'" in str(info.value) and fragment in str(info.value)


def test_numpy_and_torch_rewards_are_still_accepted():
    import numpy as np

    for value in (np.array([0.5, 1.0]), torch.tensor([0.5, 1.0]), [np.float32(0.5), np.int64(1)], [0, 1.0]):
        total, _ = compute_rewards([_returns(lambda n, v=value: v)], None, ["p", "q"], ["a", "b"])
        assert total.tolist() == [0.5, 1.0] or total.tolist() == [0.0, 1.0]


def test_two_reward_functions_with_one_name_fail_when_the_trainer_is_built(tiny_model_dir, tiny_exam, tmp_path):
    """Before: the clash was found only after the step-0 exam."""
    def make():
        def r(prompts, completions, **kw):
            return [0.0] * len(completions)
        return r

    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")
    with pytest.raises(ValueError, match=r"reward function names must be unique; duplicated: \['r'\]"):
        GRPOTrainer(cfg, run_dir=tmp_path / "run", reward_funcs=[make(), make()])
    assert not (tmp_path / "run").exists()


class _HangingRun:
    """A wandb run whose log() / summary.update() / finish() never return (a hung service)."""

    id = "hang"

    def __init__(self, hang: str, release: threading.Event):
        self.hang, self.release, self.calls = hang, release, []

        class Summary:
            @staticmethod
            def update(d):
                self.calls.append("summary")
                if hang == "summary":
                    release.wait(60)

        self.summary = Summary()

    def log(self, *args, **kwargs):
        self.calls.append("log")
        if self.hang == "log":
            self.release.wait(60)

    def finish(self):
        self.calls.append("finish")
        if self.hang == "finish":
            self.release.wait(60)


@pytest.mark.parametrize("hang", ["log", "summary", "finish"])
def test_a_wandb_call_that_hangs_is_abandoned_with_one_warning_and_logging_goes_on(tmp_path, hang):
    """Before: only wandb.init had a time limit; a hung run.log() or run.finish() blocked forever."""
    release = threading.Event()
    logger = RunLogger(tmp_path / "run", {}, wandb_mode="disabled", wandb_call_timeout=0.3)
    logger._wandb_run = run = _HangingRun(hang, release)
    try:
        start = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step in (1, 2, 3):
                logger.log({"reward": step / 10}, step=step)
            logger.summary({"final": {"pass@1": 0.5}})
            logger.close()
        elapsed = time.monotonic() - start
    finally:
        release.set()
    assert elapsed < 5, f"blocked {elapsed:.1f} s on a hung wandb call"
    wandb_warnings = [str(w.message) for w in caught if "wandb" in str(w.message)]
    assert len(wandb_warnings) == 1 and "did not return within 0.3 s" in wandb_warnings[0], wandb_warnings
    assert run.calls.count(hang if hang != "summary" else "summary") == 1  # abandoned after the first time-out
    assert not logger.wandb_active
    assert load_run(tmp_path / "run")["step"].tolist() == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["final"] == {"pass@1": 0.5}


def test_wandb_timeout_is_a_config_key_passed_to_the_logger(tiny_model_dir, tiny_exam, tmp_path, monkeypatch):
    seen = {}
    real = trainer_module.RunLogger

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "RunLogger", spy)
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=0)
    cfg.tracking.wandb_timeout = 2.5
    cfg.eval.at_start = False
    GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    assert seen["wandb_call_timeout"] == 2.5 and seen["wandb_init_timeout"] == 2.5


def test_a_checkpoint_without_manifest_is_checked_for_its_files(tmp_path):
    """Checkpoints written before manifests existed: required files and a readable trainer_state.json."""
    from grpo_lab.checkpoint import CheckpointCorrupt, find_valid_checkpoint, verify_checkpoint

    older, newer = (tmp_path / "checkpoints" / f"step-00000{i}" for i in (1, 2))
    for ckpt in (older, newer):
        ckpt.mkdir(parents=True)
        for name in ("optimizer.pt", "rng_state.pt", "adapter_model.safetensors"):
            (ckpt / name).write_bytes(b"x")
        (ckpt / "trainer_state.json").write_text("{}")
    (newer / "trainer_state.json").write_text('{"step": ')
    with pytest.raises(CheckpointCorrupt, match="trainer_state.json: not valid JSON"):
        verify_checkpoint(newer)
    with pytest.warns(UserWarning, match="skipping checkpoint .*step-000002"):
        assert find_valid_checkpoint(tmp_path) == older


def test_the_run_directory_lock_excludes_a_second_holder_in_the_same_process(tmp_path):
    from grpo_lab.rundir import RunDirectoryBusy, RunDirectoryLock

    with RunDirectoryLock(tmp_path / "run") as lock:
        assert lock.acquire() is lock and lock.held  # acquiring again is a no-op
        with pytest.raises(RunDirectoryBusy, match=rf"in use by process {os.getpid()}"):
            RunDirectoryLock(tmp_path / "run").acquire()
    with RunDirectoryLock(tmp_path / "run"):  # released
        pass
