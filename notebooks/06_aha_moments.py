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
# # 06 · "Aha" moments: reflection over training
#
# R1-Zero's paper shows the model writing "Wait, wait. Wait. That's an aha moment…" and re-checking
# its work. The reproductions measure reflection by counting keywords — with different lists *and
# different ways of counting*. This notebook
#
# 1. counts reflection over notebook 04's run with each reproduction's list, counted as that
#    reproduction counts it;
# 2. looks for checks that actually changed a value (a detector whose precision and recall are
#    measured on answers with known truth);
# 3. tests whether the trained policy's accuracy *depends* on checking, by forbidding the check at
#    decoding time — a causal test, where "reflection is more common in correct answers" would only
#    be a correlation.
#
# What to expect, and why. The micro world's pretraining corpus already contains the check
# ("wait , let me check : …", on 15% of chunks, half of them correcting a wrong value), so the base
# model checks, rarely. RL rewards only the final answer; it does not invent reflection, it
# *amplifies* a behaviour that pretraining put there at a low rate. That is the mechanism the
# R1-Zero reproductions describe (oat-zero: base models already reflect at step 0).
#
# **Time.** Full mode with the demo run trained: 48 s (four exams of 30 × 16 samples) on a 2-core
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

# %% [markdown]
# ## Four lexicons, four ways of counting
#
# | lexicon | counts a response as |
# | --- | --- |
# | `grpo-lab` (the default) | our own list, whole words, case-insensitive; adjacent markers ("wait , let me check") are one reflection |
# | `understand-r1-zero` | 1 if any keyword is a substring of the lower-cased text, else 0 |
# | `simplerl` | the sum of lower-cased substring counts over its keywords |
# | `orz` | the sum of case-sensitive `re.findall` matches over its regexes |
#
# The sources' methods are as in their code (see `docs/reference.md`, on reflection counting). On the same texts they disagree:

# %%
# NBVAL_CHECK_OUTPUT
import pandas as pd

from grpo_lab.phenomena import LEXICONS, count_reflections

for name, lex in LEXICONS.items():
    print(f"{name:19s} {lex.method:16s} {', '.join(lex.patterns)}")
texts = ["Rechecking... reconsidered... double-checking...", "Waiting... Rethinking", "retry again",
         "Wait, we await, then retry.", "wait , let me check : 19 + 4 = 23"]
print()
print(pd.DataFrame({name: [count_reflections(t, name) for t in texts] for name in LEXICONS}, index=texts).to_string())

# %%
from grpo_lab.notebook import demo_config, run_or_load

cfg = demo_config(settings)              # the demo run of notebooks 00, 04 and 05 (seed 0)
df = run_or_load(cfg, live=True)         # loaded; trained first if it is missing
RUN_DIR = cfg.run_dir
FINAL = int(df.attrs["summary"]["steps"])

# %% [markdown]
# ## Reflection at every exam evaluation, with each lexicon
#
# Each column is the fraction of exam answers with a count > 0, each lexicon counted by its
# source's method (for the rate, only the substring-vs-word-boundary and case rules matter).

# %%
from pathlib import Path

from grpo_lab.evaluate import load_eval_samples

steps = sorted(int(p.stem.removeprefix("samples_step")) for p in Path(RUN_DIR, "eval").glob("samples_step*.jsonl"))
rows = []
for step in steps:
    s = load_eval_samples(RUN_DIR, step)
    row = {"step": step}
    for name in LEXICONS:
        row[name] = s["completion"].map(lambda t, name=name: count_reflections(t, name) > 0).mean()
    rows.append(row)
by_lexicon = pd.DataFrame(rows).set_index("step")
by_lexicon.round(3)

# %%
ax = by_lexicon.plot(marker="o", figsize=(6, 3.5), title="fraction of exam answers with a reflection")
ax.set_ylabel("reflection rate")
ax.grid(alpha=0.3)

