"""Typed configuration: dataclasses with the papers' defaults, YAML in and out, `--set` overrides.

Defaults follow DeepSeekMath's GRPO (Shao et al. 2024, §4.2: lr 1e-6, β = 0.04, ε = 0.2, μ = 1)
and DeepSeek-R1's evaluation protocol (k = 16 samples, temperature 0.6, top-p 0.95), so that a
config file only has to say where it departs from the papers. The micro world's config
(`grpo_lab/configs/micro_r1_zero.yaml`) departs a lot: a 0.5M-parameter model wants a far larger
learning rate than a 7B one.

Every value is checked when the config is built: an unknown key or a bad value raises
`ConfigError` naming the key (e.g. ``grpo.group_size``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A config key that does not exist or a value that is not allowed. The message names the key."""


@dataclass
class ModelConfig:
    """Which causal LM to train and how its LoRA adapters look."""

    name_or_path: str = "micro"
    """A hub id, a local directory, or "micro" for the embedded micro-world model."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """"auto": bfloat16 on a GPU that supports it, float32 on CPU."""
    use_lora: bool = True
    """False trains every weight (full fine-tuning); then the reference needs its own copy."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    """Off unless asked for: loading a model must never run code from the model's repository."""
    device: str = "auto"
    """"auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1", ..."""


@dataclass
class GRPOConfig:
    """The GRPO algorithm (DeepSeekMath §4.1) and its variants (TRL's names, docs/reference.md §2)."""

    prompts_per_step: int = 16
    group_size: int = 8
    """G, samples per prompt. DeepSeekMath used 64; TRL's num_generations defaults to 8."""
    max_new_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-6
    beta: float = 0.04
    """Weight of the k3 KL to the reference in the loss (DeepSeekMath 0.04; TRL defaults to 0.0)."""
    epsilon: float = 0.2
    """ε_low: the ratio is clipped below at 1 - epsilon."""
    epsilon_high: float | None = None
    """ε_high (DAPO's clip-higher, 0.28); None means the same as epsilon. It acts only when
    num_iterations ≥ 2: with μ = 1 the ratio is exactly 1 (a warning says so). loss_type "dapo" does
    not set it: set it here."""
    loss_type: Literal["grpo", "bnpo", "dapo", "dr_grpo"] = "grpo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_iterations: int = 1
    """μ: policy updates per batch of samples. With μ = 1 the ratio is exactly 1 at the update."""
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    """AdamW's ε in θ -= lr·m/(√v + ε) (Hugging Face's default 1e-8). A larger ε damps the steps of
    parameters whose gradients are smaller than it, which Adam would otherwise scale up to full size."""
    warmup_steps: int = 0
    steps: int = 200
    seed: int = 0
    std_eps: float = 1e-4
    """Added to the std in (r - mean) / (std + eps), as TRL does."""
    stop_strings: list[str] = field(default_factory=lambda: ["</answer>"])
    """Generation stops at EOS or at the first of these strings (R1-Zero ends with </answer>)."""
    micro_batch_size: int = 0
    """Sequences per forward/backward pass (gradient accumulation over length-sorted pieces, each cut
    to its own padding); 0: automatic, about an eighth of the batch (at least 8 rows)."""
    train_forward: Literal["auto", "hf", "lean"] = "auto"
    """The forward pass of the update and of the reference log-probs. "hf": the model's own (Hugging
    Face + PEFT), the readable reference. "lean": grpo_lab/lean_forward.py, the same operations in the
    same order written out in plain torch, without the per-module Python (Llama/Qwen2 with plain
    LoRA only; an error for other models). "auto": lean when the model is supported, else hf. Lean
    and hf give bitwise-equal log-probs and gradients on the same machine (tests/test_lean_forward.py)."""
    cpu_threads: int = 0
    """Torch threads on a CPU. 0: chosen by timing (grpo_lab/cpu.py: a small forward at 1, 2 and 4
    threads, up to the core count, at the start of training and after every exam), since the best
    count depends on what else the machine runs: with one other busy process on 2 cores, 2 threads
    ran 3× slower than 1; idle, 1.35× faster. A number fixes it. OMP_NUM_THREADS, when set, wins.
    The micro model computes the same bits at any count; on another model, fix it where bit-exact
    reproduction or resumption matters (a library may round a sum split across threads differently)."""
    keep_freed_memory: bool = True
    """On a CPU with glibc (Linux): keep freed memory in the heap for the next step's tensors instead
    of handing it back to the kernel, which then page-faults it in again (grpo_lab/cpu.py). Speed
    only: the numbers are the same. Process-wide; the process's memory does not shrink after a peak."""
    max_nonfinite_steps: int = 5
    """A NaN/inf loss or gradient skips the step; this many in a row stop training."""
    max_prompt_length: int | None = None
    """Prompts longer than this many tokens are an error (None: the model's context window)."""
    sampler: Literal["auto", "hf", "lean", "vllm"] = "auto"
    """How rollouts (training's and the exam's) are sampled; one module each in grpo_lab/samplers/.
    "hf": Hugging Face's forward with a KV cache, any causal LM (the readable reference). "lean":
    the same decode step in plain torch for Llama/Qwen2 (merged LoRA, static KV cache; the same
    tokens as "hf", faster on small models). "vllm": vLLM on the same GPU (extra `[vllm]`, LoRA
    only, the adapter synced every step). "auto": "lean" where it supports the model, else "hf";
    the run log says which was picked and why. The old `use_vllm: true` still loads as "vllm"."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of the GPU's memory vLLM may take for weights and KV cache; training needs the rest."""

    @property
    def use_vllm(self) -> bool:
        """Deprecated: whether `sampler` is "vllm" (the key `use_vllm` became `sampler`)."""
        return self.sampler == "vllm"

    @use_vllm.setter
    def use_vllm(self, value: bool) -> None:
        warnings.warn("grpo.use_vllm is deprecated; set grpo.sampler = 'vllm' (or 'auto')", DeprecationWarning,
                      stacklevel=2)
        self.sampler = "vllm" if value else ("auto" if self.sampler == "vllm" else self.sampler)


