"""Rollouts: sample G completions for each prompt, batched, with a KV cache.

This is a small sampling loop rather than `model.generate` so that every step is visible and
cheap: prompts are left-padded so that all sequences end at the same column; position ids come
from the attention mask (`cumsum(mask) - 1`), the same rule the training forward pass uses, so
the log-probs of training match the sampler's; a sequence that has finished (EOS or a stop
string such as `</answer>`) is dropped from the batch and its KV cache, so long tails cost
only the sequences still writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import inspect

import torch
from transformers import DynamicCache, LlamaForCausalLM

# transformers ≥ 5.2x calls the KV-cache argument `cache` and deprecates `past_key_values`.
_CACHE_KW = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


@dataclass
class Rollout:
    """A batch of prompts and their sampled completions (B = prompts × num_samples rows)."""

    prompts: list[str]
    completions: list[str]
    prompt_ids: torch.Tensor  # (B, P), left-padded
    prompt_mask: torch.Tensor  # (B, P)
    completion_ids: torch.Tensor  # (B, T), right-padded with the pad token
    completion_mask: torch.Tensor  # (B, T), 1 for generated tokens up to and including the stop
    truncated: torch.Tensor  # (B,) bool: hit max_new_tokens without EOS or a stop string
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(dim=1)

    def __len__(self) -> int:
        return len(self.completions)


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample one token per row from logits (B, V) with temperature and nucleus (top-p) filtering."""
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, sorted_idx = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p of the mass
        # (Holtzman et al. 2020); the most likely token is always kept.
        drop = probs.cumsum(dim=-1) - probs > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, sorted_idx, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _StopChecker:
    """Finds stop strings in generated text without decoding every token of every row.

    A token can complete a stop string S only if its text contains S's last character at a place
    where S ends: either S lies inside the token's text, or the text up to there is the tail of S
    (S began in earlier tokens). Those candidate tokens are found once for the vocabulary; only
    when one is sampled is that row's tail decoded and searched. ("</think>" never completes
    "</answer>", so it costs nothing.)
    """

    def __init__(self, tokenizer, stop_strings: list[str], device: torch.device):
        self.tokenizer = tokenizer
        self.stop_strings = [s for s in stop_strings if s]
        vocab_size = len(tokenizer)
        self.candidate = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        if not self.stop_strings:
            self.window = 0
            return
        pieces = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
        for token_id, piece in enumerate(pieces):
            text = tokenizer.convert_tokens_to_string([piece]) if piece is not None else ""
            if any(_can_complete(text, s) for s in self.stop_strings):
                self.candidate[token_id] = True
        longest = max(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in self.stop_strings)
        self.window = longest + 2

    def hits(self, tokens: torch.Tensor, completion_ids: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Which of the active rows just completed a stop string with the token written at column t."""
        hit = torch.zeros_like(tokens, dtype=torch.bool)
        if not self.stop_strings:
            return hit
        for j in self.candidate[tokens].nonzero().flatten().tolist():
            tail = completion_ids[rows[j], max(0, t + 1 - self.window) : t + 1]
            text = self.tokenizer.decode(tail, skip_special_tokens=False)
            hit[j] = any(s in text for s in self.stop_strings)
        return hit


def _can_complete(text: str, stop: str) -> bool:
    """Whether a token with this text can be the one that completes `stop`."""
    for end, ch in enumerate(text, start=1):
        if ch == stop[-1] and (text[:end].endswith(stop) or stop.endswith(text[:end])):
            return True
    # Byte-level tokenizers may decode a lone token to a replacement character: stay safe.
    return "\ufffd" in text


@torch.no_grad()  # not inference_mode: the rollout's tensors feed the training forward pass
def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_strings: list[str] | tuple[str, ...] = ("</answer>",),
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample `num_samples` completions for every prompt; the samples of a prompt are contiguous.

    Works with any Hugging Face causal LM (PEFT-wrapped or not). `generator` makes sampling
    reproducible without touching the global RNG (evaluation uses its own, so evaluating does not
    change what training samples next).
    """
    device = next(model.parameters()).device
    expanded = [p for p in prompts for _ in range(num_samples)]
    enc = tokenizer(expanded, return_tensors="pt", padding=True, padding_side="left")
    prompt_ids = enc["input_ids"].to(device)
    prompt_mask = enc["attention_mask"].to(device)
    batch = prompt_ids.size(0)
    eos_ids = _eos_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    stopper = _StopChecker(tokenizer, list(stop_strings), device)

    completion_ids = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    eos = torch.tensor(eos_ids, device=device)

    was_training = model.training
    model.eval()
    # Prefill: the whole prompt batch in one forward pass.
    rows = torch.arange(batch, device=device)  # which original rows are still being written
    attention_mask = prompt_mask
    position_ids = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(
        input_ids=prompt_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        logits_to_keep=1,
        **{_CACHE_KW: cache},
    )
    next_position = position_ids[:, -1] + 1
    logits = out.logits[:, -1]

    for t in range(max_new_tokens):
        tokens = sample_token(logits, temperature, top_p, generator)
        completion_ids[rows, t] = tokens
        lengths[rows] += 1
        done = torch.isin(tokens, eos) | stopper.hits(tokens, completion_ids, rows, t)
        finished[rows[done]] = True
        if done.all() or t == max_new_tokens - 1:
            break
        if done.any():  # drop finished rows from the batch and from the KV cache
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

    if was_training:
        model.train()
    width = int(lengths.max().item()) if batch else 0
    completion_ids = completion_ids[:, :width]
    completion_mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_id)
    texts = tokenizer.batch_decode(
        [ids[:n].tolist() for ids, n in zip(completion_ids, lengths.tolist())], skip_special_tokens=True
    )
    return Rollout(
        prompts=expanded,
        completions=texts,
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        truncated=~finished,
    )


def _eos_ids(tokenizer, model) -> list[int]:
    """Every token that ends a completion: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif isinstance(gen_eos, (list, tuple)):
        ids.update(int(i) for i in gen_eos)
    if not ids:
        raise ValueError("the tokenizer has no eos_token and the model's generation_config names none")
    return sorted(ids)
