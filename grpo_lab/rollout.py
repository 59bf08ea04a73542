"""Rollouts: sample G completions for each prompt, batched, with a KV cache.

`generate` is the functional way in (notebooks and tests use it); the trainer and the exam hold a
sampler object made once (grpo_lab.samplers.make_sampler) and call its `generate` with the same
arguments. The samplers themselves are in grpo_lab/samplers/: ``hf`` (Hugging Face's forward, the
readable reference), ``lean`` (the same decode step in plain torch for Llama/Qwen2) and ``vllm``.
What they share, the :class:`Rollout` included, is in grpo_lab/samplers/base.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from grpo_lab.samplers import LeanDecoder, resolve_sampler
from grpo_lab.samplers.base import Rollout, sample_token

__all__ = ["LeanDecoder", "Rollout", "generate", "sample_token"]


def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_strings: Sequence[str] = ("</answer>",),
    generator: torch.Generator | None = None,
    decoder: str = "auto",
    forbid_token_ids: Sequence[int] = (),
) -> Rollout:
    """Sample `num_samples` completions for every prompt; the samples of a prompt are contiguous.

    Works with any Hugging Face causal LM (PEFT-wrapped or not). `generator` makes sampling
    reproducible without touching the global RNG (evaluation uses its own, so evaluating does not
    change what training samples next). `decoder`: the sampler, "auto" (the lean one when
    `LeanDecoder.unsupported_reason(model)` is None, else Hugging Face's forward), "lean" or "hf"
    (for the same generator both draw the same tokens). `forbid_token_ids`: tokens never sampled
    (evaluation's causal test of reflection masks the first token of the reflection phrase; see
    grpo_lab.evaluate.evaluate_model's `forbid_phrases`). A completion ends at EOS, at the first
    of `stop_strings` (included in the completion) or after `max_new_tokens` (then `truncated`).
    """
    if decoder not in ("auto", "hf", "lean"):
        raise ValueError(f"decoder={decoder!r}; allowed: 'auto', 'lean', 'hf'")
    return resolve_sampler(decoder, model).generate(
        model, tokenizer, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens, temperature=temperature,
        top_p=top_p, stop_strings=stop_strings, generator=generator, forbid_token_ids=forbid_token_ids,
    )
