"""The optional vllm sampler (grpo.sampler: vllm): the error paths, the dispatch in the trainer, the Rollout it builds.

vLLM itself is not installed here and there is no GPU, so the sampler is never run (see
docs/scale_up.md); these tests check everything around it.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from grpo_lab.cli import main as cli_main
from grpo_lab.cli import packaged_config
from grpo_lab.config import ConfigError, load_config
from grpo_lab.micro_world import build_tokenizer
from grpo_lab.rollout import Rollout, generate
from grpo_lab.samplers.vllm import VLLMSampler, VLLMUnavailableError, build_rollout, check_vllm_available
from grpo_lab.trainer import GRPOTrainer

needs_no_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
SMALL = ["grpo.steps=1", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=8", "eval.k=1",
         "tracking.wandb_mode=disabled", "tracking.progress=false", "tracking.save_every=0"]


@needs_no_vllm
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(VLLMUnavailableError, match=r'vLLM is not installed.*pip install -e "\.\[vllm\]".*grpo.sampler = auto'):
        check_vllm_available()


@needs_no_vllm
def test_trainer_with_the_vllm_sampler_raises_the_clear_error(tmp_path):
    cfg = load_config(packaged_config("micro_r1_zero"), [*SMALL, "grpo.sampler=vllm", f"tracking.run_dir={tmp_path}"])
    with pytest.raises(VLLMUnavailableError, match="not installed"):
        GRPOTrainer(cfg).training_step()


@needs_no_vllm
def test_cli_train_with_the_vllm_sampler_fails_before_loading_anything(tmp_path, capsys):
    code = cli_main(["train", "--config", "micro_r1_zero", "--set", "grpo.sampler=vllm",
                     "--set", f"tracking.run_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "vLLM is not installed" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_no_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # pretend vllm is installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VLLMUnavailableError, match="needs a CUDA GPU"):
        check_vllm_available()


def test_the_vllm_sampler_needs_lora():
    with pytest.raises(ConfigError, match=r"grpo.sampler = vllm needs model.use_lora = true"):
        load_config(packaged_config("micro_r1_zero"), ["grpo.sampler=vllm", "model.use_lora=false"])
    with pytest.raises(ConfigError, match=r"grpo.vllm_gpu_memory_utilization"):
        load_config(packaged_config("micro_r1_zero"), ["grpo.vllm_gpu_memory_utilization=1.5"])


def test_trainer_dispatches_to_the_vllm_sampler_when_asked(tmp_path, monkeypatch):
    calls = []

    class FakeSampler:  # stands in for VLLMSampler: same call, same Rollout
        name, reason = "vllm", "grpo.sampler = vllm"

        def generate(self, *args, **kwargs):
            calls.append(kwargs["num_samples"])
            return generate(*args, **kwargs)

    monkeypatch.setattr(VLLMSampler, "from_config", classmethod(lambda cls, config, model: FakeSampler()))
    cfg = load_config(packaged_config("micro_r1_zero"), [*SMALL, "grpo.sampler=vllm", f"tracking.run_dir={tmp_path}"])
    trainer = GRPOTrainer(cfg)
    trainer.training_step()
    trainer.training_step()
    assert calls == [2, 2]  # one engine, used every step

    calls.clear()
    off = GRPOTrainer(load_config(packaged_config("micro_r1_zero"), [*SMALL, f"tracking.run_dir={tmp_path / 'off'}"]))
    off.training_step()
    assert calls == []  # off by default: the built-in sampler


def test_build_rollout_pads_like_the_builtin_sampler():
    tokenizer = build_tokenizer()
    prompts = ["1 + 2 = ?", "3 + 4 + 5 = ?"]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    eos = tokenizer.eos_token_id

    def sample(ids, reason):
        return SimpleNamespace(token_ids=ids, text=tokenizer.decode(ids), finish_reason=reason)

    outputs = [
        SimpleNamespace(outputs=[sample([5, 6, eos], "stop"), sample([7, 8, 9, 10], "length")]),
        SimpleNamespace(outputs=[sample([11], "stop"), sample([12, 13], "stop")]),
    ]
    r = build_rollout(tokenizer, prompts, encoded, outputs, num_samples=2, max_new_tokens=4, device=torch.device("cpu"))
    assert isinstance(r, Rollout) and len(r) == 4
    assert r.prompts == [prompts[0], prompts[0], prompts[1], prompts[1]]
    P = max(len(e) for e in encoded)
    assert r.prompt_ids.shape == (4, P) and r.completion_ids.shape == (4, 4)
    # left-padded prompts: real tokens end at the last column
    assert r.prompt_mask[0].tolist() == [0] * (P - len(encoded[0])) + [1] * len(encoded[0])
    assert r.prompt_ids[0, -len(encoded[0]):].tolist() == encoded[0]
    assert r.lengths.tolist() == [3, 4, 1, 2]
    assert r.completion_ids[2].tolist() == [11, tokenizer.pad_token_id, tokenizer.pad_token_id, tokenizer.pad_token_id]
    assert r.truncated.tolist() == [False, True, False, False]


def test_build_rollout_rejects_a_wrong_sample_count():
    tokenizer = build_tokenizer()
    outputs = [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[5], text="x", finish_reason="stop")])]
    with pytest.raises(RuntimeError, match="expected 2"):
        build_rollout(tokenizer, ["q"], [[4]], outputs, num_samples=2, max_new_tokens=4, device=torch.device("cpu"))


