"""Shared fixtures: a tiny random Qwen2 model with a locally built tokenizer, and a quiet wandb."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

import pytest

# wandb must never block or write outside a temporary directory in tests (docs/reference.md §6).
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DIR", tempfile.mkdtemp(prefix="grpo-lab-wandb-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Qwen2ForCausalLM saved like a hub model, with the micro tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from grpo_lab.micro_world import build_tokenizer

    path = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tiny_exam(tmp_path) -> Path:
    path = tmp_path / "exam.jsonl"
    rows = [{"question": "1 + 2 + 3 = ?", "answer": "6"}, {"question": "4 + 4 = ?", "answer": "8"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_config(model_dir: Path, exam: Path, run_dir: Path, **grpo):
    """A config that runs in seconds on the tiny model."""
    from grpo_lab.config import Config

    data = {
        "name": "tiny",
        "model": {"name_or_path": str(model_dir), "dtype": "float32", "device": "cpu", "lora_r": 4, "lora_alpha": 8},
        "grpo": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 12, "lr": 1e-2, "steps": 3,
                 "beta": 0.04, "seed": 0, **grpo},
        "rewards": {"functions": ["accuracy", "format"], "weights": [1.0, 0.2]},
        "data": {"train": "micro", "template": "micro"},
        "eval": {"exam": str(exam), "k": 2, "every": 0, "max_new_tokens": 12},
        "tracking": {"run_dir": str(run_dir), "wandb_mode": "disabled", "save_every": 0, "progress": False,
                     "log_completions_every": 1},
    }
    return Config.from_dict(data)


def load_benchmark(name: str):
    """A script of benchmarks/ imported as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_exported_trl_script(out: Path, cwd: Path) -> list[dict]:
    """Run an exported `train_trl.py` in a quiet, offline subprocess; return its metrics.jsonl lines."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(out / "train_trl.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in (out / "output" / "metrics.jsonl").read_text().splitlines()]
