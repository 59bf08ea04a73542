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
# # 08 · DeepSeek-R1's multi-stage recipe, in the micro world
#
# R1-Zero (notebooks 00–07) is pure RL from a base model. Its answers were hard to read and mixed
# languages, so DeepSeek-R1 (§2.3) wraps RL in supervised stages:
#
# 1. **cold start** — supervised fine-tuning (SFT) on a few thousand long, readable chain-of-thought
#    examples;
# 2. **reasoning RL** — GRPO with accuracy and format rewards plus a **language-consistency reward**
#    (the share of target-language words in the chain of thought);
# 3. **rejection sampling + SFT** — sample several answers per prompt from the RL checkpoint, keep
#    only the correct ones, and fine-tune the *base* model on them for 2 epochs;
# 4. **distillation** — fine-tune *smaller* models on the same correct samples; R1 found this beats
#    running RL on the small model itself.
#
# This notebook runs each stage on the micro world's 0.5M-parameter base model and evaluates every
# stage on the same held-out exam. All of it is `grpo_lab.sft` (SFT with the prompt masked out of
# the loss, rejection sampling) and `grpo_lab.trainer` (GRPO). R1's final all-scenario RL stage has
# no counterpart here (the micro world has one task).
#
# **Not emergence.** Here long, self-checking answers are *taught* by the cold-start data, as R1
# intends. Notebooks 00, 04 and 06 are where length and reflection emerge from RL alone.
#
#
# **Time.** Full mode, training everything (a cold-start SFT model, two RL runs of 200 steps, a
# rejection-sampling SFT model and a small student with 1,600 pretraining steps; each RL run shown
# live): 22.7 min (1364 s) on a 2-core AMD EPYC with AVX-512 shared with other jobs (an upper
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

# %% [markdown]
# ## Parameters

# %%
SEED = 0
N_COLD_START = 64 if SMOKE else 400          # cold-start examples (R1: "thousands")
RL_STEPS = 2 if SMOKE else 200               # GRPO steps from the cold-start model
RL_LR = 1e-3                                 # twice the demo's lr for fewer steps, as in 07
EVAL_K = 2 if SMOKE else 16                  # exam samples per question
EVAL_EVERY = 2 if SMOKE else 50
RS_QUESTIONS = 24 if SMOKE else 300          # rejection-sampling prompts (fresh, never exam questions)
RS_K = 4 if SMOKE else 8                     # samples per prompt
STUDENT_PRETRAIN_STEPS = 20 if SMOKE else 1600
OUT = f"{RUNS}/08_r1_pipeline"

# %%
import pandas as pd
from transformers import AutoModelForCausalLM

from grpo_lab.data import load_exam
from grpo_lab.evaluate import evaluate_model
from grpo_lab.micro_world import ensure_micro_model, ladder_rung
from grpo_lab.models import load_tokenizer
from grpo_lab.rewards import language_consistency_reward

BASE_DIR = ensure_micro_model()
tokenizer = load_tokenizer(str(BASE_DIR))
exam = load_exam("micro")
scores = {}   # one row per stage, all on the same exam (30 questions x EVAL_K samples, T 0.6, top-p 0.95)

def exam_scores(model):
    r = evaluate_model(model, tokenizer, exam, k=EVAL_K, max_new_tokens=160, template="micro", seed=0)
    texts = r.samples["completion"].tolist()
    return {"pass@1": r.metrics["pass@1"], f"cons@{EVAL_K}": r.metrics[f"cons@{EVAL_K}"],
            "mean length": r.metrics["mean_length"], "reflection rate": r.metrics["reflection_rate"],
            "language consistency": sum(language_consistency_reward([], texts)) / len(texts),
            "parameters": sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)}

scores["base"] = exam_scores(AutoModelForCausalLM.from_pretrained(BASE_DIR))

# %% [markdown]
# ## Stage 1 · Cold start: SFT on long chains of thought
#
# R1's cold-start data are long, readable chains of thought with reflection and verification. In
# the micro world that is checked working: chunked sums in which a chunk is re-checked one operand
# at a time ("wait , let me check"), and a wrong chunk value is corrected by its check, so every
# example ends right. The corpus generator writes two versions: checked working as the pretraining
# corpus has it (a chunk is checked with probability 0.15; we keep documents with at least one
# check), and a longer one in which **every** chunk is checked. None uses an exam question.

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab.sft import micro_cold_start

cold = micro_cold_start(N_COLD_START, seed=SEED)                                      # >= 1 check
every_chunk = micro_cold_start(N_COLD_START, seed=SEED, p_verify=1.0, min_checks=2)   # every chunk checked
print(cold[0]["prompt"])
print(" checked working:    ", cold[0]["completion"])
print(" every chunk checked:", every_chunk[1]["completion"])

# %% [markdown]
# SFT trains on the completion only: the prompt's tokens are in the input but masked out of the
# loss (label −100), and an end-of-sequence token is appended so that the model learns to stop.
# The cold start fine-tunes every weight (`grpo_lab.sft.train_sft` trains whatever requires
# grad, so a LoRA model works the same way).

# %%
from grpo_lab.sft import SFTConfig, save_model, train_sft

