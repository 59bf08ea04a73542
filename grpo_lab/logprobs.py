"""Per-token log-probabilities of completions under a policy: the forward pass of the GRPO update.

A GRPO step scores the same sampled completions up to three times: under π_θ (with gradient, for
the loss), under π_ref (the base model, adapters off) and, when μ > 1, under π_old. This module
turns a rollout into the batch those passes read (`training_batch`), cuts it into pieces of
similar length (`micro_batches`) and computes log π(o_t | q, o_<t) for every completion token
(`per_token_logps`). It is Hugging Face's forward through PEFT: the readable reference.
"""

from __future__ import annotations

import torch

from grpo_lab import lean_forward
from grpo_lab.grpo import entropy_from_logits, selective_log_probs
from grpo_lab.rollout import Rollout

Batch = dict[str, torch.Tensor]


def training_batch(rollout: Rollout) -> Batch:
    """Prompt + completion as one left-padded batch, with the position ids the sampler used."""
    input_ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
    attention_mask = torch.cat([rollout.prompt_mask, rollout.completion_mask], dim=1)
    # Left padding shifts every row: positions must count real tokens only, exactly as the
    # sampler did, or training log-probs differ from the sampler's.
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "completion_ids": rollout.completion_ids,
        "completion_mask": rollout.completion_mask,
    }


def per_token_logps(model, batch: Batch, temperature: float, with_entropy: bool = False, lean: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(o_t | q, o_<t) for completion tokens only (B, T); logits are kept for the last T+1 positions.

    The logits are divided by the sampling temperature, as TRL does, so that the ratio and the KL
    compare the distribution the completions were actually drawn from. The entropy is a logged
    statistic, not part of the loss: it is computed without an autograd graph.

    `lean=True` (grpo.train_forward): the same operations in the same order written out in plain
    torch (lean_forward.py), without PEFT's and Hugging Face's per-module Python; bitwise equal
    here (tests/test_lean_forward.py). This function's body below stays the readable reference.
    """
    if lean:
        return lean_forward.per_token_logps(model, batch, temperature, with_entropy)
    T = batch["completion_ids"].size(1)
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"], logits_to_keep=T + 1, use_cache=False,
    ).logits[:, :-1]  # the logit at position t predicts token t + 1
    logps = selective_log_probs(logits, batch["completion_ids"], temperature)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits, temperature)
    return logps, entropy


def micro_batches(batch: Batch, size: int = 0) -> list[tuple[torch.Tensor, Batch]]:
    """Split the batch into (rows, part) pieces of similar length, each without its dead padding.

    Rows are sorted by completion length and cut into `size` rows per piece (0: an eighth of the
    batch, at least 8 rows; `grpo.micro_batch_size`). Each piece keeps only its own columns: from
    its longest prompt's first token (prompts are left-padded) to its longest completion's last.
    Cutting columns that are padding in every row of the piece changes nothing for the real tokens
    (positions come from the mask), and the loss normalisers are the whole batch's, so the pieces'
    gradients sum to the full batch's. Lengths in a batch are skewed (a few long completions, many
    short ones), so this computes roughly the real tokens instead of rows × longest.
    """
    n = batch["input_ids"].size(0)
    P = batch["input_ids"].size(1) - batch["completion_ids"].size(1)
    size = size or max(8, -(-n // 8))
    lengths = batch["completion_mask"].sum(1)
    order = torch.argsort(lengths, stable=True)
    pad_left = (batch["attention_mask"][:, :P] == 0).sum(1)  # each prompt's left padding
    pieces = []
    for start in range(0, n, size):
        rows = order[start : start + size]
        T = max(int(lengths[rows].max()), 1)
        first = int(pad_left[rows].min())
        part = {key: batch[key][rows, first : P + T] for key in ("input_ids", "attention_mask", "position_ids")}
        part["completion_ids"] = batch["completion_ids"][rows, :T]
        part["completion_mask"] = batch["completion_mask"][rows, :T]
        pieces.append((rows, part))
    return pieces


@torch.no_grad()
def per_token_logps_in_parts(model, batch: Batch, temperature: float, size: int = 0, lean: bool = False
                             ) -> torch.Tensor:
    """`per_token_logps` over the whole batch (B, T), without gradient, computed piece by piece."""
    out = torch.zeros(batch["completion_ids"].shape, dtype=torch.float32, device=batch["completion_ids"].device)
    for rows, part in micro_batches(batch, size):
        out[rows, : part["completion_ids"].size(1)] = per_token_logps(model, part, temperature, lean=lean)[0]
    return out