@dataclass
class RewardsConfig:
    """Rule-based rewards only (R1-Zero §2.2.2): names from grpo_lab.rewards, summed with weights."""

    functions: list[str] = field(default_factory=lambda: ["accuracy", "format"])
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    target_language: str = "en"
    """For language_consistency (DeepSeek-R1 §2.3.2; docs/reference.md §1.5)."""


@dataclass
class DataConfig:
    """Where training prompts come from and how they are put in the template."""

    train: str = "micro"
    """"micro" (fresh micro-world problems each step), "sums" (fresh short sums, grpo_lab.sums), a jsonl/parquet file, or a benchmark:
    NAME, NAME:PATH or NAME[a:b]:PATH with NAME one of gsm8k, math, math500, aime24, aime25,
    countdown (grpo_lab/datasets.py; e.g. "gsm8k:data/gsm8k/train.jsonl")."""
    question_field: str = "question"
    answer_field: str = "answer"
    template: Literal["r1_zero", "chat", "r1_chat", "r1_chat_think", "micro"] = "r1_zero"
    """"r1_zero": the R1 paper's Table 1 template (base models); "chat": the tokenizer's chat template,
    the question as the user message; "r1_chat": the chat template with Table 1's instructions as
    the system message (instruct models); "r1_chat_think": "r1_chat" with the assistant's turn
    opened by "<think>" (for small instruct models that never write the tags unprompted);
    "micro": the micro world's short template."""