SFT = SFTConfig(epochs=2, batch_size=16, lr=3e-4, seed=SEED)

def fine_tune(model_dir, rows, cfg=SFT):
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    losses = train_sft(model, tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows], cfg)
    return model, losses

cold_model, cold_losses = fine_tune(BASE_DIR, cold)
scores["1 cold start (checked working)"] = exam_scores(cold_model)
every_model, _ = fine_tune(BASE_DIR, every_chunk)
scores["1' cold start (every chunk checked)"] = exam_scores(every_model)
COLD_DIR = save_model(cold_model, tokenizer, f"{OUT}/cold_start")   # a model directory, like a hub model
pd.DataFrame(scores).T.round(3)

# %% [markdown]
# Both cold starts make every answer long and reflective at once — something RL alone needs many
# steps to find (notebook 04). Whether they also help accuracy depends on whether the model
# can *execute* the style it was shown. When every chunk is checked, the answers are longer than
# anything in pretraining, and the 2-layer model starts to mis-copy the later operands from the
# question (read a few samples with `grpo_lab.evaluate.evaluate_model(...).samples`): a cold start
# must be data the model can imitate, which is why R1 built its cold-start data from its own
# model's readable outputs. RL continues from the first cold start.

# %% [markdown]
# ## Stage 2 · Reasoning RL with a language-consistency reward
#
# **What "language" means here.** R1's reward is the share of target-language words in the
# chain of thought (`grpo_lab.rewards.language_consistency_reward`: numbers and symbols are
# language-neutral and ignored; a think part with no words at all scores 0). The micro world has
# one language: its tokenizer has no non-English word, so a policy *cannot* mix languages. What the
# reward does see is whether the think part has any words — and the only words a micro answer can
# put there are the check phrase "wait , let me check". So in the micro world this reward pays for
# *keeping the cold-start style* (checked working) and scores plain arithmetic 0 — the role R1
# gives it (keep the chain of thought in the readable form the cold start taught), but here it is
# also, literally, a reward for the reflection phrase. We therefore give it a small weight (0.2,
# like format), run the same RL without it, and compare.

# %%
# NBVAL_CHECK_OUTPUT
examples = {
    "direct guess": " <think> </think> <answer> 38 </answer>",
    "chunked working": " <think> 7 + 1 + 5 + 6 = 19 . 19 + 4 = 23 . </think> <answer> 23 </answer>",
    "checked working": " <think> 7 + 1 = 9 . wait , let me check : 7 + 1 = 8 . </think> <answer> 8 </answer>",
    "mixed languages*": " <think> 7 + 1 = 9 . 等等 , let me check : 7 + 1 = 8 . </think> <answer> 8 </answer>",
}
for name, text in examples.items():
    print(f"{name:17s} language consistency {language_consistency_reward([''], [text])[0]:.2f}")
print("\n* not writable in the micro world: every vocabulary entry is ASCII:",
      all(token.isascii() for token in tokenizer.get_vocab()))

# %%
from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.notebook import run_or_load


def rl_config(name, model_dir, *overrides):
    return load_config(packaged_config("micro_r1_zero"), [
        f"name={name}", f"model.name_or_path={model_dir}", f"grpo.seed={SEED}", f"grpo.steps={RL_STEPS}", f"grpo.lr={RL_LR}",
        f"eval.k={EVAL_K}", f"eval.every={EVAL_EVERY}", f"tracking.run_dir={OUT}/{name}",
        "tracking.progress=false", "tracking.log_completions_every=0", *overrides])

rl_cfg = rl_config("rl_language", COLD_DIR, "rewards.functions=[accuracy,format,language_consistency]",
                   "rewards.weights=[1.0,0.2,0.2]")
rl = run_or_load(rl_cfg, live=True)
rl_plain = run_or_load(rl_config("rl_no_language", COLD_DIR), live=True)

# %%
from grpo_lab.plots import compare_runs

compare_runs({"accuracy + format + language": rl, "accuracy + format": rl_plain}, "eval/pass@1")

# %%
compare_runs({"accuracy + format + language": rl, "accuracy + format": rl_plain}, "completions/mean_length")

# %%
from grpo_lab.models import load_policy

rl_policy, _ = load_policy(rl_cfg.run_dir, device="cpu")
scores["2 RL (+ language reward)"] = exam_scores(rl_policy)
plain_policy, _ = load_policy(f"{OUT}/rl_no_language", device="cpu")
scores["2' RL (no language reward)"] = exam_scores(plain_policy)
pd.DataFrame(scores).T.round(3)

# %% [markdown]
# ## Stage 3 · Rejection sampling, then SFT of the base model
#
# From the RL checkpoint, sample `RS_K` answers for each of `RS_QUESTIONS` fresh questions at the
# training temperature and keep only those the accuracy reward marks right (and that are well
# formed and not truncated). R1 then fine-tunes the **base** model (DeepSeek-V3-Base) on the kept
# samples for 2 epochs; so do we.

# %%
from grpo_lab.micro_world import TaskSampler, exam_keys, make_exam
from grpo_lab.sft import rejection_sample