# %% [markdown]
# The micro world's reflection marker is "wait , let me check". `grpo-lab` and SimpleRL-Zoo's list
# (both have "wait") see it; understand-r1-zero's list has no "wait", and Open-Reasoner-Zero's
# case-sensitive regex wants "wait," with no space before the comma, so both see nothing. A
# keyword count measures a vocabulary, which is one reason papers disagree about when "aha" appears.
#
# ## Checks that changed a value
#
# The phrase itself is a template the base model copied from its corpus, so its count says how often
# the policy *checks*, not that it had an insight. A check is a correction when the value it arrives
# at differs from the value it checked (`find_corrections`; the check's result is read inside its
# own sentence, so the next chunk's sum is not mistaken for it). On 20,000 corpus answers with known
# truth this detector has precision and recall 1.00 (`benchmarks/aha_precision.py`; the rule used
# before read past the check and had precision 0.73).

# %%
import re

from grpo_lab.phenomena import find_aha_examples, find_corrections


def checked_sum(completion, fix):
    """The true sum of the line a check checks (the micro world's truth, which the detector never sees)."""
    reasoning = completion.split("<think>", 1)[-1].split("</think>", 1)[0]
    line = reasoning[: fix["start"]].rstrip(" .").rsplit(" . ", 1)[-1]
    return sum(int(x) for x in re.findall(r"\d+", line.split("=")[0]))

rows = []
for name, s in (("first", load_eval_samples(RUN_DIR, "first")), ("last", load_eval_samples(RUN_DIR, "last"))):
    checks = [(f, checked_sum(t, f)) for t in s["completion"] for f in find_corrections(t)]
    checks = [(f, true) for f, true in checks if f["before"] is not None and f["after"] is not None]
    def count(changed, right, checks=checks):
        return sum(f["changed"] == changed and (int(f["after"]) == true) == right for f, true in checks)
    rows.append({"exam": f"{name} (step {s.attrs['step']})", "answers": len(s), "checks": len(checks),
                 "changed, to the right sum": count(True, True), "changed, to a wrong sum": count(True, False),
                 "confirmed a right value": count(False, True), "confirmed a wrong value": count(False, False)})
pd.DataFrame(rows).set_index("exam")

# %%
last = load_eval_samples(RUN_DIR, "last")
examples = find_aha_examples(last["completion"].tolist(), last["correct"].tolist(), max_examples=len(last))
print(f"{len(examples)} of {len(last)} exam answers at step {last.attrs['step']} are correct and contain a check "
      "that changed a value; three on different questions:\n")
shown = set()
for ex in examples:
    question = last["question_idx"].iloc[ex["index"]]
    if question in shown or len(shown) == 3:
        continue
    shown.add(question)
    print(f"question {question}, sample {last['sample_idx'].iloc[ex['index']]}: [{ex['marker']}] "
          f"{ex['before']} → {ex['after']}: {ex['excerpt']}\n")

# %% [markdown]
# ## Reflection in correct vs incorrect answers, step 0 and the end (a correlation)

# %%
rows = []
for name, s in (("step 0", load_eval_samples(RUN_DIR, "first")), ("final", last)):
    s = s.assign(reflects=s["n_reflections"] > 0)
    for correct, group in s.groupby("correct"):
        rows.append({"when": name, "answer": "correct" if correct else "incorrect",
                     "reflection rate": group.reflects.mean(), "answers": len(group)})
pd.DataFrame(rows).set_index(["when", "answer"]).round(3)

# %% [markdown]
# At the end nearly every answer checks, correct or not, so this table cannot say whether checking
# is what made answers right. The next section tests it directly.
#
# ## The causal test: the same policies with the check forbidden
#
# `evaluate_model(..., forbid_phrases=["wait"])` masks the first token of the phrase at every
# decoding step (the token " wait", which nothing but the check uses in the micro world), so the
# policy must answer without checking; everything else — exam, samples, temperature 0.6, top-p
# 0.95, seed — stays as in the normal exam. Each model sits the exam with the seed the trainer
# used for it (`grpo.seed × 1,000,003 + step`: step 0 for the base model, the last step for the
# trained one), so the "normal" columns are the run's logged exams, the numbers notebooks 00 and 05
# show; the cell checks that. If the trained policy's accuracy rests on its checks,
# it falls back when they are forbidden; if RL improved something else (the working itself, or
# dropping direct guesses), it keeps its accuracy.

# %%
import numpy as np

from grpo_lab.data import load_exam
from grpo_lab.evaluate import evaluate_model
from grpo_lab.exam import exam_seed
from grpo_lab.models import load_model_and_tokenizer, load_policy

