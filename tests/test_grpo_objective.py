"""Behaviour of the GRPO objective in grpo_lab.grpo (docs/reference.md §2), on hand-made tensors.

Parity with TRL's GRPOTrainer is in tests/test_grpo_parity.py; these tests pin down what each
piece means, with numbers one can check by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

from grpo_lab.grpo import compute_advantages, entropy_from_logits, grpo_loss, selective_log_probs

LOSS_TYPES = ["grpo", "bnpo", "dapo", "dr_grpo"]


def per_token(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# ----------------------------------------------------------------------------- advantages
def test_group_advantages_are_zero_mean_unit_std_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.3, -1.2, 2.0, 0.7, 5.0, 5.5, 4.0, 7.0])
    advantages, stats = compute_advantages(rewards, group_size=4, scale_rewards="group")
    groups = advantages.view(3, 4)
    torch.testing.assert_close(groups.mean(dim=1), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(groups.std(dim=1), torch.ones(3), atol=1e-3, rtol=0)  # eps = 1e-4 in the denominator
    assert stats["frac_reward_zero_std"] == 0.0
    assert stats["reward"] == pytest.approx(rewards.mean().item())


def test_group_advantage_depends_only_on_its_own_group():
    a, _ = compute_advantages(torch.tensor([1.0, 0.0, 2.0, 3.0]), group_size=2)
    b, _ = compute_advantages(torch.tensor([1.0, 0.0, 200.0, -3.0]), group_size=2)
    torch.testing.assert_close(a[:2], b[:2])


def test_equal_rewards_give_zero_advantage_and_are_counted_in_frac_reward_zero_std():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    advantages, stats = compute_advantages(rewards, group_size=4, scale_rewards="group")
    assert torch.equal(advantages[:8], torch.zeros(8))  # no NaN from 0 / 0
    assert advantages[8:].abs().min() > 0
    assert stats["frac_reward_zero_std"] == pytest.approx(2 / 3)


def test_none_scaling_is_reward_minus_group_mean():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0, 5.0])
    advantages, _ = compute_advantages(rewards, group_size=3, scale_rewards="none")
    torch.testing.assert_close(advantages, per_token([2 / 3, -1 / 3, -1 / 3, -8 / 3, 1 / 3, 7 / 3]))


def test_batch_scaling_divides_by_the_batch_std():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0, 5.0])
    advantages, _ = compute_advantages(rewards, group_size=3, scale_rewards="batch")
    centred, _ = compute_advantages(rewards, group_size=3, scale_rewards="none")
    torch.testing.assert_close(advantages, centred / (rewards.std() + 1e-4))


def test_rewards_that_do_not_split_into_groups_raise():
    with pytest.raises(ValueError, match="groups of 4"):
        compute_advantages(torch.zeros(6), group_size=4)


def test_unknown_reward_scaling_raises():
    with pytest.raises(ValueError, match="scale_rewards"):
        compute_advantages(torch.zeros(4), group_size=2, scale_rewards="std")


# ------------------------------------------------------------------------------ log-probs
def test_selective_log_probs_is_log_softmax_then_gather_with_temperature():
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(3, 5, 11, generator=g)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    for temperature in (1.0, 0.6, 1.7):
        expected = torch.log_softmax(logits / temperature, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(selective_log_probs(logits, ids, temperature), expected, atol=1e-6, rtol=1e-6)


def test_selective_log_probs_carries_the_gradient_of_log_softmax():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 7, generator=g, requires_grad=True)
    ids = torch.randint(0, 7, (2, 3), generator=g)
    (grad_ours,) = torch.autograd.grad(selective_log_probs(logits, ids, 0.8).sum(), logits)
    reference = torch.log_softmax(logits / 0.8, -1).gather(-1, ids.unsqueeze(-1)).sum()
    (grad_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-6, rtol=0)


def test_selective_log_probs_are_fp32_for_bf16_logits():
    logits = torch.randn(1, 4, 9).to(torch.bfloat16)
    ids = torch.zeros(1, 4, dtype=torch.long)
    out = selective_log_probs(logits, ids)
    assert out.dtype == torch.float32
    expected = torch.log_softmax(logits.float(), -1)[..., 0]
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_entropy_of_uniform_logits_is_log_vocabulary_size():
    entropy = entropy_from_logits(torch.full((2, 3, 50), 0.7))
    torch.testing.assert_close(entropy, torch.full((2, 3), math.log(50)))


def test_entropy_matches_definition_with_temperature_and_has_no_gradient():
    logits = torch.randn(2, 3, 6, requires_grad=True)
    entropy = entropy_from_logits(logits, temperature=0.5)
    p = torch.softmax(logits.detach() / 0.5, -1)
    torch.testing.assert_close(entropy, -(p * p.log()).sum(-1), atol=1e-6, rtol=0)
    assert not entropy.requires_grad


# ---------------------------------------------------------------------- the μ = 1 puzzle
def test_on_policy_loss_is_zero_yet_its_gradient_is_not():
    """docs/reference.md §2.5 / TRL issue #3452: with μ = 1 the old policy is the current one, ρ = 1, and
    with zero-mean group advantages and equal lengths the grpo loss is -mean(Â) = 0 exactly; the
    gradient of ρ is ∇log π, so the gradient is the policy gradient -1/G Σ_i Â_i/|o_i| Σ_t ∇log π."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, 10, generator=g, requires_grad=True)
    ids = torch.randint(0, 10, (4, 5), generator=g)
    logps = selective_log_probs(logits, ids)
    advantages, _ = compute_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), group_size=4)
    mask = torch.ones(4, 5)

    loss, stats = grpo_loss(logps, logps.detach(), advantages, mask, loss_type="grpo", beta=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert stats["clip_ratio/region_mean"] == 0.0
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad.abs().max() > 1e-3

    logps = selective_log_probs(logits, ids)
    policy_gradient_surrogate = -((advantages[:, None] * logps).sum(-1) / 5).mean()
    (expected,) = torch.autograd.grad(policy_gradient_surrogate, logits)
    torch.testing.assert_close(grad, expected, atol=1e-7, rtol=1e-5)


# ------------------------------------------------------------------------------ clipping
def one_token_loss(log_ratio: float, advantage: float, **kwargs):
    logp = torch.tensor([[log_ratio]], requires_grad=True)
    loss, stats = grpo_loss(logp, torch.zeros(1, 1), torch.tensor([advantage]), torch.ones(1, 1), **kwargs)
    (grad,) = torch.autograd.grad(loss, logp)
    return loss.item(), grad.item(), stats


def test_ratio_above_one_plus_epsilon_with_positive_advantage_has_zero_gradient():
    loss, grad, stats = one_token_loss(math.log(1.5), 2.0, epsilon=0.2)
    assert grad == 0.0
    assert loss == pytest.approx(-1.2 * 2.0)  # the clipped value (1 + ε) Â
    assert stats["clip_ratio/high_mean"] == 1.0 and stats["clip_ratio/low_mean"] == 0.0
    assert stats["clip_ratio/region_mean"] == 1.0


def test_ratio_below_one_minus_epsilon_with_negative_advantage_has_zero_gradient():
    loss, grad, stats = one_token_loss(math.log(0.5), -1.0, epsilon=0.2)
    assert grad == 0.0
    assert loss == pytest.approx(0.8)
    assert stats["clip_ratio/low_mean"] == 1.0 and stats["clip_ratio/high_mean"] == 0.0


@pytest.mark.parametrize(("ratio", "advantage"), [(1.5, -1.0), (0.5, 1.0), (1.1, 1.0), (0.9, -1.0)])
def test_pessimistic_side_and_inside_the_trust_region_keep_the_gradient(ratio, advantage):
    loss, grad, stats = one_token_loss(math.log(ratio), advantage, epsilon=0.2)
    assert loss == pytest.approx(-ratio * advantage)
    assert grad == pytest.approx(-ratio * advantage)  # d(-ρÂ)/d log π = -ρÂ
    assert stats["clip_ratio/region_mean"] == 0.0


def test_epsilon_high_moves_only_the_upper_clip():
    ratio = 1.25  # between 1 + 0.2 and 1 + 0.28
    _, grad, stats = one_token_loss(math.log(ratio), 1.0, epsilon=0.2)
    assert grad == 0.0 and stats["clip_ratio/high_mean"] == 1.0  # symmetric: clipped
    loss, grad, stats = one_token_loss(math.log(ratio), 1.0, epsilon=0.2, epsilon_high=0.28)
    assert grad == pytest.approx(-ratio) and stats["clip_ratio/high_mean"] == 0.0  # clip-higher: not
    assert loss == pytest.approx(-ratio)
    _, grad, stats = one_token_loss(math.log(0.79), -1.0, epsilon=0.2, epsilon_high=0.28)
    assert grad == 0.0 and stats["clip_ratio/low_mean"] == 1.0  # the lower bound is still 1 - ε


def test_clip_ratios_are_fractions_of_active_tokens():
    log_ratio = torch.log(per_token([[1.5, 1.0, 0.5, 1.5], [0.5, 1.5, 1.0, 0.5]]))
    mask = per_token([[1, 1, 1, 0], [1, 1, 1, 1]])  # the masked 1.5 is not counted
    _, stats = grpo_loss(log_ratio, torch.zeros(2, 4), per_token([1.0, -1.0]), mask, epsilon=0.2)
    # row 0 (Â > 0): 1.5 is high-clipped, 0.5 is not clipped (pessimistic side)
    # row 1 (Â < 0): both 0.5s are low-clipped, 1.5 is not
    assert stats["clip_ratio/high_mean"].item() == pytest.approx(1 / 7)
    assert stats["clip_ratio/low_mean"].item() == pytest.approx(2 / 7)
    assert stats["clip_ratio/region_mean"].item() == pytest.approx(3 / 7)


# ------------------------------------------------------------------------------------ KL
def test_k3_kl_is_nonnegative_and_matches_its_formula():
    beta = 0.5
    for policy in torch.linspace(-6, 0, 13):
        for ref in torch.linspace(-6, 0, 13):
            logp = policy.view(1, 1)
            loss, stats = grpo_loss(
                logp, logp, torch.zeros(1), torch.ones(1, 1), beta=beta, ref_per_token_logps=ref.view(1, 1)
            )
            d = (ref - policy).item()
            assert stats["kl"].item() >= 0.0
            assert stats["kl"].item() == pytest.approx(math.exp(d) - d - 1, abs=1e-5)
            assert loss.item() == pytest.approx(beta * stats["kl"].item(), abs=1e-6)  # Â = 0: only the KL


def test_kl_is_exactly_zero_and_changes_nothing_when_reference_equals_policy():
    g = torch.Generator().manual_seed(0)
    logps = -3 * torch.rand(3, 4, generator=g)
    old = logps + 0.1 * torch.randn(3, 4, generator=g)
    advantages, mask = per_token([1.0, -0.5, 0.2]), torch.ones(3, 4)
    with_kl, stats = grpo_loss(logps, old, advantages, mask, beta=0.04, ref_per_token_logps=logps.clone())
    without_kl, _ = grpo_loss(logps, old, advantages, mask, beta=0.0)
    assert stats["kl"].item() == 0.0
    assert with_kl.item() == without_kl.item()


def test_kl_pulls_the_policy_towards_the_reference():
    logp = torch.tensor([[-1.0]], requires_grad=True)
    loss, _ = grpo_loss(logp, logp.detach(), torch.zeros(1), torch.ones(1, 1), beta=1.0,
                        ref_per_token_logps=torch.tensor([[-2.0]]))
    (grad,) = torch.autograd.grad(loss, logp)
    assert grad.item() > 0  # gradient descent lowers log π towards log π_ref
    assert grad.item() == pytest.approx(1 - math.exp(-1.0))  # d/dx (e^(r-x) - (r-x) - 1) = 1 - e^(r-x)


def test_beta_without_reference_log_probs_raises():
    with pytest.raises(ValueError, match="ref_per_token_logps"):
        grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2), beta=0.04)


