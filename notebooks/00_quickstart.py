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
# # 00 · Quickstart: R1-Zero in the micro world
#
# DeepSeek-R1-Zero was trained with **pure reinforcement learning** from a base model: no supervised
# fine-tuning, only rule-based rewards for a correct answer and for the
# `<think> … </think> <answer> … </answer>` format. Three things happened during RL:
#
# 1. **accuracy rose** (AIME 2024 pass@1 from 15.6% to 71.0%),
# 2. **responses grew longer** — the model learned to spend more tokens thinking,
# 3. **reflection appeared more often** — "wait, wait… let me re-check" (the "aha moment").
#
# This notebook shows the whole experiment in grpo-lab's *micro world*, a 0.5M-parameter Llama that
# the project pretrained itself on sums of single digits: first the run that ships with the
# repository, then the same run trained on your machine, with its curves filling in as it trains.
# Nothing here rewards length or reflection: the rewards are accuracy (1 if the answer is right)
# plus 0.2 × format.
#
# **Time.** Reading the shipped run takes seconds. Training it is 500 RL steps and 11 exams: 3.4 min
# for `make demo` on an idle AVX-512 CPU and 9.4 min on a 2-core AVX2 laptop (the project's
# measurements); the shipped run itself took the time printed below, on a 2-core AMD EPYC with
# AVX-512, one thread, with another training job on the other core. Before it trains, this notebook
# measures a two-step probe on *your* machine and prints its own estimate. The committed outputs
# are a first run on a fresh clone (full mode, same machine and load): the whole notebook took
# 462 s, the probe said ≈ 8.4 min and the training took 7.4 min (445 s, `rl_seconds` in the run's
# summary.json). With the run already trained, the notebook runs in about 30 s.

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
# ## The recipe
#
# `grpo_lab/configs/micro_r1_zero.yaml` holds the whole recipe. The cell prints the parts that
# matter for GRPO (the names are DeepSeekMath's and TRL's; `docs/reference.md` has the formulas):
#
# - each step samples **G** answers to each of a few prompts at temperature **T**; an answer's
#   *advantage* is its reward minus its group's mean, divided by the group's standard deviation;
# - **lr** is the learning rate; **β** weighs a KL penalty that keeps the policy near the base
#   model; **ε** is PPO's clip range for the probability ratio of new to old policy;
# - `loss_type` says how per-token losses are averaged (`bnpo`: over all tokens of the batch;
#   notebook 03 compares the four ways); **μ** is the number of updates per batch of samples;
# - the **exam** samples k answers per held-out question at temperature T, keeping only the most
#   likely tokens that make up **top-p** of the probability. From the k answers: **pass@1** is the
#   mean share right (R1's "pass@1"), **cons@16** whether the majority answer of 16 is right, and
#   **pass@16** whether any of 16 is right (notebook 05).

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab import load_config
from grpo_lab.cli import packaged_config

recipe = load_config(packaged_config("micro_r1_zero"))
g = recipe.grpo
print(f"G = {g.group_size} samples per prompt, {g.prompts_per_step} prompts per step, T = {g.temperature}")
print(f"lr = {g.lr}, beta = {g.beta}, epsilon = {g.epsilon}, loss_type = {g.loss_type}, mu = {g.num_iterations}")
print(f"rewards: {dict(zip(recipe.rewards.functions, recipe.rewards.weights))}")
print(f"exam: k = {recipe.eval.k} samples per question, T = {recipe.eval.temperature}, top-p = {recipe.eval.top_p}")

# %% [markdown]
# ## The shipped run: the four R1-Zero panels
#
# The demo run as committed in `notebooks/shipped/`. Four panels: accuracy (R1's Figure 2),
# response length (Figure 3), reflection rate, and length split by right and wrong answers. Training
# curves are noisy, so each is drawn faintly with its exponential moving average on top ("EMA 50":
# an average over about the last 50 steps, weighted to recent ones); dots are the held-out exam
# (30 questions × 16 samples, every 50 steps).

# %%
from grpo_lab import load_run
from grpo_lab.plots import plot_r1_zero_figures

shipped = load_run(settings.shipped)
shipped.attrs["name"] = "the shipped run (seed 0)"
print(f"trained in {shipped.attrs['summary']['rl_seconds'] / 60:.1f} min "
      f"({shipped.attrs['summary']['steps']} steps, exams included)")
plot_r1_zero_figures(shipped)