questions = TaskSampler(seed=SEED + 1, exclude=exam_keys(make_exam())).sample(RS_QUESTIONS)
kept, rs_stats = rejection_sample(rl_policy, tokenizer, questions, k=RS_K, max_new_tokens=160,
                                  temperature=1.0, seed=SEED)
print(f"{rs_stats['samples']} samples, {rs_stats['kept']} kept (acceptance {rs_stats['acceptance_rate']:.2f}); "
      f"{rs_stats['questions_solved']:.2f} of the questions have at least one correct sample")
shares = pd.Series([ladder_rung(r["completion"]) for r in kept]).value_counts(normalize=True).round(3)
print("kept samples by behaviour:", shares.to_dict())

# %%
rs_model, rs_losses = fine_tune(BASE_DIR, kept)
scores["3 base + SFT on rejection samples"] = exam_scores(rs_model)

from matplotlib.figure import Figure

fig = Figure(figsize=(7, 3))
ax = fig.subplots()
ax.plot(cold_losses, label=f"cold start ({len(cold)} examples)")
ax.plot(rs_losses, label=f"rejection samples ({len(kept)} examples)")
ax.set_xlabel("SFT batch")
ax.set_ylabel("loss (completion tokens)")
ax.set_yscale("log")
ax.set_title("SFT loss, 2 epochs")
ax.legend()
ax.grid(alpha=0.3)
fig

# %% [markdown]
# ## Stage 4 · Distillation into a smaller model
#
# The student has a quarter of the base model's parameters: 64 wide instead of 128, with the same
# 2 layers (a 1-layer student, tried while building this notebook, cannot copy operands back from
# the question and learns almost nothing). It is pretrained on the same corpus for the same
# number of steps (`grpo_lab.micro_world.pretrain`).
# It is compared three ways, as in R1 §4.1: the small base model as is; with the R1-Zero recipe
# (GRPO on the small model itself, same steps as stage 2); and **distilled** (SFT on the teacher's
# correct samples from stage 3). A randomly initialised student of the same size, distilled on the
# same samples, shows what pretraining contributes.

# %%
from grpo_lab.micro_world import PretrainConfig, pretrain
from grpo_lab.sft import micro_student

SMALL_DIR = pretrain(f"{OUT}/small_base", PretrainConfig(hidden_size=64, intermediate_size=256, num_layers=2,
                     steps=STUDENT_PRETRAIN_STEPS, seed=SEED), progress=False)
scores["4a small base"] = exam_scores(AutoModelForCausalLM.from_pretrained(SMALL_DIR))

small_rl_cfg = rl_config("small_rl", SMALL_DIR)
small_rl = run_or_load(small_rl_cfg, live=True)
scores["4b small + RL (R1-Zero recipe)"] = exam_scores(load_policy(small_rl_cfg.run_dir, device="cpu")[0])

student, _ = fine_tune(SMALL_DIR, kept)
scores["4c small, distilled"] = exam_scores(student)

# From random weights: the same samples, with a pretraining-sized learning rate.
scratch, _ = micro_student(hidden_size=64, num_layers=2, seed=SEED)
train_sft(scratch, tokenizer, [r["prompt"] for r in kept], [r["completion"] for r in kept],
          SFTConfig(epochs=2, batch_size=16, lr=3e-3, seed=SEED))
scores["4d random init, distilled"] = exam_scores(scratch)

# %% [markdown]
# ## Every stage on the same exam

# %%
table = pd.DataFrame(scores).T
table["parameters"] = table["parameters"].astype(int)
table.round(3)

# %%
fig = Figure(figsize=(9, 3.8))
axes = fig.subplots(1, 2)
names = list(table.index)
for ax, column in zip(axes, ["pass@1", "mean length"]):
    ax.barh(names[::-1], table[column][::-1], color=["C0" if "small" not in n and "random" not in n else "C1" for n in names[::-1]])
    ax.set_xlabel(column)
    ax.grid(alpha=0.3, axis="x")
axes[1].set_yticklabels([])
axes[0].set_title("exam pass@1 (T 0.6)")
axes[1].set_title("mean response length (tokens)")
fig.tight_layout()
fig

# %% [markdown]
# ## Takeaways
#
# Read the table above for the numbers; these are the questions it answers.
#
# - **Cold start** changes *how* the model answers before any RL: a few hundred long, checked
#   examples are enough for the base model to adopt that style (length and reflection rate jump at
#   stage 1, compared with the base row). Compare with notebook 04, where RL has to discover it.
#   A cold start the model cannot execute (every chunk checked) costs accuracy.
# - **The language-consistency reward** is only meaningful where a model can mix languages. In
#   the micro world it can only see the check phrase, so it works as a "keep the taught style"
#   term; its column and the two RL rows show what it costs or buys. In R1 it cost a little
#   accuracy for readability (§2.3.2).
# - **Rejection sampling** turns the RL policy into a data set of correct answers; SFT of the
#   *base* model on it carries most of what RL learned in two epochs of supervised training.
# - **Distillation**: compare rows 4a–4d. R1 found that a small model learns more from a strong
#   teacher's correct samples than from running RL itself; pretraining the student matters (4c
#   vs 4d).
