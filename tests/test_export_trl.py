"""`grpo-lab export-trl`: the TRL GRPOTrainer script runs and matches the grpo_lab config and metric names."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml

pytest.importorskip("trl")

from grpo_lab.cli import main as cli_main  # noqa: E402
from grpo_lab.cli import packaged_config  # noqa: E402
from grpo_lab.config import load_config  # noqa: E402
from grpo_lab.export_trl import batch_layout, trl_settings  # noqa: E402
from tests.conftest import run_exported_trl_script  # noqa: E402

# docs/reference.md §5.1: TRL's GRPOTrainer names, which grpo_lab's trainer logs too.
SHARED_METRICS = [
    "reward", "reward_std", "rewards/accuracy_reward/mean", "rewards/accuracy_reward/std",
    "rewards/format_reward/mean", "rewards/format_reward/std", "frac_reward_zero_std",
    "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
    "completions/mean_terminated_length", "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean",
    "clip_ratio/region_mean", "num_tokens", "step_time",
]
SMALL = ["grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=4", "grpo.max_new_tokens=24"]


def test_trl_config_carries_the_grpo_settings():
    from trl import GRPOConfig

    cfg = load_config(packaged_config("micro_r1_zero"), [
        "grpo.loss_type=dr_grpo", "grpo.scale_rewards=none", "grpo.beta=0.02", "grpo.epsilon=0.1",
        "grpo.epsilon_high=0.28", "grpo.lr=3e-4", "grpo.temperature=0.9", "grpo.num_iterations=2",
        "grpo.prompts_per_step=4", "grpo.group_size=8", "grpo.micro_batch_size=16", "model.lora_r=8",
    ])
    settings = trl_settings(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = GRPOConfig(**settings["grpo_config"], **batch_layout(cfg))
    assert (args.loss_type, args.beta, args.epsilon, args.epsilon_high) == ("dr_grpo", 0.02, 0.1, 0.28)
    assert (args.num_generations, args.num_iterations, args.scale_rewards) == (8, 2, "none")
    assert (args.learning_rate, args.temperature, args.max_completion_length) == (3e-4, 0.9, 160)
    assert args.use_bias_correction_kl is False and args.bf16 is False and args.top_k == 0
    assert args.lr_scheduler_type == "constant_with_warmup" and args.max_steps == cfg.grpo.steps * 2
    assert args.reward_weights == [1.0, 0.2]
    # prompts_per_step × G completions per optimiser step: 32 = 16 per device × 2 accumulation steps
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (16, 2)
    assert args.generation_batch_size == 32
    assert settings["lora"] == {"task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 32, "lora_dropout": 0.0,
                                "target_modules": cfg.model.lora_target_modules}
    # epsilon_high null means "the same as epsilon", as in grpo_lab
    assert trl_settings(load_config(packaged_config("micro_r1_zero")))["grpo_config"]["epsilon_high"] == 0.2


def test_batch_layout_splits_over_processes():
    cfg = load_config(packaged_config("micro_r1_zero"), ["grpo.prompts_per_step=4", "grpo.group_size=8",
                                                         "grpo.micro_batch_size=8"])
    assert batch_layout(cfg, world_size=1) == {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 4}
    assert batch_layout(cfg, world_size=4) == {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        batch_layout(cfg, world_size=3)


def test_exported_script_runs_two_steps_and_logs_grpo_lab_metric_names(tmp_path, capsys):
    out = tmp_path / "trl"
    assert cli_main(["export-trl", "--config", "micro_r1_zero", "--out", str(out), *sum((["--set", s] for s in SMALL), [])]) == 0
    assert "accelerate launch" in capsys.readouterr().out
    for name in ("ddp.yaml", "zero2.yaml", "zero3.yaml"):
        launch = yaml.safe_load((out / "accelerate" / name).read_text())
        assert launch["num_processes"] >= 1 and launch["mixed_precision"] == "no"  # micro is float32
    assert yaml.safe_load((out / "accelerate" / "zero3.yaml").read_text())["deepspeed_config"]["zero_stage"] == 3

    lines = run_exported_trl_script(out, tmp_path)
    steps = [line for line in lines if "reward" in line]
    assert [line["step"] for line in steps] == [1, 2]
    missing = [name for name in SHARED_METRICS if name not in steps[-1]]
    assert not missing, f"the TRL run does not log {missing}"
    adapter = json.loads((out / "output" / "adapter_config.json").read_text())
    assert adapter["r"] == 16 and adapter["lora_alpha"] == 32  # LoRA, as micro_r1_zero says


def test_grpo_lab_trainer_logs_the_same_names(tmp_path):
    from grpo_lab.trainer import GRPOTrainer

    cfg = load_config(packaged_config("micro_r1_zero"), [
        *SMALL, "eval.k=1", f"tracking.run_dir={tmp_path}", "tracking.wandb_mode=disabled", "tracking.progress=false",
    ])
    metrics = GRPOTrainer(cfg).training_step()
    assert not [name for name in SHARED_METRICS if name not in metrics]


def test_export_bad_config_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["export-trl", "--config", "micro_r1_zero", "--set", "grpo.loss_typ=dapo",
                     "--out", str(tmp_path)]) == 2
    assert "grpo.loss_typ" in capsys.readouterr().err


def test_one_gpu_preset_exports_bf16_and_gradient_checkpointing(tmp_path):
    from grpo_lab.cli import resolve_config_path
    from grpo_lab.export_trl import export_trl

    cfg = load_config(resolve_config_path("qwen2.5-1.5b_r1_zero"))
    export_trl(cfg, tmp_path)
    settings = yaml.safe_load((tmp_path / "trl_config.yaml").read_text())
    args = settings["grpo_config"]
    assert settings["model"]["name_or_path"] == "Qwen/Qwen2.5-1.5B"
    assert args["bf16"] is True and args["gradient_checkpointing"] is True and args["loss_type"] == "dr_grpo"
    assert args["model_init_kwargs"]["dtype"] == "bfloat16" and settings["lora"]["r"] == 32
    assert batch_layout(cfg, world_size=8) == {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}
    assert yaml.safe_load((tmp_path / "accelerate" / "ddp.yaml").read_text())["mixed_precision"] == "bf16"
