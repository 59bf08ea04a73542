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
# # 10 · Is my run normal?
#
# A GRPO run can look busy — steps tick, the loss prints — and still learn nothing. The questions
# people ask most about their R1-Zero reproductions are "does my run look like yours?" and "why is
# nothing happening?". This notebook answers both for a run of the micro world, offline:
#
# 1. **the reference band**: the project ships the exams of its own acceptance runs (3 seeds of the
#    demo recipe, and of the coin-flip control); a run is held against the band of its recipe at
#    every exam, per phenomenon (accuracy, response length, reflection);
# 2. **the health panel**: named checks on every step's metrics (completions cut at the length cap,
#    groups with no reward spread, format reward stuck at zero, answers that cannot be parsed,
#    entropy collapse, KL blow-up, non-finite values), each with what it means and what to try;
# 3. **a watched question**: one exam question's answers at every exam — where the reasoning got
#    longer, where a check ("wait, let me check") first appeared;
# 4. **a run built to fail** (a length cap too small for the answers), to see the alerts fire, and
#    the two runs compared side by side.

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
# ## Parameters

# %%
# CI runs every notebook in a smoke mode (GRPO_LAB_SMOKE=1): few steps and samples, same code path.
SEED = 0                             # the demo recipe's seed; notebooks 00, 04, 05 and 06 share this run
BAD_STEPS = 4 if SMOKE else 40       # the run built to fail
PATIENCE = 2 if SMOKE else 10        # health.patience: steps in a row before a check fires (default 10)

# %% [markdown]
# ## The run
#
# The demo recipe (`grpo-lab demo`), seed 0: the run notebooks 00, 04, 05 and 06 share. If it is
# already in `runs/`, it is loaded (`run_or_load`), else trained (about 4 minutes on a laptop CPU).

# %%
from grpo_lab import watched_answers
from grpo_lab.notebook import demo_config, run_or_load

cfg = demo_config(settings, seed=SEED)  # the demo recipe in runs/ (shortened in smoke mode)
RUN_DIR = cfg.run_dir
df = run_or_load(cfg, live=True)
print(f"{len(df)} logged steps, exams at steps {df.loc[df['eval/pass@1'].notna(), 'step'].tolist()}")

# %% [markdown]
# ## 1. The run against the reference band
#
# The grey band at each exam is the range of the 3 reference seeds, widened by two standard errors
# of one exam (30 questions): one exam of a new seed is that noisy, so a normal run of this recipe
# should sit inside it. The reference is chosen by the run's *recipe* (everything but the seed,
# the number of steps, the exam's sample count and the logging); a run with another recipe is told
# which keys differ instead of being compared (section 4).

# %%
from grpo_lab.bands import compare_to_band, plot_band

plot_band(df)

# %%
table = compare_to_band(df)
print(f"reference: {table.attrs['reference']}")
table.pivot(index="step", columns="phenomenon", values="position")

# %% [markdown]
# ## 2. The health panel
#
# Every check runs on every step's metrics during training (the progress bar shows `health=ok` or
# the checks that fired, a warning says what it means and what to try, `events.jsonl` and wandb get
# the alert). For a finished run, `health_report` reads `events.jsonl`, or replays the checks over
# `metrics.jsonl` for runs made before the checks existed; a check whose metric that run never
# logged says so instead of "ok". The thresholds are in the config (`health:`).

# %%
from grpo_lab.health import health_report

health_report(RUN_DIR)[["status", "condition"]]

# %% [markdown]
# ## 3. A watched question
#
# `eval.watch` names a few exam questions (default: the first three) whose answers are logged at
# every exam (`watched.jsonl`, a wandb table "watched"). `watched_answers` returns one question across
# the exams: pass@1 over its samples, the mean length, the share of samples with a reflection ("wait,
# let me check"), and marks where the reasoning first got 1.5× longer than at step 0 and where a check
# first appeared. For runs without `watched.jsonl` it reads the exam's samples (`eval/`).

# %%
watched = watched_answers(RUN_DIR, 0)
print(f"question {watched.attrs['question_idx']}: {watched.attrs['question']}")
watched.drop(columns="example")

# %%
first, last = watched.step.min(), watched.step.max()
for _, row in watched[(watched.step == first) | watched.first_check | watched.longer | (watched.step == last)].iterrows():
    marks = [m for m, on in (("start", row.step == first), ("first check", row.first_check),
                             ("got longer", row.longer), ("end", row.step == last)) if on]
    print(f"step {row.step} ({', '.join(marks)}), pass@1 {row['pass@1']:.2f}, one answer:")
    print("   ", row.example, "\n")

# %% [markdown]
# ## 4. A run built to fail
#
# The same recipe with `grpo.max_new_tokens = 4`: the shortest complete answer in the micro world
# (`<think> … </think> <answer> … </answer>`) takes 7 tokens, so every completion is cut first. It
# earns no reward, so every group's rewards are equal (no signal), the format reward stays at zero,
# and no answer can be read. The checks fire after `health.patience` steps, each once. (With a cap of
# 8 the model learns to fit its answers in and the checks stay quiet: they judge what the run does.)

# %%
import warnings

from grpo_lab import load_config
from grpo_lab.config import packaged_config
from grpo_lab.trainer import GRPOTrainer

BAD_DIR = RUNS / f"too_short-seed{SEED}"
bad_cfg = load_config(packaged_config("micro_r1_zero"), [
    f"grpo.seed={SEED}", "grpo.max_new_tokens=4", f"grpo.steps={BAD_STEPS}", "eval.every=0", "eval.k=4",
    f"health.patience={PATIENCE}", f"health.format_stuck_steps={PATIENCE}", f"tracking.run_dir={BAD_DIR}",
    "tracking.progress=false", "tracking.save_every=0"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bad = GRPOTrainer(bad_cfg, run_dir=BAD_DIR)
    bad_df = bad.train()
print("progress bar shows: health =", bad.monitor.status())
for w in caught:
    if "run health" in str(w.message):
        print("-", str(w.message)[:160], "…")

# %%
health_report(BAD_DIR)[["status", "condition", "what to try"]]

# %% [markdown]
# Its recipe is not the reference's, so it is not held against the band: it is told why.

# %%
from grpo_lab.bands import band_summary_lines

print("\n".join(band_summary_lines(bad_df)))

# %% [markdown]
# ## 5. Two runs side by side
#
# `grpo_lab.compare_runs` (or `grpo-lab compare RUN RUN`) puts the final exams side by side with the
# differences from the first run and a t statistic paired over the exam questions (|t| > 2: beyond
# the exam's noise), lists the config keys in which the runs differ, and overlays their curves.

# %%
from grpo_lab import compare_runs

comparison = compare_runs(RUN_DIR, BAD_DIR)
print("\n".join(f"{name} differs in: {', '.join(d.split(':')[0] for d in diff)}"
                for name, diff in comparison.differences.items()))
comparison.table[["pass@1", "mean_length", "Δ pass@1", "t pass@1"]]

# %%
comparison.figure
