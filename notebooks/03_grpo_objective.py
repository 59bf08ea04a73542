# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (grpo-lab)
#     language: python
#     name: grpo-lab
# ---

# %% [markdown]
# # 03 · The GRPO objective, by hand and in the library
#
# GRPO (DeepSeekMath, Eq. 3) maximises
#
# $$J(\theta) = \mathbb{E}\Big[\frac{1}{G}\sum_i \frac{1}{|o_i|}\sum_t \big(\min(\rho_{it}\hat A_i,\ \mathrm{clip}(\rho_{it}, 1-\varepsilon, 1+\varepsilon)\hat A_i) - \beta\,\mathrm{KL}_{it}\big)\Big]$$
#
# with the ratio $\rho_{it} = \pi_\theta / \pi_{old}$, the group-relative advantage
# $\hat A_i = (r_i - \mathrm{mean}(r)) / \mathrm{std}(r)$ and the k3 estimator
# $\mathrm{KL}_{it} = \pi_{ref}/\pi_\theta - \log(\pi_{ref}/\pi_\theta) - 1$.
# This notebook computes each piece by hand on a toy batch and checks it against `grpo_lab.grpo`.
#
#
# **Time.** Full mode: 12–19 s (two executions) on a 2-core AMD EPYC with AVX-512 shared with other jobs (an upper bound). A 2-core AVX2 laptop
# is slower; none was available to measure, but the project measured `make demo` at 9.4 min there
# vs 3.4 min on an idle AVX-512 CPU, so expect up to ≈ 2.8× these times.
# %%
# This notebook runs on the kernel "Python (grpo-lab)", the project's .venv (`make setup`).
# In any other Python (e.g. Colab) grpo_lab is missing, and this cell stops and says so: set
# INSTALL = True to pip-install grpo-lab into *this* interpreter (from GRPO_LAB_SOURCE, a clone
# or git URL, else the clone this notebook sits in).
INSTALL = False

import importlib.util

if importlib.util.find_spec("grpo_lab") is None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    if not INSTALL:
        raise ModuleNotFoundError(
            "grpo_lab is not installed in this kernel. Pick Kernel > Change Kernel > 'Python (grpo-lab)' "
            "(made by `make setup`), or set INSTALL = True above to pip-install grpo-lab into this interpreter.")
    source = os.environ.get("GRPO_LAB_SOURCE") or str(Path.cwd().parent)
    print(f"pip install {source} into {sys.executable}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", source])

from grpo_lab.notebook import setup_notebook

settings = setup_notebook()  # quiet progress bars and warnings; smoke mode and the runs directory
SMOKE, RUNS = settings.smoke, settings.runs

# %% [markdown]
# ## A toy batch: 2 prompts × G = 3 completions

# %%
# NBVAL_CHECK_OUTPUT
import torch

from grpo_lab.grpo import compute_advantages, grpo_loss

rewards = torch.tensor([1.0, 0.0, 0.0,    1.0, 1.0, 1.0])   # group 2: all right → no signal
advantages, stats = compute_advantages(rewards, group_size=3, scale_rewards="group")
by_hand = torch.cat([(g - g.mean()) / (g.std() + 1e-4) for g in rewards.view(2, 3)])
print("advantages:", [round(a, 3) for a in advantages.tolist()])
print("by hand:   ", [round(a, 3) for a in by_hand.tolist()])
print("frac_reward_zero_std:", stats["frac_reward_zero_std"], "(a group whose rewards are equal teaches nothing)")

# %% [markdown]
# ## The ratio, clipping and the k3 KL
#
# Log-probs of the completion tokens under π_θ, π_old and π_ref; completions have different lengths
# (the mask).

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
old = -torch.rand(6, 4) * 2
policy = (old + 0.3 * torch.randn(6, 4)).requires_grad_()
ref = old + 0.1 * torch.randn(6, 4)

ratio = torch.exp(policy - old)                                          # ρ
clipped = torch.clamp(ratio, 1 - 0.2, 1 + 0.2)
surrogate = torch.min(ratio * advantages[:, None], clipped * advantages[:, None])
kl = torch.exp(ref - policy) - (ref - policy) - 1                        # k3, ≥ 0
per_token = -(surrogate - 0.04 * kl)
by_hand = ((per_token * mask).sum(1) / mask.sum(1)).mean()               # "grpo": per sequence, then mean