@dataclass
class EvalConfig:
    """AIME-style evaluation (DeepSeek-R1 §3): k samples a question, pass@1 averaged over them."""

    exam: str = "micro"
    """"micro" (the committed 30-question held-out exam), "sums" (30 short sums), a jsonl/parquet file, or a benchmark
    (as data.train; its test split, e.g. "math500" or "aime24:data/aime24")."""
    k: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int | None = None
    """None: the same cap as training."""
    every: int = 25
    """Evaluate every this many RL steps (0: only at the start and the end)."""
    at_start: bool = True
    lexicon: str = "default"
    """Which reflection keyword list counts "aha" words, and how (grpo_lab.phenomena.LEXICONS; "default"
    is grpo-lab's own word-boundary counter, the sources' names count as the sources do)."""
    forbid_phrases: list[str] = field(default_factory=list)
    """Phrases the exam may not write (their first token is masked at decoding), e.g. ["wait"]: a causal
    test of how much accuracy depends on a behaviour (grpo_lab.evaluate.evaluate_model). Empty: none."""
    batch_size: int = 128
    """Sequences sampled at once during evaluation."""
    watch: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Exam question indices (0-based) whose completions are logged at every exam (watched.jsonl and a
    wandb table "watched"), to follow how the answers to the same question change over training
    (grpo_lab.watched_answers). Empty: none."""


@dataclass
class HealthConfig:
    """Thresholds of the run-health checks (grpo_lab/health.py), applied to every step's metrics.

    A check fires when its condition holds for `patience` steps in a row, and fires once per run.
    The defaults are silent on the micro demo (checked in tests/test_health.py) and fire on runs
    built to fail (max_new_tokens too small, a format the model never writes, ...).
    """

    enabled: bool = True
    """False: no checks at all (nothing shown, logged or sent)."""
    patience: int = 10
    """Steps in a row a condition must hold before its check fires (one noisy step is not a problem)."""
    max_clipped_ratio: float = 0.5
    """truncated: fires when more than this fraction of completions stop at grpo.max_new_tokens."""
    max_zero_std_fraction: float = 0.9
    """no_signal: fires when more than this fraction of groups have equal rewards (zero advantage)."""
    format_stuck_steps: int = 30
    """format_stuck: fires when every format reward's mean is 0 for this many steps in a row."""
    max_unparsed_ratio: float = 0.5
    """unparsed: fires when more than this fraction of completions have no answer the grader can read."""
    entropy_collapse_fraction: float = 0.1
    """entropy_collapse: fires when the entropy falls below this fraction of its mean over the first
    `patience` steps."""
    max_kl: float = 1.0
    """kl_blowup: fires when the per-token KL to the reference exceeds this (nats)."""


@dataclass
class TrackingConfig:
    """Where a run is recorded: always a local run directory, and wandb (offline by default)."""

    run_dir: str = "runs/{name}"
    """Where the run log, checkpoints and report go; {name} and {seed} are filled in."""
    wandb_mode: Literal["online", "offline", "disabled"] = "offline"
    wandb_project: str = "grpo-lab"
    log_completions_every: int = 25
    save_every: int = 50
    """Checkpoint (adapter, optimizer, RNG states, step) every this many steps (0: only at the end)."""
    progress: bool = True
    wandb_timeout: float = 30.0
    """Seconds any one call into wandb (init, log, summary, finish) may take; after a time-out wandb
    is switched off with one warning and the run goes on with its local log."""


