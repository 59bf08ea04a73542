"""End to end: 3 GRPO steps with LoRA on a tiny random Qwen2 model and a locally built tokenizer."""

from __future__ import annotations

import glob
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from grpo_lab.logprobs import per_token_logps, training_batch
from grpo_lab.rewards import accuracy_reward, format_reward
from grpo_lab.tracking import EVAL_METRIC_NAMES, read_jsonl
from grpo_lab.trainer import GRPOTrainer, latest_checkpoint
from tests.conftest import tiny_config

TRL_NAMES = [
    "reward", "reward_std", "rewards/accuracy_reward/mean", "rewards/format_reward/mean", "frac_reward_zero_std",
    "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
    "completions/mean_terminated_length", "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean",
    "clip_ratio/region_mean", "num_tokens", "step_time",
]  # fmt: skip


def digit_reward(prompts, completions, **kwargs):
    """A reward that differs between a random model's completions (accuracy and format are all 0
    for a random model, which would give zero advantages and no gradient)."""
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


@pytest.fixture
def trained(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")
    trainer = GRPOTrainer(cfg, run_dir=tmp_path / "run", reward_funcs=[accuracy_reward, format_reward, digit_reward])
    base_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    df = trainer.train()
    return trainer, df, base_before, lora_before, tmp_path / "run"


def test_three_steps_change_adapters_and_leave_base_weights_alone(trained):
    trainer, _, base_before, lora_before, _ = trained
    params = dict(trainer.model.named_parameters())
    assert lora_before, "no LoRA parameters found"
    assert any(not torch.equal(params[n], p) for n, p in lora_before.items() if "lora_B" in n)
    for name, before in base_before.items():
        assert torch.equal(params[name], before), f"base weight {name} changed"
        assert not params[name].requires_grad


def test_reference_log_probs_equal_the_base_models(trained, tiny_model_dir):
    """π_ref is the same model with adapters disabled: it must equal the untouched base model."""
    trainer, *_ = trained
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rollout = trainer._last_rollout
    batch = training_batch(rollout)
    with torch.no_grad():
        with trainer.reference.active() as reference:
            ref = per_token_logps(reference, batch, trainer.config.grpo.temperature)[0]
        expected = per_token_logps(base, batch, trainer.config.grpo.temperature)[0]
        policy = per_token_logps(trainer.model, batch, trainer.config.grpo.temperature)[0]
    mask = batch["completion_mask"].bool()
    torch.testing.assert_close(ref[mask], expected[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(policy[mask], ref[mask], atol=1e-4), "trained policy should differ from π_ref"


def test_metrics_jsonl_carries_trl_and_eval_names(trained):
    _, df, _, _, run_dir = trained
    lines = read_jsonl(run_dir / "metrics.jsonl")
    train_lines = [line for line in lines if "reward" in line]
    assert [line["step"] for line in train_lines] == [1, 2, 3]
    for name in TRL_NAMES:
        assert name in train_lines[0], name
    eval_lines = [line for line in lines if "eval/pass@1" in line]
    assert [line["step"] for line in eval_lines] == [0, 3]
    for name in ("eval/pass@1", "eval/cons@2", "eval/pass@2", "eval/mean_length", "eval/reflection_rate"):
        assert name in eval_lines[0], name
    assert set(EVAL_METRIC_NAMES) >= {"eval/pass@1", "eval/mean_length", "eval/reflection_rate"}
    assert list(df["step"]) == [0, 1, 2, 3]


def test_run_directory_has_config_summary_completions_and_checkpoint(trained):
    _, _, _, _, run_dir = trained
    summary = json.loads((run_dir / "summary.json").read_text())
    for part in ("step0", "final"):
        assert set(summary[part]) == {"pass@1", "cons@2", "pass@2", "mean_length", "reflection_rate"}
    assert summary["seed"] == 0 and summary["rl_seconds"] > 0
    assert (run_dir / "config.yaml").exists() and (run_dir / "completions.jsonl").exists()
    ckpt = latest_checkpoint(run_dir)
    assert ckpt.name == "step-000003"
    assert set(load_file(str(ckpt / "adapter_model.safetensors"))) and (ckpt / "optimizer.pt").exists()


def test_wandb_disabled_writes_nothing(trained):
    _, _, _, _, run_dir = trained
    assert not list(run_dir.rglob("offline-run-*")) and not (run_dir / "wandb").exists()


def test_wandb_offline_writes_a_run_directory(tiny_model_dir, tiny_exam, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    (tmp_path / "wandb_home").mkdir()
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=1)
    cfg.tracking.wandb_mode = "offline"
    cfg.eval.at_start = False
    GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    assert glob.glob(str(tmp_path / "wandb_home" / "**" / "offline-run-*"), recursive=True)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_every_loss_type_trains(tiny_model_dir, tiny_exam, tmp_path, loss_type):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=1, loss_type=loss_type, num_iterations=2)
    cfg.eval.at_start = False
    df = GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    assert df["loss"].notna().any()


def test_callbacks_see_every_step(tiny_model_dir, tiny_exam, tmp_path):
    seen = []
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2)
    cfg.eval.at_start = False
    GRPOTrainer(cfg, run_dir=tmp_path / "run", callbacks=[lambda t, step, m: seen.append((step, m["reward"]))]).train()
    assert [s for s, _ in seen] == [1, 2]


def test_a_qwen2_directory_keeps_its_own_word_level_tokenizer(tiny_model_dir):
    """transformers 5 would load a Qwen2Tokenizer here, which splits the micro words differently."""
    from grpo_lab.micro_world import build_tokenizer
    from grpo_lab.models import load_tokenizer

    text = "User : 7 + 8 = ? Assistant : <think> wait , let me check </think> <answer> 15 </answer>"
    assert load_tokenizer(str(tiny_model_dir))(text)["input_ids"] == build_tokenizer()(text)["input_ids"]


def test_optimizer_takes_adam_epsilon_and_weight_decay_from_the_config(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", adam_epsilon=1e-5, weight_decay=0.1)
    group = GRPOTrainer(cfg, run_dir=tmp_path / "run").optimizer.param_groups[0]
    assert (group["eps"], group["weight_decay"]) == (1e-5, 0.1)


def test_reward_weights_of_the_wrong_length_are_an_error_not_replaced(tiny_model_dir, tiny_exam, tmp_path):
    """Before: a weights list of the wrong length was silently replaced by 1.0s in the trainer."""
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")
    with pytest.raises(ValueError, match="reward_weights has 1 weights for 2 reward functions"):
        GRPOTrainer(cfg, reward_funcs=[accuracy_reward, format_reward], reward_weights=[1.0])


def test_the_configs_weights_go_with_the_configs_functions(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")  # accuracy + 0.2 × format
    assert GRPOTrainer(cfg).reward_weights == [1.0, 0.2]
    passed = GRPOTrainer(cfg, reward_funcs=[accuracy_reward])
    assert passed.reward_weights == [1.0]  # functions passed in take TRL's default, 1.0 each
