"""One-GPU presets (grpo_lab/configs/qwen2.5-*.yaml) load and train on a tiny local stand-in model.

No download: the model is the tiny random Qwen2 of conftest.py, given a chat template and a longer
context so that the R1-Zero template and the chat templates fit; data are GSM8K/MATH fixture files
written here. Each preset runs one GRPO step on CPU (float32), and one preset also runs a step in
bf16 with gradient checkpointing, as it would on a GPU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grpo_lab.cli import main as cli_main
from grpo_lab.cli import resolve_config_path
from grpo_lab.config import load_config
from grpo_lab.models import load_model_and_tokenizer
from grpo_lab.trainer import GRPOTrainer

PRESETS = {
    "qwen2.5-0.5b_r1_zero": ("Qwen/Qwen2.5-0.5B", "r1_zero"),
    "qwen2.5-0.5b-instruct_r1_zero": ("Qwen/Qwen2.5-0.5B-Instruct", "r1_chat"),
    "qwen2.5-1.5b_r1_zero": ("Qwen/Qwen2.5-1.5B", "r1_zero"),
    "qwen2.5-1.5b-instruct_r1_zero": ("Qwen/Qwen2.5-1.5B-Instruct", "r1_chat"),
    "qwen2.5-math-1.5b_r1_zero": ("Qwen/Qwen2.5-Math-1.5B", "r1_zero"),
}
# A Qwen-style ChatML template, enough to exercise data.template = chat / r1_chat.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def stand_in(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny Qwen2 with a chat template and a 1024-token context (the R1 template is long)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path_factory.mktemp("stand_in")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.max_position_embeddings = 1024
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    gsm8k = root / "gsm8k.jsonl"
    gsm8k.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question": "What is 2 + 3 ?", "answer": "2 + 3 = 5\n#### 5"},
        {"question": "What is 4 + 4 ?", "answer": "4 + 4 = 8\n#### 8"},
        {"question": "What is 1 + 6 ?", "answer": "1 + 6 = 7\n#### 7"},
    ]))
    math = root / "math.jsonl"
    math.write_text("".join(json.dumps(r) + "\n" for r in [
        {"problem": "What is 2 + 3 ?", "solution": "It is $\\boxed{5}$."},
        {"problem": "What is 4 + 4 ?", "solution": "It is $\\boxed{8}$."},
    ]))
    return {"gsm8k": gsm8k, "math": math}


def preset_overrides(name: str, model: Path, data: dict[str, Path], run_dir: Path, dtype: str = "float32"):
    bench = "math" if "math" in name else "gsm8k"
    return [
        f"model.name_or_path={model}", f"model.dtype={dtype}", "model.device=cpu", "model.lora_r=4",
        f"data.train={bench}:{data[bench]}", f"eval.exam={bench}[:1]:{data[bench]}",
        "grpo.steps=1", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=6",
        "grpo.micro_batch_size=2", "grpo.max_prompt_length=1000",
        "eval.k=1", "eval.at_start=false", "eval.max_new_tokens=6",
        f"tracking.run_dir={run_dir}", "tracking.wandb_mode=disabled", "tracking.progress=false",
        "tracking.save_every=0",
    ]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_settings_and_one_grpo_step_on_a_stand_in(name, stand_in, fixture_data, tmp_path):
    hub_id, template = PRESETS[name]
    path = resolve_config_path(name)  # loadable by name, like micro_r1_zero
    cfg = load_config(path)
    assert cfg.model.name_or_path == hub_id and cfg.data.template == template
    assert cfg.model.dtype == "bfloat16" and cfg.model.use_lora and cfg.model.gradient_checkpointing
    assert cfg.grpo.use_vllm is False

    cfg = load_config(path, preset_overrides(name, stand_in, fixture_data, tmp_path / "run"))
    trainer = GRPOTrainer(cfg)
    assert trainer.model.base_model.model.is_gradient_checkpointing
    df = trainer.train()
    step = df[df["step"] == 1].iloc[-1]
    assert math.isfinite(step["loss"]) and math.isfinite(step["grad_norm"])
    assert "rewards/accuracy_reward/mean" in df and "rewards/format_reward/mean" in df
    assert (tmp_path / "run" / "summary.json").exists()
    if template == "r1_chat":  # the chat template with the R1 instructions as the system message
        prompt = trainer._last_rollout.prompts[0]
        assert prompt.startswith("<|im_start|>system\nA conversation between User and Assistant")
        assert prompt.endswith("<|im_start|>assistant\n")


def test_bf16_with_gradient_checkpointing_runs_a_step_on_cpu(stand_in, fixture_data, tmp_path):
    import torch

    name = "qwen2.5-0.5b_r1_zero"
    cfg = load_config(resolve_config_path(name), preset_overrides(name, stand_in, fixture_data, tmp_path, "bfloat16"))
    # A random model earns no accuracy/format reward, so every advantage would be 0 and nothing would
    # move; a reward that varies with the text gives the update something to do.
    trainer = GRPOTrainer(cfg, reward_funcs=[_length_reward])
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    metrics = trainer.training_step()
    assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"])
    changed = [n for n, p in trainer.model.named_parameters() if "lora_B" in n and not torch.equal(p, lora_before[n])]
    assert changed, "gradient checkpointing with PEFT must still send gradients to the adapters"


def _length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


def test_preset_hub_id_offline_and_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = load_config(resolve_config_path("qwen2.5-0.5b_r1_zero"), ["model.device=cpu"])
    with pytest.raises(OSError, match=r"(?s)Qwen/Qwen2.5-0.5B.*local directory.*hf download Qwen/Qwen2.5-0.5B "
                                      r"--local-dir models/Qwen2.5-0.5B.*model.name_or_path=models/Qwen2.5-0.5B"):
        load_model_and_tokenizer(cfg.model)


def test_cli_train_preset_by_name_with_local_model(stand_in, fixture_data, tmp_path, capsys):
    name = "qwen2.5-0.5b-instruct_r1_zero"
    args = ["train", "--config", name]
    for item in preset_overrides(name, stand_in, fixture_data, tmp_path / "cli"):
        args += ["--set", item]
    assert cli_main(args) == 0
    assert "report:" in capsys.readouterr().out
