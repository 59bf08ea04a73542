"""The GRPO objective, written to be read next to the paper.

Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath", §4.1, Eq. 3):

    J(θ) = E[ 1/G Σ_i 1/|o_i| Σ_t ( min(ρ_it Â_i, clip(ρ_it, 1-ε, 1+ε) Â_i) - β KL_it ) ]

    ρ_it  = π_θ(o_it | q, o_i<t) / π_old(o_it | q, o_i<t)                    (the ratio)
    Â_i   = (r_i - mean(r)) / std(r)                                          (Eq. 3's outcome advantage)
    KL_it = π_ref/π_θ - log(π_ref/π_θ) - 1                                   (Eq. 4, Schulman's "k3")

We minimise the negative. The variants users ask for differ only in how per-token losses are
averaged (`loss_type`) and how rewards are scaled (`scale_rewards`); the names are TRL's so that
results carry over (docs/reference.md §2.4):

    grpo     mean over each sequence's tokens, then over sequences           (the paper, Eq. 3)
    bnpo     sum over the batch's tokens / active tokens in the batch
    dapo     sum / active tokens of the whole generation batch                (Yu et al. 2025, DAPO)
    dr_grpo  sum / (sequences × max_completion_length), and no std scaling  (Liu et al. 2025, Dr. GRPO)

DAPO's other change, clip-higher (ε_high = 0.28 > ε), is not part of `loss_type="dapo"`: it is
`epsilon_high`, and it acts only when a batch is reused for several updates (μ = num_iterations ≥ 2).
With μ = 1 the policy being updated is the one that sampled, ρ = 1 exactly, and no clip bound is
ever reached (grpo_lab.config warns when epsilon_high is set with μ = 1).

No value model: the group's mean reward is the baseline. That is GRPO's memory saving over PPO.
"""

from __future__ import annotations

from typing import Literal

import torch

LossType = Literal["grpo", "bnpo", "dapo", "dr_grpo"]
ScaleRewards = Literal["group", "batch", "none"]


