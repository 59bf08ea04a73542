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
# # 01 · The micro world's base model and the R1-Zero template
#
# R1-Zero starts from a *base* model and a fixed template; RL can only amplify what the base model
# already does now and then. This notebook opens grpo-lab's micro world: its tasks, its tokenizer,
# its 0.5M-parameter base model — loaded with `AutoModelForCausalLM` like any hub model — and
# samples from it at step 0 to measure how often each behaviour already appears.
#
# **Time.** Full mode: 16 s on a 2-core AMD EPYC with AVX-512 shared with other jobs (an upper
# bound). A 2-core AVX2 laptop is slower; none was available to measure, but the project measured
# `make demo` at 9.4 min there vs 3.4 min on an idle AVX-512 CPU, so expect up to ≈ 2.8× this.

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
SAMPLES_PER_QUESTION = 4 if SMOKE else 16

# %% [markdown]
# ## The template
#
# The R1 paper's template (Table 1) for real models, and the micro world's short version of its
# last line (a 0.5M-parameter model has little context to spare).

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab.data import R1_ZERO_TEMPLATE, format_prompt

print(R1_ZERO_TEMPLATE.format(prompt="What is 7 + 1 + 5?"))
print()
print(format_prompt("7 + 1 + 5 = ?", template="micro"))

# %% [markdown]
# ## The held-out exam
#
# 30 fixed questions (15 with 8 operands, 15 with 9), drawn from a seed and never seen in
# pretraining or RL — the micro world's AIME.

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab.data import load_exam

exam = load_exam("micro")
print(len(exam), "questions, e.g.:")
for row in exam[:3]:
    print(f"  {row['question']}   answer {row['answer']}")

# %% [markdown]
# ## The pretraining corpus: a ladder of behaviours
#
# The base model was pretrained (`grpo-lab build-micro`, ~5 minutes on 2 cores) on documents like
# these, in which the same kind of question is answered in four ways, at falling rates: a direct
# guess, a one-shot sum (often off), chunked working, and — rarely — chunked working whose chunks
# are checked one operand at a time ("wait , let me check"), which catches and corrects a wrong
# chunk value.

# %%
# NBVAL_CHECK_OUTPUT
import random

from grpo_lab.micro_world import CorpusConfig, ladder_rung, styled_document

rng = random.Random(4)
seen = {}
while len(seen) < 4:  # one document of each kind: a check-only document and the ladder's rungs
    doc, style = styled_document(rng, CorpusConfig(), set())
    kind = style if style == "check" else ladder_rung(doc.split(" Assistant :", 1)[1])
    if kind in ("direct", "chunked", "verified", "check") and kind not in seen and (kind == "check" or doc.count("+") >= 6):
        seen[kind] = doc
for kind in ("direct", "chunked", "verified", "check"):
    print(f"[{kind}]\n{seen[kind]}\n")

# %% [markdown]
# ## The base model loads like any Hugging Face model

# %%
# NBVAL_CHECK_OUTPUT
from transformers import AutoModelForCausalLM, AutoTokenizer

from grpo_lab.micro_world import ensure_micro_model

path = ensure_micro_model()
model = AutoModelForCausalLM.from_pretrained(path)
tokenizer = AutoTokenizer.from_pretrained(path)
print(type(model).__name__, f"{sum(p.numel() for p in model.parameters()):,} parameters")
print("vocabulary:", len(tokenizer), "tokens, e.g.", tokenizer.tokenize(" <think> 19 + 4 = 23 ."))

# %% [markdown]
# ## Step 0: what does the base model write?
#
# Sampling at the exam's settings (T 0.6, top-p 0.95) and at RL's (T 1.0). For each behaviour: its
# share of the answers, its accuracy and its length. This is where RL starts: it shifts the shares
# toward whatever earns more reward **at the training temperature**, and as the policy changes,
# so do these accuracies.

# %%
import pandas as pd
import torch

from grpo_lab.micro_world import ladder_rung, prompt_for
from grpo_lab.models import load_tokenizer
from grpo_lab.rewards import is_correct
from grpo_lab.rollout import generate

tokenizer = load_tokenizer(str(path))
rows = []
for temperature, top_p in ((0.6, 0.95), (1.0, 1.0)):
    out = generate(model, tokenizer, [prompt_for(r["question"]) for r in exam], num_samples=SAMPLES_PER_QUESTION,
                   max_new_tokens=160, temperature=temperature, top_p=top_p, generator=torch.Generator().manual_seed(0))
    for i, completion in enumerate(out.completions):
        rows.append({"T": temperature, "behaviour": ladder_rung(completion), "length": int(out.lengths[i]),
                     "correct": is_correct(completion, exam[i // SAMPLES_PER_QUESTION]["answer"])})
samples = pd.DataFrame(rows)
ladder = samples.groupby(["T", "behaviour"]).agg(share=("correct", "size"), accuracy=("correct", "mean"),
                                                  length=("length", "mean"))
ladder["share"] = ladder["share"] / samples.groupby("T").size()
ladder.round(3)

# %%
from grpo_lab.phenomena import count_reflections

for T, group in samples.groupby("T"):
    print(f"T {T}: accuracy {group.correct.mean():.3f}, mean length {group.length.mean():.1f} tokens")
print("\nstep-0 completions with a reflection marker:")
texts = [c for c in out.completions if count_reflections(c) > 0][:2]
for t in texts:
    print(" ", t)

# %% [markdown]
# ## Takeaways
#
# - The micro base model speaks the R1-Zero format and mostly answers **short and inaccurately**.
# - **Reflection is already there at step 0, rarely** — as oat-zero found for real base models
#   ("There may not be an aha moment"). RL does not invent it; it changes how often it is used.
# - Each rung of the ladder is longer than the one below. At step 0 the table does not make the
#   longest rung an obvious winner; notebook `04_r1_zero_training` watches what RL does with it.
