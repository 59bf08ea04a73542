"""What every sampler shares: the Rollout it returns, top-p sampling, stop strings, and the batched loop.

A sampler turns prompts into a :class:`Rollout`: G = ``num_samples`` completions per prompt, the
samples of a prompt contiguous. The PyTorch samplers (``hf``, ``lean``) differ only in how they
compute the next-token logits; everything else is here, once:

* :class:`SamplingBatch` is the loop's bookkeeping: the prompts tokenised and left-padded (so every
  sequence ends at the same column), the completion buffer, which rows have finished, and
  :meth:`SamplingBatch.record`, which writes a step's tokens and says which rows just finished (EOS
  or a stop string such as ``</answer>``);
* :func:`sample_token` draws one token per row (temperature, top-p, forbidden tokens);
* :class:`TorchSampler` runs a sampler's ``decode`` loop on a batch and returns the Rollout.

Position ids come from the attention mask (``cumsum(mask) - 1``), the same rule as the training
forward pass, so training's log-probs of a completion match the sampler's.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch


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


class Sampler(Protocol):
    """What the trainer and the exam call. `name` is the sampler that runs ("lean" when "auto" picked
    it), `reason` says why in a few words (the run log prints both)."""

    name: str
    reason: str

    def generate(
        self, model, tokenizer, prompts: list[str], *, num_samples: int, max_new_tokens: int, temperature: float,
        top_p: float, stop_strings: Sequence[str], generator: torch.Generator | None,
        forbid_token_ids: Sequence[int] = (),
    ) -> Rollout: ...


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
    banned: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample one token per row from logits (B, V) with temperature and nucleus (top-p) filtering.

    `banned`: token ids that may never be sampled (their logits become -inf before top-p).
    """
    logits = logits.float() / temperature
    if banned is not None:
        logits = logits.index_fill(-1, banned, float("-inf"))
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


