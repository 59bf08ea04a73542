"""Old home of the vllm sampler, kept so that existing imports work: use grpo_lab.samplers.vllm.

grpo_lab/trainer.py and grpo_lab/cli.py still import from here; once they use
grpo_lab.samplers (make_sampler, and samplers.vllm for the error class), this file can go.
"""

from __future__ import annotations

from grpo_lab.samplers.vllm import VLLMSampler, VLLMUnavailableError, build_rollout, check_vllm_available

__all__ = ["VLLMSampler", "VLLMUnavailableError", "build_rollout", "check_vllm_available", "make_sampler"]


def make_sampler(config, model) -> VLLMSampler:
    """The VLLMSampler for a config with grpo.sampler = vllm (VLLMSampler.from_config)."""
    return VLLMSampler.from_config(config, model)