base, tokenizer = load_model_and_tokenizer(cfg.with_overrides(["model.use_lora=false"]).model)
trained, _ = load_policy(RUN_DIR)
exam = load_exam(cfg.eval.exam)
FORBID = ["wait"]
e, g = cfg.eval, cfg.grpo

def exam_of(model, step, forbid=()):
    """The trainer's exam for `step` (grpo_lab.exam.run_exam: same seed), optionally with phrases forbidden."""
    return evaluate_model(model, tokenizer, exam, k=e.k, temperature=e.temperature, top_p=e.top_p,
                          max_new_tokens=e.max_new_tokens or g.max_new_tokens, template=cfg.data.template,
                          stop_strings=g.stop_strings, batch_size=e.batch_size, seed=exam_seed(g.seed, step),
                          lexicon=e.lexicon, forbid_phrases=forbid)

causal = {(who, when): exam_of(model, step, forbid) for who, model, step in (("base", base, 0), ("trained", trained, FINAL))
          for when, forbid in (("normal", ()), ("check forbidden", FORBID))}
logged = df.set_index("step")["eval/pass@1"]
for who, step in (("base", 0), ("trained", FINAL)):
    assert causal[(who, "normal")].metrics["pass@1"] == logged[step], f"{who}: not the run's logged exam"
pd.DataFrame({f"{who}, {when}": {k: r.metrics[k] for k in ("pass@1", "reflection_rate", "mean_length")}
              for (who, when), r in causal.items()}).T.round(3)

# %%
per_q = {key: r.per_question["pass@1"].to_numpy() for key, r in causal.items()}

def paired(a, b):
    """Mean per-question difference a - b and a 95% half-width (normal approximation, 30 questions)."""
    d = per_q[a] - per_q[b]
    return d.mean(), 1.96 * d.std(ddof=1) / np.sqrt(len(d))

gain = paired(("trained", "normal"), ("base", "normal"))
lost = paired(("trained", "normal"), ("trained", "check forbidden"))
kept = paired(("trained", "check forbidden"), ("base", "normal"))
print(f"pass@1 gain from RL (normal exams):               {gain[0]:+.3f} ± {gain[1]:.3f}")
print(f"pass@1 the trained policy loses without checking: {lost[0]:+.3f} ± {lost[1]:.3f}")
print(f"gain kept with checking forbidden:                {kept[0]:+.3f} ± {kept[1]:.3f}")
if abs(gain[0]) > 1e-9:
    print(f"share of the gain that depends on checking:       {lost[0] / gain[0]:.0%}")

# %% [markdown]
# ## Takeaways
#
# Measured on notebook 04's run (the demo recipe, seed 0; exam of 30 questions × 16 samples; the
# ± are 95% intervals over the 30 questions, for this one run):
#
# - **RL amplified a behaviour the base model already had.** 1.5% of the base model's exam answers
#   check a chunk (the corpus checks 15% of chunks); after RL about 95% do (from step 250 on),
#   though only the final answer was rewarded. RL did not invent reflection; it made a rare,
#   pretrained behaviour the norm — the mechanism the R1-Zero reproductions describe.
# - **The counting method decides the figure.** On the same answers, understand-r1-zero's
#   substring list and Open-Reasoner-Zero's case-sensitive `wait,` report 0 throughout, `grpo-lab`
#   and SimpleRL-Zoo ~0.95. Say which method a reflection rate uses (this notebook: `grpo-lab`,
#   whole words, unless a column says otherwise).
# - **What the checks do.** At the end, 460 checks: 138 changed the checked value to the right sum,
#   2 to a wrong one, 320 confirmed a value that was already right. So most checks confirm; about a
#   third correct a slip.
# - **Correlation says little here:** at the end, correct and incorrect answers check equally
#   often (0.97 vs 0.94).
# - **Causal test.** Forbidding the check cuts the trained policy's pass@1 from 0.635 (the run's
#   logged final exam) to 0.390 (the base model's barely moves: 0.177 → 0.188). Of RL's gain of
#   +0.458 ± 0.111, +0.246 ± 0.116 (54%) is lost without checking and +0.212 ± 0.066 remains: the
#   trained policy's accuracy depends on checking for about half of its gain; the rest comes from
#   other changes RL made (direct guesses gave way to chunked working, 35 tokens long when checks
#   are forbidden). Forbidding a token also pushes the policy off its usual path, so 54% is an
#   estimate of the dependence, not an exact share.
