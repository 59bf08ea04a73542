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
# # 04 · A full R1-Zero run, watched live
#
# One run of the micro R1-Zero recipe with wandb (offline: `wandb sync` it later), a live view that
# redraws while it trains, the reward / accuracy / length / reflection curves, and the completions
# table. Notebooks 00, 05 and 06 use the same run (whichever trains it first, the others load it).
#
# **Time.** Training is 500 RL steps and 11 exams: 3.4 min for `make demo` on an idle AVX-512 CPU,
# 9.4 min on a 2-core AVX2 laptop (the project's measurements); the committed outputs were made on
# a 2-core AMD EPYC with AVX-512 shared with other jobs. The training cell below first measures your
# machine. With the run already trained, this notebook ran in 30 s (full mode, same machine).

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
from grpo_lab.notebook import demo_config

cfg = demo_config(settings)  # the demo recipe (`make demo`), seed 0, in RUNS/micro_r1_zero-seed0
print(cfg.to_yaml())

# %% [markdown]
# ## What you are about to reproduce
#
# The shipped copy of this run (`notebooks/shipped/`), drawn first so that its curves are on the
# page while your run trains: accuracy, response length, reflection, and length by correctness.

# %%
from grpo_lab import load_run
from grpo_lab.plots import plot_r1_zero_figures

shipped = load_run(settings.shipped)
shipped.attrs["name"] = "the shipped run (seed 0)"
plot_r1_zero_figures(shipped)

# %% [markdown]
# ## Train, with a live view
#
# `run_or_load(cfg, live=True)` adds `LivePlot`, a trainer callback: a progress line (step, reward,
# accuracy, length, reflection, seconds per step, time left) updated every step, and the four
# panels redrawn every 10 steps, in place. The run is also logged to `RUNS/micro_r1_zero-seed0/
# metrics.jsonl` and to wandb. A finished run is loaded; an interrupted one resumes from its last
# checkpoint when this cell runs again (as `grpo-lab train --resume`); `restart=True` starts over.

# %%
# NBVAL_IGNORE_OUTPUT
from grpo_lab.notebook import run_status

status = run_status(cfg)
print(f"{cfg.run_dir}: {status}")

# %%
from grpo_lab.notebook import run_or_load

# A new run: a two-step probe prints "≈ N min on this machine" first (scaled by the shipped run's
# growth in step time as completions get longer).
df = run_or_load(cfg, live=True, reference_run=None if SMOKE else settings.shipped)

# %%
plot_r1_zero_figures(df)

# %% [markdown]
# ## The per-step table
#
# Every step's metrics under TRL's names (so dashboards carry over): `reward`, `rewards/<fn>/mean`,
# `completions/mean_length`, `kl`, `entropy`, `clip_ratio/*`, plus grpo-lab's `accuracy` and
# `phenomena/reflection_rate`; exam rows carry `eval/…`.

# %%
cols = ["reward", "accuracy", "completions/mean_length", "phenomena/reflection_rate", "kl", "entropy", "step_time"]
df.set_index("step")[cols].dropna().iloc[:: max(1, len(df) // 10)].round(3)

# %% [markdown]
# ## Completions as the run wrote them
#
# Every 50 steps the run logs its sampled completions (`completions.jsonl`). Two per logged step
# from the last three, printed whole, so the working and the check are readable:

# %%
from grpo_lab import load_completions

completions = load_completions(cfg.run_dir)
for row in completions.groupby("step").head(2).tail(6).itertuples():
    print(f"step {row.step}, reward {row.reward:.1f}, {row.length} tokens:{row.completion}")

# %% [markdown]
# ## Takeaways
#
# - Only accuracy (and format) is rewarded, yet the response length and the reflection rate rise
#   with it: checking a chunk catches the model's own slips, so the policy that checks is the
#   more accurate one (notebook 06 tests this causally: with the check forbidden at decoding, the
#   trained policy keeps only part of its pass@1 gain). Look at *when* each curve rises: accuracy
#   and length move first (guesses give way to chunked working), then checking takes over and holds
#   for the rest of the run (`docs/micro_world.md`).
# - `kl` is the drift from the base model that β = 0.04 penalises, and `entropy` how sure the
#   policy is of each token; the table above shows both over the run.
# - Everything is in `RUNS/micro_r1_zero-seed0`: `grpo_lab.load_run(...)` gives this DataFrame back anytime.
