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
# # 05 · AIME-style evaluation: pass@1 over 16 samples, cons@16, pass@k
#
# R1 reports **pass@1** as the mean correctness over k sampled answers per question (k = 16 for
# AIME, temperature 0.6, top-p 0.95), **cons@k** as the correctness of the majority-voted answer, and
# pass@k (any of k right) with the unbiased estimator 1 − C(n−c, k)/C(n, k). This notebook reads the
# exams that the demo run (notebooks 00 and 04) logged for the base model (step 0) and for the
# trained policy (the last step), so its numbers are the ones 00 shows; then it re-runs the exam
# at other temperatures, with the trainer's own seeds, to see how much the numbers depend on them.
#
# **Time.** Full mode with the demo run trained: 51 s (six exams of 30 × 16 samples) on a 2-core
# AMD EPYC with AVX-512 shared with other jobs (an upper bound; a 2-core AVX2 laptop is slower: the
# project measured `make demo` 2.8× slower there, 9.4 vs 3.4 min). Without the run it is trained
# first, shown live (notebook 04 estimates how long).

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
TEMPERATURES = [0.6, 1.0] if SMOKE else [0.2, 0.6, 1.0]

# %% [markdown]
# ## pass@k from n samples: the unbiased estimator

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab.evaluate import pass_at_k

for c in (0, 1, 4, 16):
    print(f"n=16, c={c:2d}: " + ", ".join(f"pass@{k}={pass_at_k(16, c, k):.3f}" for k in (1, 2, 4, 8, 16)))

# %% [markdown]
# ## Base model vs trained policy: the run's own exams
#
# The demo run sat the exam at step 0, every 50 steps, and at the end, and logged every sample.
# Its step-0 exam *is* the base model's (LoRA's adapters start at zero, so the policy at step 0
# computes exactly what the base model does). Reading the logged exams, rather than sampling again,
# keeps one set of numbers for one model: these are the numbers notebook 00 prints.

# %%
from grpo_lab.notebook import demo_config, run_or_load

cfg = demo_config(settings)
df = run_or_load(cfg, live=True)           # loads the demo run; trains it first if it is missing
K = cfg.eval.k
steps = {"base": 0, "trained": int(df.attrs["summary"]["steps"])}
exams = df.set_index("step").loc[list(steps.values())]

# %%
import pandas as pd

keys = ["pass@1", f"cons@{K}", "pass@2", "pass@4", f"pass@{K}", "mean_length", "reflection_rate"]
pd.DataFrame({name: {k: exams.loc[step, f"eval/{k}"] for k in keys} for name, step in steps.items()}).round(3)

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(5, 3.5))
ax = fig.subplots()
ks = [k for k in (1, 2, 4, 8, 16) if k <= K]
for name, step in steps.items():
    ax.plot(ks, [exams.loc[step, f"eval/pass@{k}"] for k in ks], marker="o", label=name)
ax.set_xscale("log", base=2)
ax.set_xlabel("k")
ax.set_ylabel("pass@k")
ax.set_ylim(0, 1.02)
ax.set_title("pass@k on the micro exam")
ax.legend()
ax.grid(alpha=0.3)
fig

# %% [markdown]
# Compare how far each curve moves at k = 1 and at k = 16. For real models Yue et al. (2025) found
# that RL raises pass@1 far more than pass@k at large k: the base model already reaches many
# answers *somewhere* in k tries, and RL mostly makes the right one the likely one (it sharpens
# more than it expands).
#
# ## Per question
#
# The trained policy's exam, one row per question (`eval/questions_step*.csv` in the run).

# %%
questions = pd.read_csv(f"{cfg.run_dir}/eval/questions_step{steps['trained']:06d}.csv")
questions["operands"] = questions["question"].str.count(r"\+") + 1
questions[["question", "operands", "answer", "pass@1", "majority_answer", "cons_correct", "mean_length"]].iloc[[0, 1, 2, 15, 16, 17]]

# %% [markdown]
# `mean_length` is the mean number of tokens of a question's 16 answers. It barely varies within
# a question size: in the micro world every number and symbol is one token, and the trained policy
# lays out its working (chunks, then a check) the same way for every question with the same number
# of operands, whatever the digits. The spread of answer lengths by question size:

# %%
from grpo_lab.evaluate import load_eval_samples

samples = load_eval_samples(cfg.run_dir, steps["trained"])
samples["operands"] = samples["question_idx"].map(questions["operands"])
samples.groupby("operands")["length"].describe()[["count", "mean", "std", "min", "max"]]

# %% [markdown]
# ## Sensitivity to the sampling temperature
#
# The exam again at other temperatures (top-p 0.95), each model with the seed the trainer used for
# its exam (`grpo.seed × 1,000,003 + step`), so the T = 0.6 row reproduces the logged exam above
# exactly; the cell checks that.

# %%
from grpo_lab.data import load_exam
from grpo_lab.evaluate import evaluate_model
from grpo_lab.exam import exam_seed
from grpo_lab.models import load_model_and_tokenizer, load_policy

base, tokenizer = load_model_and_tokenizer(cfg.with_overrides(["model.use_lora=false"]).model)
trained, _ = load_policy(cfg.run_dir)
exam = load_exam(cfg.eval.exam)
e, g = cfg.eval, cfg.grpo

def sit_exam(model, step, temperature):
    """The trainer's exam for `step` (grpo_lab.exam.run_exam: same seed), at another temperature."""
    return evaluate_model(model, tokenizer, exam, k=e.k, temperature=temperature, top_p=e.top_p,
                          max_new_tokens=e.max_new_tokens or g.max_new_tokens, template=cfg.data.template,
                          stop_strings=g.stop_strings, batch_size=e.batch_size, seed=exam_seed(g.seed, step),
                          lexicon=e.lexicon).metrics

rows = []
for T in TEMPERATURES:
    for (name, step), model in zip(steps.items(), (base, trained)):
        m = sit_exam(model, step, T)
        if T == e.temperature:
            assert m["pass@1"] == exams.loc[step, "eval/pass@1"], f"{name}: the exam at T {T} differs from the logged one"
        rows.append({"T": T, "model": name, "pass@1": m["pass@1"], f"cons@{K}": m[f"cons@{K}"], "mean_length": m["mean_length"]})
print(f"T = {e.temperature}: both models reproduce the run's logged exams")
pd.DataFrame(rows).pivot(index="T", columns="model").round(3)

# %% [markdown]
# ## Takeaways
#
# - Report pass@1 as an average over k samples at a stated temperature and top-p: on 30 questions
#   even the 16-sample average moves by about ±0.1 between consecutive evaluations of a training
#   run (`docs/micro_world.md`), and a single sample per question is noisier still.
# - One model, one set of numbers: an exam is a sample, so re-sampling with another seed gives other
#   numbers (by a few hundredths here). Quote the run's logged exam, or re-run it with its seed.
# - cons@k (majority vote) beats pass@1 when the right answer is the most common one; the pass@k
#   curves show how much of the gain is sharpening (k = 1) rather than new answers (large k).
# - The temperature table shows how much each model's numbers depend on the sampling settings —
#   one reason papers that sample differently disagree.