# --------------------------------------------------------------------------- advantages
def compute_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale_rewards: ScaleRewards = "group",
    eps: float = 1e-4,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Outcome-supervised advantages, one per completion, shared by all its tokens.

    `rewards` is (B,) with the G completions of each prompt contiguous (B = prompts × G).
    Â_i = r_i - mean(r_group), divided by std(r_group) ("group", DeepSeekMath Eq. 3), by the
    batch's std ("batch") or not at all ("none", Dr. GRPO §3.2). eps keeps a group whose rewards
    are all equal at Â = 0 instead of 0/0, as in TRL.
    """
    if rewards.numel() % group_size != 0:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    std_group = grouped.std(dim=1, keepdim=True)  # unbiased, as torch and TRL do
    advantages = grouped - mean
    if scale_rewards == "group":
        advantages = advantages / (std_group + eps)
    elif scale_rewards == "batch":
        std_batch = rewards.std() if rewards.numel() > 1 else torch.zeros((), dtype=rewards.dtype)
        advantages = advantages / (std_batch + eps)
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards={scale_rewards!r}; allowed: 'group', 'batch', 'none'")
    zero_std = torch.isclose(std_group, torch.zeros_like(std_group)).float()
    stats = {
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if rewards.numel() > 1 else 0.0,  # TRL 1.16: the batch's std
        "frac_reward_zero_std": zero_std.mean().item(),
    }
    return advantages.reshape(-1), stats


# ----------------------------------------------------------------------- log-probs
def selective_log_probs(logits: torch.Tensor, token_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(token_ids) from logits (B, T, V) → (B, T), without keeping a log-softmax copy.

    log_softmax(x)[y] = x[y] - logsumexp(x). Gathering first and subtracting the logsumexp keeps
    only (B, T) tensors alive instead of a second (B, T, V) one. Rows go in blocks of at most
    `_BLOCK_ELEMENTS` logits, which bounds the transient float32 copy for a 150k-token vocabulary
    (one sequence at a time) while a small vocabulary takes the whole batch in a few operations.
    Logits are divided by the sampling temperature so that these are the log-probs of the policy
    that sampled (as TRL does).
    """
    out = torch.empty(token_ids.shape, dtype=torch.float32, device=logits.device)
    for rows in _row_blocks(logits):
        block = logits[rows].float()
        if temperature != 1.0:
            block = block / temperature
        out[rows] = block.gather(-1, token_ids[rows].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(block, dim=-1)
    return out


@torch.no_grad()
def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-token entropy (B, T) of the sampling distribution, for logging only (no gradient)."""
    out = torch.empty(logits.shape[:2], dtype=torch.float32, device=logits.device)
    for rows in _row_blocks(logits):
        logp = torch.log_softmax(logits[rows].float() / temperature, dim=-1)
        out[rows] = -(logp.exp() * logp).sum(-1)
    return out


_BLOCK_ELEMENTS = 2**24  # 64 MB of float32 logits per block


def _row_blocks(logits: torch.Tensor) -> list[slice]:
    """Slices of rows holding at most _BLOCK_ELEMENTS logits each (at least one row)."""
    per_row = max(logits[0].numel(), 1) if logits.size(0) else 1
    rows = max(1, _BLOCK_ELEMENTS // per_row)
    return [slice(i, i + rows) for i in range(0, logits.size(0), rows)]


# ------------------------------------------------------------------------- the loss
def grpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    loss_type: LossType = "grpo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_per_token_logps: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    num_sequences: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO surrogate with a k3 KL penalty, aggregated as `loss_type` says.

    Shapes: log-probs and mask (B, T); advantages (B,). Returns (loss, stats).

    `num_items_in_batch` (dapo) and `num_sequences` (grpo, dr_grpo) let a caller that splits a
    batch into micro-batches normalise every piece by the whole batch's counts, so the summed
    gradient equals the full batch's. Left as None they are this batch's own counts, which is
    what TRL's GRPOTrainer computes for one batch (checked by tests/test_grpo_parity.py).
    """
    mask = completion_mask.to(per_token_logps.dtype)
    advantages = advantages.unsqueeze(1)  # (B, 1): Â_i is shared by every token of o_i
    epsilon_low = epsilon
    epsilon_high = epsilon if epsilon_high is None else epsilon_high

    # ρ_it = π_θ / π_old, in log space for stability (DeepSeekMath Eq. 3).
    ratio = torch.exp(per_token_logps - old_per_token_logps)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    # min(ρ Â, clip(ρ) Â): the PPO-style pessimistic bound (Schulman et al. 2017, Eq. 7).
    surrogate = torch.min(ratio * advantages, clipped_ratio * advantages)
    per_token_loss = -surrogate

    if beta != 0.0:
        if ref_per_token_logps is None:
            raise ValueError("beta != 0 needs ref_per_token_logps")
        # k3 estimator of KL(π_θ || π_ref) (DeepSeekMath Eq. 4): π_ref/π_θ - log(π_ref/π_θ) - 1 ≥ 0.
        log_ref_over_policy = ref_per_token_logps - per_token_logps
        kl = torch.exp(log_ref_over_policy) - log_ref_over_policy - 1
        per_token_loss = per_token_loss + beta * kl
    else:
        kl = None

    masked = per_token_loss * mask
    batch_size = per_token_logps.size(0)
    if loss_type == "grpo":  # 1/G Σ_i 1/|o_i| Σ_t (DeepSeekMath Eq. 3)
        per_sequence = masked.sum(-1) / mask.sum(-1).clamp(min=1.0)
        loss = per_sequence.sum() / (num_sequences or batch_size)
    elif loss_type in ("bnpo", "dapo"):
        # Σ tokens / active tokens. bnpo: of this batch; dapo: of the whole generation batch
        # (DAPO Eq. 8). They differ only when a generation batch is split into several optimiser
        # steps, which grpo-lab never does, so here dapo computes what bnpo computes.
        normalizer = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, dtype=mask.dtype)
        loss = masked.sum() / normalizer.clamp(min=1.0)
    elif loss_type == "dr_grpo":  # Σ tokens / (B × L_max), a constant (Dr. GRPO §3.2)
        if max_completion_length is None:
            max_completion_length = per_token_logps.size(1)
        loss = masked.sum() / ((num_sequences or batch_size) * max_completion_length)
    else:
        raise ValueError(f"loss_type={loss_type!r}; allowed: 'grpo', 'bnpo', 'dapo', 'dr_grpo'")

    # Statistics under TRL's names (docs/reference.md §5.1), token-averaged over the active tokens.
    with torch.no_grad():
        n_tokens = mask.sum().clamp(min=1.0)
        is_low_clipped = (ratio < 1 - epsilon_low) & (advantages < 0)
        is_high_clipped = (ratio > 1 + epsilon_high) & (advantages > 0)
        stats = {
            "clip_ratio/low_mean": (is_low_clipped.float() * mask).sum() / n_tokens,
            "clip_ratio/high_mean": (is_high_clipped.float() * mask).sum() / n_tokens,
            "clip_ratio/region_mean": ((is_low_clipped | is_high_clipped).float() * mask).sum() / n_tokens,
        }
        if kl is not None:
            stats["kl"] = (kl * mask).sum() / n_tokens
    return loss, stats