@dataclass
class Config:
    """A whole experiment. `Config.from_yaml(path, overrides=["grpo.beta=0"])` builds one."""

    name: str = "grpo"
    model: ModelConfig = field(default_factory=ModelConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    # ----------------------------------------------------------------- building
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "config") -> Config:
        cfg = _build(cls, _renamed_keys(data or {}, source), prefix="", source=source)
        cfg.validate(source)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Config:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of groups, got {type(data).__name__}")
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def with_overrides(self, overrides: list[str]) -> Config:
        data = self.to_dict()
        for item in overrides:
            apply_override(data, item)
        return Config.from_dict(data, source="overrides")

    # --------------------------------------------------------------- checking
    def validate(self, source: str = "config") -> None:
        """Ranges that types cannot express. Each message names the key and what is allowed."""
        g, e, m, r, d, t = self.grpo, self.eval, self.model, self.rewards, self.data, self.tracking
        h = self.health
        if not r.functions:
            raise ConfigError(f"{source}: rewards.functions = [] must name at least one reward function")
        from grpo_lab.rewards import REWARD_FUNCTIONS  # late import: rewards imports heavy graders

        for name in r.functions:  # before the weights check: an unknown name is the real mistake
            if name not in REWARD_FUNCTIONS:
                raise ConfigError(
                    f"{source}: rewards.functions has unknown reward {name!r}; allowed: {sorted(REWARD_FUNCTIONS)}"
                )
        checks = [
            ("grpo.group_size", g.group_size >= 2, "must be ≥ 2 (a group of one has no baseline: its advantage is always 0)"),
            ("grpo.prompts_per_step", g.prompts_per_step >= 1, "must be ≥ 1"),
            ("grpo.max_new_tokens", g.max_new_tokens >= 1, "must be ≥ 1"),
            ("grpo.temperature", g.temperature > 0, "must be > 0"),
            ("grpo.top_p", 0 < g.top_p <= 1, "must be in (0, 1]"),
            ("grpo.lr", g.lr > 0, "must be > 0"),
            ("grpo.beta", g.beta >= 0, "must be ≥ 0"),
            ("grpo.epsilon", g.epsilon >= 0, "must be ≥ 0"),
            ("grpo.epsilon_high", g.epsilon_high is None or g.epsilon_high >= 0, "must be ≥ 0 or null"),
            ("grpo.num_iterations", g.num_iterations >= 1, "must be ≥ 1"),
            ("grpo.max_grad_norm", g.max_grad_norm > 0, "must be > 0"),
            ("grpo.steps", g.steps >= 0, "must be ≥ 0"),
            ("grpo.seed", 0 <= g.seed < 2**32, "must be in [0, 2**32) (NumPy and torch seeds)"),
            ("grpo.std_eps", g.std_eps >= 0, "must be ≥ 0"),
            ("grpo.micro_batch_size", g.micro_batch_size >= 0, "must be ≥ 0 (0: automatic)"),
            ("grpo.cpu_threads", g.cpu_threads >= 0, "must be ≥ 0 (0: chosen by timing)"),
            ("grpo.max_nonfinite_steps", g.max_nonfinite_steps >= 1, "must be ≥ 1"),
            ("grpo.max_prompt_length", g.max_prompt_length is None or g.max_prompt_length >= 1, "must be ≥ 1 or null"),
            ("grpo.warmup_steps", g.warmup_steps >= 0, "must be ≥ 0"),
            ("grpo.weight_decay", g.weight_decay >= 0, "must be ≥ 0"),
            ("grpo.adam_epsilon", g.adam_epsilon > 0, "must be > 0"),
            ("grpo.stop_strings", all(isinstance(x, str) and x for x in g.stop_strings), "must be non-empty strings"),
            ("eval.k", e.k >= 1, "must be ≥ 1 (samples drawn per question; pass@k and cons@k use this k)"),
            ("eval.max_new_tokens", e.max_new_tokens is None or e.max_new_tokens >= 1, "must be ≥ 1 or null"),
            ("eval.temperature", e.temperature > 0, "must be > 0"),
            ("eval.top_p", 0 < e.top_p <= 1, "must be in (0, 1]"),
            ("eval.every", e.every >= 0, "must be ≥ 0"),
            ("eval.batch_size", e.batch_size >= 1, "must be ≥ 1"),
            ("eval.watch", all(i >= 0 for i in e.watch), "must be exam question indices ≥ 0"),
            ("health.patience", h.patience >= 1, "must be ≥ 1"),
            ("health.max_clipped_ratio", 0 <= h.max_clipped_ratio <= 1, "must be in [0, 1]"),
            ("health.max_zero_std_fraction", 0 <= h.max_zero_std_fraction <= 1, "must be in [0, 1]"),
            ("health.format_stuck_steps", h.format_stuck_steps >= 1, "must be ≥ 1"),
            ("health.max_unparsed_ratio", 0 <= h.max_unparsed_ratio <= 1, "must be in [0, 1]"),
            ("health.entropy_collapse_fraction", 0 <= h.entropy_collapse_fraction < 1, "must be in [0, 1)"),
            ("health.max_kl", h.max_kl > 0, "must be > 0"),
            ("model.lora_r", m.lora_r >= 1, "must be ≥ 1"),
            ("model.lora_dropout", 0 <= m.lora_dropout < 1, "must be in [0, 1)"),
            ("model.lora_alpha", m.lora_alpha > 0, "must be > 0"),
            ("model.name_or_path", bool(m.name_or_path.strip()), "must name a model (\"micro\", a directory or a hub id)"),
            ("data.train", bool(d.train.strip()), "must be \"micro\" or a jsonl/parquet file"),
            ("data.question_field", bool(d.question_field), "must be a column name"),
            ("data.answer_field", bool(d.answer_field), "must be a column name"),
            ("eval.exam", bool(e.exam.strip()), "must be \"micro\" or a jsonl/parquet file"),
            ("model.device", _is_device_name(m.device), "must be \"auto\", \"cpu\", \"cuda\", \"cuda:N\" or \"mps\""),
            ("grpo.vllm_gpu_memory_utilization", 0 < g.vllm_gpu_memory_utilization < 1, "must be in (0, 1)"),
            ("tracking.save_every", t.save_every >= 0, "must be ≥ 0 (0: only at the end)"),
            ("tracking.wandb_timeout", t.wandb_timeout > 0, "must be > 0 (seconds)"),
            ("tracking.log_completions_every", t.log_completions_every >= 0, "must be ≥ 0 (0: never)"),
            (
                "rewards.weights",
                len(r.weights) == len(r.functions),
                f"must have one weight per function ({len(r.functions)} functions, {len(r.weights)} weights)",
            ),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{source}: {key} = {_get(self, key)!r} {allowed}")
        if g.epsilon_high is not None and g.epsilon_high != g.epsilon and g.num_iterations == 1:
            # With μ = 1 the policy that sampled is the one being updated: ρ = 1 exactly, inside any
            # clip range, so a clip bound (DAPO's clip-higher included) never acts (docs/reference.md §2.5).
            import warnings

            warnings.warn(
                f"{source}: grpo.epsilon_high = {g.epsilon_high} has no effect with grpo.num_iterations = 1 "
                "(the ratio is exactly 1 at the update, so no clip bound is reached); set num_iterations ≥ 2 "
                "for clip-higher to act, or drop epsilon_high",
                UserWarning,
                stacklevel=2,
            )
        from grpo_lab.datasets import parse_spec

        for key, spec in (("data.train", d.train), ("eval.exam", e.exam)):
            try:
                parse_spec(spec)
            except ValueError as exc:
                raise ConfigError(f"{source}: {key}: {exc}") from None
        if m.use_lora is False and g.sampler == "vllm":
            raise ConfigError(f"{source}: grpo.sampler = vllm needs model.use_lora = true (the vllm sampler "
                              "syncs the LoRA adapter each step; full fine-tuning weights are not synced)")
        from grpo_lab.phenomena import LEXICONS
        from grpo_lab.rewards import SUPPORTED_LANGUAGES

        if r.target_language not in SUPPORTED_LANGUAGES:
            raise ConfigError(
                f"{source}: rewards.target_language = {r.target_language!r} is not supported; "
                f"allowed: {list(SUPPORTED_LANGUAGES)}"
            )
        if e.lexicon not in (*LEXICONS, "default"):
            raise ConfigError(f"{source}: eval.lexicon = {e.lexicon!r} is unknown; allowed: {sorted(LEXICONS)}")

    def check_resume(self, saved: Config, source: str = "the run's config.yaml") -> None:
        """Refuse a resume that would change anything but `RESUMABLE_KEYS` (see that constant).

        `self` is the config asked for now, `saved` the one the run was trained with. The message
        names every key that differs, with both values.
        """
        now, then = flatten_keys(self.to_dict()), flatten_keys(saved.to_dict())
        changed = [key for key in sorted(set(now) | set(then)) if now.get(key) != then.get(key)]
        refused = [key for key in changed if key not in RESUMABLE_KEYS]
        if refused:
            details = "; ".join(f"{key}: {then.get(key)!r} in {source}, {now.get(key)!r} now" for key in refused)
            raise ConfigError(
                f"a resume cannot change {', '.join(refused)} ({details}). The checkpoint holds the "
                f"optimizer, scheduler, RNG and adapter state of the original settings, so the change would "
                f"be recorded but not used. A resume may change only {', '.join(sorted(RESUMABLE_KEYS))}; "
                "for anything else start a fresh run in another directory"
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.tracking.run_dir.format(name=self.name, seed=self.grpo.seed))


RESUMABLE_KEYS = frozenset({"grpo.steps", "tracking.run_dir", "tracking.wandb_mode", "tracking.wandb_project",
                            "tracking.wandb_timeout", "tracking.progress"})
"""What `train --resume` may change. grpo.steps may grow (or stay) past the checkpoint's step; the
tracking keys say where and how a run is watched, not what it computes. Everything else (lr, seed,
model, rewards, data, eval schedule, checkpoint and log cadence, ...) is fixed by the checkpoint
or by the lines already logged: a resume that changes it is refused (Config.check_resume)."""


# ---------------------------------------------------------------------------- helpers
def _is_device_name(name: str) -> bool:
    """A device grpo-lab can train on (whether it is present is checked when the model is loaded)."""
    head, _, index = name.partition(":")
    if head == "cuda" and index:
        return index.isdigit()
    return name in ("auto", "cpu", "cuda", "mps")


def flatten_keys(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"grpo": {"lr": 1e-6}} -> {"grpo.lr": 1e-6}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _renamed_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Old configs (and the config.yaml of old runs) still load: `grpo.use_vllm` became `grpo.sampler`.

    `use_vllm: true` means `sampler: vllm`; `use_vllm: false` means "not vllm" and leaves `sampler`
    as it is. Either way a DeprecationWarning asks for the new key; a contradiction is an error.
    """
    grpo = data.get("grpo") if isinstance(data, dict) else None
    if not isinstance(grpo, dict) or "use_vllm" not in grpo:
        return data
    grpo = dict(grpo)
    use_vllm = grpo.pop("use_vllm")
    if not isinstance(use_vllm, bool):
        raise ConfigError(f"{source}: grpo.use_vllm must be true or false, got {use_vllm!r} (better: grpo.sampler)")
    sampler = grpo.get("sampler", "auto")
    if use_vllm and sampler not in ("auto", "vllm") or not use_vllm and sampler == "vllm":
        raise ConfigError(f"{source}: grpo.use_vllm = {str(use_vllm).lower()} contradicts grpo.sampler = {sampler!r}; "
                          "grpo.use_vllm is deprecated: drop it and keep grpo.sampler")
    if use_vllm:
        grpo["sampler"] = "vllm"
    warnings.warn(f"{source}: grpo.use_vllm is deprecated; write grpo.sampler: "
                  f"{'vllm' if use_vllm else 'auto (or hf, lean)'} instead", DeprecationWarning, stacklevel=3)
    return {**data, "grpo": grpo}


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``group.key=value`` override to a raw config dict; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like group.key=value (e.g. grpo.beta=0.0)")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a group")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _build(cls: type, data: dict[str, Any], prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean {prefix}{close[0]!s}?)" if close else ""
        group = f" in {prefix.rstrip('.')}" if prefix else ""
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}'{hint}; allowed keys{group}: {sorted(names)}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}", source)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    """Check (and gently convert, e.g. int → float) one value against its type hint."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, prefix=f"{key}.", source=source)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} = {value!r} is not allowed; allowed: {list(args)}")
        return value
    if origin is list:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML reads "1e-6" as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        if not math.isfinite(number):  # "1e400" parses to inf; an inf lr turns every weight into NaN
            shown = f"{value!r} (= {number})" if isinstance(value, str) else f"{number}"
            raise ConfigError(f"{source}: {key} must be a finite number, got {shown}")
        return number
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when path is None) and apply ``key=value`` overrides."""
    if path is None:
        return Config().with_overrides(overrides or [])
    return Config.from_yaml(path, overrides)


def packaged_config(name: str) -> Path:
    """A config shipped with the package (grpo_lab/configs/NAME.yaml)."""
    path = Path(str(resources.files("grpo_lab") / "configs" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no packaged config {name!r}; available: {available}")
    return path
