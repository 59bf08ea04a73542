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
# # 02 · Rule-based rewards, and what happens when the reward can be gamed
#
# R1-Zero used only **rule-based** rewards (R1 §2.2.2): an accuracy reward (is the final answer
# right?) and a format reward (is the reasoning inside `<think>…</think>` and the answer inside
# `<answer>…</answer>`?). No neural reward model — because a learned reward can be *hacked*. This
# notebook scores completions with grpo-lab's rewards, then trains with rewards that do not check
# the answer: one gives GRPO nothing to learn, the other is hacked — the policy satisfies the rule
# and stops solving the task.
#
#
# **Time.** Full mode, training its two 100-step runs (each shown live, each after a probe's
# estimate): 207 s on a 2-core AMD EPYC with AVX-512, one thread, another training job on the
# other core (506 s earlier on the same kind under a load average of ~5). A 2-core
# AVX2 laptop is slower; none was available to measure, but the project measured `make demo` at
# 9.4 min there vs 3.4 min on an idle AVX-512 CPU, so expect up to ≈ 2.8× this. With both runs in
# `runs/` they are loaded.
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

# %%
STEPS = 4 if SMOKE else 100
LR = 5e-4                      # 3x the main job's, so that 100 steps show where each reward leads
EVAL_K = 4 if SMOKE else 16

# %% [markdown]
# ## The rewards, on hand-written completions

# %%
# NBVAL_CHECK_OUTPUT
import pandas as pd

from grpo_lab.rewards import accuracy_reward, format_reward, language_consistency_reward, soft_format_reward

completions = [
    " <think> 7 + 1 = 8 . </think> <answer> 8 </answer>",
    " <think> 7 + 1 = 9 . </think> <answer> 9 </answer>",
    " <answer> 8 </answer>",
    " <think> 7 + 1 = 8 </think> <answer> 8 </answer> and more text",
    " <think> sieben plus eins 是 8 </think> <answer> \\boxed{8} </answer>",
]
prompts = ["User : 7 + 1 = ? Assistant :"] * len(completions)
answers = ["8"] * len(completions)
pd.DataFrame({
    "completion": completions,
    "accuracy": accuracy_reward(prompts, completions, answer=answers),
    "format": format_reward(prompts, completions),
    "soft_format": soft_format_reward(prompts, completions),
    "language_consistency": language_consistency_reward(prompts, completions),
})

# %% [markdown]
# The accuracy reward reads the `answer` column of the dataset (TRL's signature: every dataset
# column reaches the reward function as a keyword argument), takes the text of the last
# `<answer>…</answer>` (or a `\\boxed{…}` inside it), and grades with math-verify — exactly for plain
# numbers. The language-consistency reward (R1 §2.3.2) is the share of target-language words in
# the think part. Every word the micro model can write is English, so it cannot mix languages;
# notebook 08 shows what this reward does there.

# %% [markdown]
# ## Rewards that can be satisfied without solving the task
#
# Two runs of the micro R1-Zero recipe, each with a single reward that does not check the answer:
#
# - **format only.** The base model already writes the format almost always, so every sample
#   scores 1: within each group all rewards are equal, every advantage is 0
#   (`frac_reward_zero_std` = 1), and GRPO has nothing to learn from.
# - **language consistency only.** In the micro world every word is English, and the only words
#   an answer can put in its think part are the check phrase "wait , let me check"; plain
#   arithmetic has no words and scores 0 (see the table above). So this reward can be earned by
#   writing the check phrase, whether or not the sum is right.

# %%
from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.notebook import run_or_load


def one_reward_run(name, reward):
    cfg = load_config(packaged_config("micro_r1_zero"), [
        f"grpo.steps={STEPS}", f"grpo.lr={LR}", f"eval.k={EVAL_K}", f"eval.every={max(STEPS // 3, 1)}", f"name={name}",
        f"rewards.functions=[{reward}]", "rewards.weights=[1.0]", f"tracking.run_dir={RUNS}/02_{name}",
        "tracking.progress=false"])
    return run_or_load(cfg, live=True)

runs = {"format only": one_reward_run("format_only", "format"),
        "language consistency only": one_reward_run("language_only", "language_consistency")}

# %%
import pandas as pd

rows = {}
for name, df in runs.items():
    s, train = df.attrs["summary"], df.dropna(subset=["reward"])
    rows[name] = {"reward, first step": train["reward"].iloc[0], "reward, last step": train["reward"].iloc[-1],
                  "frac_reward_zero_std (mean)": train["frac_reward_zero_std"].mean(),
                  "exam pass@1, step 0": s["step0"]["pass@1"], "exam pass@1, final": s["final"]["pass@1"],
                  "reflection, step 0": s["step0"]["reflection_rate"], "reflection, final": s["final"]["reflection_rate"],
                  "length, step 0": s["step0"]["mean_length"], "length, final": s["final"]["mean_length"]}
pd.DataFrame(rows).round(3)

# %%
from grpo_lab.plots import compare_runs

compare_runs(runs, "eval/pass@1")

# %%
from grpo_lab.evaluate import load_eval_samples

hacked = load_eval_samples(f"{RUNS}/02_language_only", "last")
for row in hacked.head(3).itertuples():
    print(f"{'right' if row.correct else 'wrong'}:{row.completion}")

# %% [markdown]
# ## Takeaways
#
# - Rewards are plain functions `f(prompts, completions, **columns) -> list[float]`; a new one is a
#   few lines, and a function that raises or returns NaN is reported by name and completion index.
# - A reward that every sample already earns gives no signal: GRPO learns from differences
#   *within* a group (`frac_reward_zero_std`).
# - A reward with a loophole gets hacked: compare the language-only run's reward and reflection
#   rate with its exam pass@1 in the table. The policy learns to write the words the rule counts,
#   not to add. The same "wait , let me check" that emerges *with* higher accuracy when only
#   accuracy is rewarded (notebook 00) is worthless when the phrase itself is rewarded — which is
#   why R1-Zero rewarded only checkable outcomes (and why R1 adds the language reward to accuracy
#   rather than using it alone).