# ------------------------------------------------------------------------------ the batched loop
class SamplingBatch:
    """The bookkeeping of one batched sampling loop, the same for every PyTorch sampler.

    Rows are the prompts repeated `num_samples` times (a prompt's samples are contiguous). A
    sampler's loop asks for logits of the rows still writing, draws their tokens with
    :func:`sample_token` (`banned` holds the forbidden token ids), and hands them to
    :meth:`record`; it must stop sampling a row as soon as `record` says it finished.
    """

    def __init__(self, model, tokenizer, prompts: list[str], num_samples: int, max_new_tokens: int,
                 stop_strings: Sequence[str], forbid_token_ids: Sequence[int]):
        device = next(model.parameters()).device
        self.prompts = [p for p in prompts for _ in range(num_samples)]
        enc = tokenizer(self.prompts, return_tensors="pt", padding=True, padding_side="left")
        self.prompt_ids: torch.Tensor = enc["input_ids"].to(device)
        self.prompt_mask: torch.Tensor = enc["attention_mask"].to(device)
        size = self.prompt_ids.size(0)
        eos_ids = eos_token_ids(tokenizer, model)
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
        self.num_samples, self.max_new_tokens = num_samples, max_new_tokens
        self.stopper = StopChecker(tokenizer, list(stop_strings), device)
        self.completion_ids = torch.full((size, max_new_tokens), self.pad_id, dtype=torch.long, device=device)
        self.lengths = torch.zeros(size, dtype=torch.long, device=device)
        self.finished = torch.zeros(size, dtype=torch.bool, device=device)
        self.eos = torch.tensor(eos_ids, device=device)
        self.banned = (torch.tensor(sorted(set(forbid_token_ids)), dtype=torch.long, device=device)
                       if forbid_token_ids else None)

    def record(self, tokens: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Write the tokens sampled for `rows` at column t; return which of them finished."""
        self.completion_ids[rows, t] = tokens
        self.lengths[rows] += 1
        done = torch.isin(tokens, self.eos) | self.stopper.hits(tokens, self.completion_ids, rows, t)
        self.finished[rows[done]] = True
        return done

    def to_rollout(self, tokenizer) -> Rollout:
        """The Rollout: completions cut to the longest one, padded after each row's end, and decoded."""
        device = self.completion_ids.device
        width = int(self.lengths.max().item()) if len(self.prompts) else 0
        completion_ids = self.completion_ids[:, :width]
        completion_mask = (torch.arange(width, device=device)[None, :] < self.lengths[:, None]).long()
        completion_ids = completion_ids.masked_fill(completion_mask == 0, self.pad_id)
        texts = tokenizer.batch_decode(
            [ids[:n].tolist() for ids, n in zip(completion_ids, self.lengths.tolist())], skip_special_tokens=True
        )
        return Rollout(
            prompts=self.prompts,
            completions=texts,
            prompt_ids=self.prompt_ids,
            prompt_mask=self.prompt_mask,
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            truncated=~self.finished,
        )


class TorchSampler:
    """A sampler that runs the batched loop in PyTorch; subclasses write `decode` (the loop itself)."""

    name = "torch"

    def __init__(self, reason: str = "asked for"):
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, reason={self.reason!r})"

    def check(self, model) -> None:
        """Raise ValueError if this sampler cannot compute this model's forward pass (default: it can)."""

    def decode(self, model, batch: SamplingBatch, temperature: float, top_p: float,
               generator: torch.Generator | None) -> None:
        """Sample every row of `batch` until it finishes or reaches batch.max_new_tokens."""
        raise NotImplementedError

    @torch.no_grad()  # not inference_mode: the rollout's tensors feed the training forward pass
    def generate(
        self, model, tokenizer, prompts: list[str], *, num_samples: int, max_new_tokens: int, temperature: float,
        top_p: float, stop_strings: Sequence[str], generator: torch.Generator | None,
        forbid_token_ids: Sequence[int] = (),
    ) -> Rollout:
        """Sample `num_samples` completions for every prompt (see grpo_lab.rollout.generate)."""
        self.check(model)
        batch = SamplingBatch(model, tokenizer, prompts, num_samples, max_new_tokens, stop_strings, forbid_token_ids)
        was_training = model.training
        model.eval()  # no dropout while sampling; the mode is restored afterwards
        try:
            self.decode(model, batch, temperature, top_p, generator)
        finally:
            if was_training:
                model.train()
        return batch.to_rollout(tokenizer)


# ------------------------------------------------------------------------------ stop strings
class StopChecker:
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
        candidate, self.window = _stop_candidates(tokenizer, tuple(self.stop_strings))
        self.candidate = candidate.to(device)

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


# Scanning the vocabulary costs one Python call per token (150k for Qwen): do it once per
# tokenizer and stop list, not at every rollout.
_STOP_CANDIDATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stop_candidates(tokenizer, stop_strings: tuple[str, ...]) -> tuple[torch.Tensor, int]:
    """(vocab-sized bool mask of tokens that can complete a stop string, tail window in tokens)."""
    key = (stop_strings, len(tokenizer))
    cached = _STOP_CANDIDATES.setdefault(tokenizer, {})
    if key not in cached:
        candidate = torch.zeros(len(tokenizer), dtype=torch.bool)
        window = 0
        if stop_strings:
            pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            hits = [token_id for token_id, piece in enumerate(pieces)
                    if any(_can_complete(tokenizer.convert_tokens_to_string([piece]) if piece is not None else "", s)
                           for s in stop_strings)]
            candidate[hits] = True
            window = max(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in stop_strings) + 2
        cached[key] = (candidate, window)
    return cached[key]


def _can_complete(text: str, stop: str) -> bool:
    """Whether a token with this text can be the one that completes `stop`."""
    for end, ch in enumerate(text, start=1):
        if ch == stop[-1] and (text[:end].endswith(stop) or stop.endswith(text[:end])):
            return True
    # Byte-level tokenizers may decode a lone token to a replacement character: stay safe.
    return "\ufffd" in text


def eos_token_ids(tokenizer, model) -> list[int]:
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