# ------------------------------------------------------------------------- aggregations
# A 2 × 3 batch by hand. Ratios ρ (all inside [0.8, 1.2], so nothing is clipped), Â = (1, -2),
# and the second sequence has 2 tokens:
#     ρ = [[1.0, 1.1, 0.9],       per-token loss -ρÂ = [[-1.0, -1.1, -0.9],
#          [1.05, 0.95, pad]]                            [ 2.1,  1.9,  pad]]
# token sums: -3.0 and 4.0 (total 1.0 over 5 active tokens).
RATIOS = [[1.0, 1.1, 0.9], [1.05, 0.95, 1.0]]
HAND_MASK = [[1, 1, 1], [1, 1, 0]]
HAND_ADVANTAGES = [1.0, -2.0]


def hand_loss(loss_type, **kwargs):
    logps = torch.log(per_token(RATIOS)).requires_grad_()
    loss, _ = grpo_loss(logps, torch.zeros(2, 3), per_token(HAND_ADVANTAGES), per_token(HAND_MASK),
                        loss_type=loss_type, epsilon=0.2, **kwargs)
    (grad,) = torch.autograd.grad(loss, logps)
    return loss.item(), grad


@pytest.mark.parametrize(
    ("loss_type", "kwargs", "expected"),
    [
        ("grpo", {}, (-3.0 / 3 + 4.0 / 2) / 2),  # mean of per-sequence means = 0.5
        ("bnpo", {}, 1.0 / 5),  # token sum / active tokens = 0.2
        ("dapo", {}, 1.0 / 5),  # one generation batch: same as bnpo
        ("dapo", {"num_items_in_batch": 10}, 1.0 / 10),  # normalised by the whole generation batch
        ("dr_grpo", {"max_completion_length": 4}, 1.0 / (2 * 4)),  # constant B × L_max = 0.125
        ("dr_grpo", {}, 1.0 / (2 * 3)),  # L_max defaults to the padded width
    ],
)
def test_hand_computed_aggregation(loss_type, kwargs, expected):
    loss, _ = hand_loss(loss_type, **kwargs)
    assert loss == pytest.approx(expected, abs=1e-6)


