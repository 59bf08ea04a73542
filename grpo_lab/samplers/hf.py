"""The reference sampler: Hugging Face's forward pass with a KV cache, one token at a time.

Read this one first. It works for any Hugging Face causal LM, PEFT-wrapped or not, and is what the
other samplers are held to (tests/test_samplers.py). One rollout is:

1. **Prefill.** Run the whole left-padded prompt batch once. The model returns the logits of the
   last position (the next token's distribution) and fills the KV cache: each layer's keys and
   values for every prompt position, so that later steps never recompute them.
2. **Decode.** Repeat: draw one token per row from the logits (:func:`sample_token`), write it
   down (:meth:`SamplingBatch.record`, which also says which rows just wrote EOS or a stop string),
   then run the model on just the new tokens. Each new token attends to the cache, and its own
   key and value are appended to it.
3. **Drop finished rows.** A row that has finished leaves the batch and the cache at once
   (``DynamicCache.batch_select_indices``), so a long tail costs only the rows still writing.

Positions follow the attention mask: a left-padded row's first real token is position 0, the same
rule (``cumsum(mask) - 1``) that the training forward pass uses.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache, LlamaForCausalLM

from grpo_lab.samplers.base import SamplingBatch, TorchSampler, sample_token

# transformers ≥ 5.2x calls the KV-cache argument `cache` and deprecates `past_key_values`.
_CACHE_KW = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


class HFSampler(TorchSampler):
    """Samples with the model's own forward pass and a `DynamicCache` (any causal LM)."""

    name = "hf"

    def decode(self, model, batch: SamplingBatch, temperature: float, top_p: float,
               generator: torch.Generator | None) -> None:
        """The sampling loop; finished rows leave the batch and the cache at once."""
        rows = torch.arange(batch.prompt_ids.size(0), device=batch.prompt_ids.device)  # original rows still writing
        attention_mask = batch.prompt_mask
        position_ids = (batch.prompt_mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()

        # 1. Prefill: the whole prompt once; keep only the last position's logits.
        out = model(
            input_ids=batch.prompt_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
            **{_CACHE_KW: cache},
        )
        next_position = position_ids[:, -1] + 1
        logits = out.logits[:, -1]

        # 2. Decode: one token per still-writing row per step.
        for t in range(batch.max_new_tokens):
            tokens = sample_token(logits, temperature, top_p, generator, batch.banned)
            done = batch.record(tokens, rows, t)
            if done.all() or t == batch.max_new_tokens - 1:
                break
            if done.any():  # 3. drop finished rows from the batch and from the KV cache
                keep = (~done).nonzero().flatten()
                cache.batch_select_indices(keep)
                rows, tokens = rows[keep], tokens[keep]
                attention_mask, next_position = attention_mask[keep], next_position[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=1)
            out = model(
                input_ids=tokens[:, None],
                attention_mask=attention_mask,
                position_ids=next_position[:, None],
                use_cache=True,
                **{_CACHE_KW: cache},
            )
            next_position = next_position + 1
            logits = out.logits[:, -1]