# %% [markdown]
# ## Train it yourself
#
# The next cell trains the same recipe into `RUNS/micro_r1_zero-seed0` (`runs/` beside this
# notebook; the shipped copy is never touched). A finished run there is loaded, not retrained. An
# interrupted one (Kernel > Interrupt) continues from its last checkpoint when you run the cell
# again, exactly as `grpo-lab train --resume` would; `run_or_load(cfg, restart=True)` starts over
# (the earlier run is moved to `previous/`). Before it trains, a two-step probe says how long it will take here.

# %%
# NBVAL_IGNORE_OUTPUT
from grpo_lab.notebook import demo_config, run_status

cfg = demo_config(settings)  # the recipe above, seed 0, in RUNS/micro_r1_zero-seed0 (shortened in smoke mode)
status = run_status(cfg)
print(f"{cfg.run_dir}: {status}")

# %%
from grpo_lab.notebook import run_or_load

# A new run: a two-step probe prints "≈ N min on this machine" first (scaled by the shipped run's
# growth in step time as completions get longer). One row per RL step; eval/ columns at exam steps.
df = run_or_load(cfg, live=True, reference_run=None if SMOKE else settings.shipped)

# %% [markdown]
# ## Your run
#
# The same four panels for the run in `RUNS`, and its exam at step 0 and at the end. With the same
# seed it matches the shipped run bit for bit where torch runs the same CPU kernels (AVX512 for the
# shipped run; your run's `summary.json` records its level under `machine`). Other kernels round
# differently, and once a single sampled token flips the run goes elsewhere: seed 0 with AVX2
# kernels ends at pass@1 0.681 instead of 0.635, inside the same reference band (seeds differ by
# about ±0.05 pass@1, `docs/micro_world.md`).

# %%
fig = plot_r1_zero_figures(df)
fig

# %%
import pandas as pd

summary = df.attrs["summary"]
table = pd.DataFrame({"step 0": summary["step0"], "final": summary["final"]})
table["ratio"] = table["final"] / table["step 0"]
table.round(3)

# %% [markdown]
# ## What did the model learn to write?
#
# `ladder_rung` names the behaviour of an answer: a `direct` guess, a `one_shot` sum, `chunked`
# working (a few digits at a time), or chunked working that checks itself, `verified`
# ("wait , let me check"). The shares at step 0 and at the end, then two final answers to the first
# exam question: the first right one that checks itself, and the first wrong one.

# %%
from grpo_lab.evaluate import load_eval_samples
from grpo_lab.micro_world import ladder_rung

first, last = load_eval_samples(cfg.run_dir, "first"), load_eval_samples(cfg.run_dir, "last")
for name, samples in (("step 0", first), (f"step {last.attrs['step']}", last)):
    shares = samples["completion"].map(ladder_rung).value_counts(normalize=True).round(2).to_dict()
    print(f"{name:9s} behaviours: {shares}")
q0 = last[last.question_idx == 0]
checked_right = q0[q0.correct & (q0.completion.map(ladder_rung) == "verified")]
wrong = q0[~q0.correct]
for label, rows in (("right, checks itself", checked_right), ("wrong", wrong)):
    if len(rows):
        print(f"\nquestion 0, sample {rows.iloc[0].sample_idx} ({label}):{rows.iloc[0].completion}")

# %% [markdown]
# In the committed run, read the two checks. Each re-adds the last chunk one digit at a time,
# starting from the sum carried in. In the right answer the second chunk's sum was a slip (43) and
# the check corrected it (45). In the wrong one the first chunk's sum was the slip (1 + 6 + 8 + 9 is
# 24, not 23): the check starts from that 23 and carries the error to the answer. A check of the
# last chunk cannot catch a slip made before it. Notebook 06 counts how often a check changes a
# value, and tests whether the model's accuracy depends on checking.
#
# ## Takeaways
#
# - RL on a correctness reward alone made the model **more accurate**, and it got there by
#   **writing more**: it left guesses and one-shot sums for chunked working, and then for working
#   that **checks itself**. Length and reflection were never rewarded; they paid because they
#   raised accuracy.
# - These behaviours were already in the base model, rarely (look at the step-0 shares). RL
#   changed how often they are used — what the R1-Zero reproductions report for real models.
# - Next: `01_base_model_and_template` looks at the base model, `03_grpo_objective` at the loss,
#   `04_r1_zero_training` at a run in detail.