def test_per_token_weights_of_each_aggregation():
    """d loss / d log π_t = -ρ_t Â_i × weight: grpo weights a token by 1/(G |o_i|) (short answers
    get larger updates: Dr. GRPO's length bias), bnpo/dapo by 1/(active tokens), dr_grpo by the
    constant 1/(B L_max)."""
    base = -per_token(RATIOS) * per_token(HAND_ADVANTAGES)[:, None] * per_token(HAND_MASK)
    lengths = per_token([3, 2])[:, None]
    torch.testing.assert_close(hand_loss("grpo")[1], base / (2 * lengths))
    torch.testing.assert_close(hand_loss("bnpo")[1], base / 5)
    torch.testing.assert_close(hand_loss("dapo")[1], base / 5)
    torch.testing.assert_close(hand_loss("dr_grpo", max_completion_length=4)[1], base / 8)


def test_dr_grpo_normaliser_ignores_completion_lengths():
    """Padding the batch wider or shortening a completion leaves dr_grpo's per-token weight at
    1/(B × max_completion_length); grpo's weight for the shortened sequence grows."""
    logps = torch.log(per_token(RATIOS))
    wide = torch.cat([logps, torch.zeros(2, 3)], dim=1)
    wide_mask = torch.cat([per_token(HAND_MASK), torch.zeros(2, 3)], dim=1)
    adv = per_token(HAND_ADVANTAGES)
    narrow_loss, _ = grpo_loss(logps, torch.zeros(2, 3), adv, per_token(HAND_MASK), loss_type="dr_grpo",
                               max_completion_length=8)
    wide_loss, _ = grpo_loss(wide, torch.zeros(2, 6), adv, wide_mask, loss_type="dr_grpo", max_completion_length=8)
    assert narrow_loss.item() == pytest.approx(wide_loss.item())
    assert narrow_loss.item() == pytest.approx(1.0 / 16)

    shorter = per_token([[1, 1, 1], [1, 0, 0]])
    weight = {}
    for loss_type in ("dr_grpo", "grpo"):
        x = logps.clone().requires_grad_()
        loss, _ = grpo_loss(x, torch.zeros(2, 3), adv, shorter, loss_type=loss_type, max_completion_length=8)
        (grad,) = torch.autograd.grad(loss, x)
        weight[loss_type] = (grad[1, 0] / (-RATIOS[1][0] * HAND_ADVANTAGES[1])).item()
    assert weight["dr_grpo"] == pytest.approx(1 / 16)
    assert weight["grpo"] == pytest.approx(1 / 2)  # 1 / (G × |o_2|) with |o_2| = 1