loss, stats = grpo_loss(policy, old, advantages, mask, loss_type="grpo", epsilon=0.2, beta=0.04,
                        ref_per_token_logps=ref)
print(f"by hand {by_hand.item():.4f}   library {loss.item():.4f}")
print({k: round(float(v), 4) for k, v in stats.items()})

# %% [markdown]
# ## The four loss aggregations
#
# They differ only in how per-token losses are averaged, which sets the weight of each token in the
# gradient. On-policy (ρ = 1, nothing clipped) and without the KL term, a token's gradient is
# −Â × its weight, so |gradient| / |Â| reads the weight off. Rows 1 and 2 of the toy batch are both
# wrong answers of group 1 (Â = −0.577), one of 2 tokens and one of 3:
#
# - `grpo` averages within each sequence first, then over the 6 sequences: a token of the 2-token
#   answer weighs 1/(6·2), one of the 3-token answer 1/(6·3). A long wrong answer is penalised
#   less per token, so Dr. GRPO (Liu et al. 2025) found that wrong answers grow long under it.
# - `bnpo` and `dapo` divide by the number of tokens in the batch (here the same: 1/16);
#   `dr_grpo` by a constant, sequences × max length (1/(6·4)). Every token weighs the same.

# %%
# NBVAL_CHECK_OUTPUT
for loss_type in ("grpo", "bnpo", "dapo", "dr_grpo"):
    logps = old.clone().requires_grad_()                     # on-policy: π_θ = π_old, ρ = 1
    loss, _ = grpo_loss(logps, old, advantages, mask, loss_type=loss_type, epsilon=0.2, beta=0.0,
                        max_completion_length=4)
    loss.backward()
    short, long = (logps.grad[i, 0].abs().item() / advantages[i].abs().item() for i in (1, 2))
    print(f"{loss_type:8s} weight of one token: in the 2-token answer {short:.4f} (1/{1 / short:.0f}), "
          f"in the 3-token answer {long:.4f} (1/{1 / long:.0f})")

# %% [markdown]
# ## Why the printed loss is ~0 when μ = 1
#
# With one policy update per batch (μ = 1, DeepSeekMath's setting) π_old *is* π_θ at the update, so
# ρ = 1 exactly, and with zero-mean advantages the loss value is ~0. Its **gradient** is not:
# ∇ρ = ρ ∇log π_θ, the policy gradient. A printed loss near zero is expected (TRL issue #3452).

# %%
# NBVAL_CHECK_OUTPUT
on_policy = old.clone().requires_grad_()
full = torch.ones(6, 4)
loss, _ = grpo_loss(on_policy, on_policy.detach(), advantages, full, loss_type="grpo", beta=0.0)
loss.backward()
print(f"|loss| < 1e-6: {abs(loss.item()) < 1e-6}   gradient norm = {on_policy.grad.norm().item():.3f}")

# %% [markdown]
# ## No value model: GRPO's memory saving
#
# PPO trains a value model (a critic) as large as the policy; GRPO replaces it with the group's
# mean reward. For a model of P parameters trained with AdamW in bf16 with fp32 optimizer state,
# each trained copy costs about 16 bytes per parameter (weights, gradients, two Adam moments,
# master weights).

# %%
# NBVAL_CHECK_OUTPUT
for name, params in (("Qwen2.5-0.5B", 0.49e9), ("Qwen2.5-1.5B", 1.54e9), ("7B", 7e9)):
    policy_gb = params * 16 / 1e9
    print(f"{name:13s} policy {policy_gb:6.1f} GB   PPO adds a critic: +{policy_gb:6.1f} GB   GRPO: +0")

# %% [markdown]
# ## Takeaways
#
# - Advantages are **relative within a group**: a group where all answers are right (or all wrong)
#   gives no signal (`frac_reward_zero_std`).
# - The clipped ratio and the k3 KL are a few lines each; `grpo_lab/grpo.py` cites each equation,
#   and its loss and gradient equal TRL's GRPOTrainer's for all four aggregations
#   (`tests/test_grpo_parity.py`).
# - A loss near zero with μ = 1 is not a bug.
