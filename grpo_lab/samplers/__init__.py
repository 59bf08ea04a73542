"""Samplers: how a rollout's completions are drawn, one module each, chosen by ``grpo.sampler``.

=======  =====================================================================================
``hf``   :mod:`grpo_lab.samplers.hf`: Hugging Face's forward with a KV cache, any causal LM. The
         readable reference; the others are held to it (tests/test_samplers.py).
``lean`` :mod:`grpo_lab.samplers.lean`: the same decode step written out in plain torch for
         Llama/Qwen2 (merged LoRA, static KV cache); the same tokens as ``hf``, fewer operations.
``vllm`` :mod:`grpo_lab.samplers.vllm`: vLLM on the training GPU (optional extra, CUDA only).
``auto`` ``lean`` where ``LeanDecoder.unsupported_reason(model)`` is None, else ``hf``.
=======  =====================================================================================

What they share (the Rollout they return, top-p sampling, stop strings, the batched loop's
bookkeeping) is in :mod:`grpo_lab.samplers.base`. Every sampler has a ``name`` (the one that runs),
a ``reason`` (why it was chosen, for the run log) and the same ``generate`` call.
"""

from __future__ import annotations

from grpo_lab.config import ConfigError
from grpo_lab.samplers.base import Rollout, Sampler, SamplingBatch, TorchSampler, sample_token
from grpo_lab.samplers.hf import HFSampler
from grpo_lab.samplers.lean import LeanDecoder, LeanSampler
from grpo_lab.samplers.vllm import VLLMSampler, VLLMUnavailableError  # vllm itself is imported only when used

SAMPLER_NAMES = ("auto", "hf", "lean", "vllm")
"""The values of ``grpo.sampler`` (grpo_lab.config.GRPOConfig.sampler)."""

__all__ = ["SAMPLER_NAMES", "HFSampler", "LeanDecoder", "LeanSampler", "Rollout", "Sampler", "SamplingBatch",
           "TorchSampler", "VLLMSampler", "VLLMUnavailableError", "make_sampler", "resolve_sampler", "sample_token"]


def resolve_sampler(name: str, model) -> HFSampler | LeanSampler:
    """The PyTorch sampler called `name` ("auto", "hf" or "lean") for this model.

    "auto" picks "lean" when the lean decoder can compute this model's forward pass, else "hf";
    the returned sampler's `reason` says which and why. "lean" for a model it cannot run is a
    ValueError that says why. "vllm" needs the run's config: use :func:`make_sampler`.
    """
    if name == "auto":
        why_not = LeanDecoder.unsupported_reason(model)
        if why_not is None:
            return LeanSampler(reason="auto: the lean decoder supports this model")
        return HFSampler(reason=f"auto: the lean decoder cannot run this model ({why_not})")
    if name == "hf":
        return HFSampler(reason="asked for")
    if name == "lean":
        why_not = LeanDecoder.unsupported_reason(model)
        if why_not is not None:
            raise ValueError(f"the lean decoder cannot run this model: {why_not}; use 'hf' or 'auto'")
        return LeanSampler(reason="asked for")
    if name == "vllm":
        raise ValueError("sampler 'vllm' is built from the run's config: grpo_lab.samplers.make_sampler(config, model)")
    raise ValueError(f"sampler {name!r} is unknown; allowed: {list(SAMPLER_NAMES)}")


def make_sampler(config, model) -> Sampler:
    """The sampler a run uses: ``config.grpo.sampler`` resolved for `model` (call it once, after the
    model's adapters are added). Its `name` and `reason` belong in the run log.

    Raises ConfigError (naming grpo.sampler) when the configured sampler cannot run this model, and
    VLLMUnavailableError when "vllm" is asked for where vLLM cannot run.
    """
    name = config.grpo.sampler
    if name == "vllm":
        return VLLMSampler.from_config(config, model)
    try:
        sampler = resolve_sampler(name, model)
    except ValueError as exc:
        raise ConfigError(f"grpo.sampler = {name!r}: {exc}") from None
    if name != "auto":
        sampler.reason = f"grpo.sampler = {name}"
    return sampler