def test_masked_positions_do_not_matter():
    logps = torch.log(per_token(RATIOS))
    garbage = logps.clone()
    garbage[1, 2] = -50.0
    old = torch.zeros(2, 3)
    old_garbage = old.clone()
    old_garbage[1, 2] = 3.0
    for loss_type in LOSS_TYPES:
        a, _ = grpo_loss(logps, old, per_token(HAND_ADVANTAGES), per_token(HAND_MASK), loss_type=loss_type,
                         beta=0.1, ref_per_token_logps=old)
        b, _ = grpo_loss(garbage, old_garbage, per_token(HAND_ADVANTAGES), per_token(HAND_MASK),
                         loss_type=loss_type, beta=0.1, ref_per_token_logps=old_garbage)
        assert a.item() == pytest.approx(b.item(), abs=1e-7), loss_type


def test_unknown_loss_type_raises():
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2), loss_type="ppo")


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_micro_batches_with_global_normalisers_sum_to_the_full_batch(loss_type):
    g = torch.Generator().manual_seed(0)
    batch, width = 8, 5
    logits = torch.randn(batch, width, 9, generator=g, requires_grad=True)
    ids = torch.randint(0, 9, (batch, width), generator=g)
    lengths = torch.tensor([5, 1, 3, 5, 2, 4, 5, 3])
    mask = (torch.arange(width)[None] < lengths[:, None]).float()
    with torch.no_grad():
        start = selective_log_probs(logits, ids)
    old = start + 0.3 * torch.randn(batch, width, generator=g)
    ref = start + 0.3 * torch.randn(batch, width, generator=g)
    advantages, _ = compute_advantages(torch.randn(batch, generator=g), group_size=4)
    common = dict(loss_type=loss_type, epsilon=0.2, epsilon_high=0.28, beta=0.04, max_completion_length=6)

    def loss_of(rows, **normalisers):
        logps = selective_log_probs(logits[rows], ids[rows])
        loss, _ = grpo_loss(logps, old[rows], advantages[rows], mask[rows], ref_per_token_logps=ref[rows],
                            **common, **normalisers)
        return loss

    full = loss_of(slice(None))
    (full_grad,) = torch.autograd.grad(full, logits)
    normalisers = dict(num_items_in_batch=mask.sum(), num_sequences=batch)
    pieces = [loss_of(rows, **normalisers) for rows in (slice(0, 3), slice(3, 8))]  # uneven split
    (pieces_grad,) = torch.autograd.grad(sum(pieces), logits)
    assert sum(pieces).item() == pytest.approx(full.item(), abs=1e-6)
    torch.testing.assert_close(pieces_grad, full_grad, atol=1e-7, rtol=1e-5)
    assert full_grad.abs().max() > 0
