"""Scale-out on an existing engine: write a TRL GRPOTrainer run equivalent to a grpo_lab config.

grpo_lab's own trainer is for one process on one device. Beyond that, the project hands off to
TRL's GRPOTrainer, launched with ``accelerate launch`` (DDP, or DeepSpeed ZeRO-2/3) on many GPUs,
instead of growing its own distributed engine. ``grpo-lab export-trl --config FILE --out DIR``
writes into DIR:

* ``train_trl.py``: the script (plain TRL: GRPOConfig, GRPOTrainer, peft.LoraConfig);
* ``trl_config.yaml``: the GRPOConfig arguments, the LoRA settings and the model, translated
  from the grpo_lab config (editable);
* ``grpo_lab_config.yaml``: the grpo_lab config itself, the source of the data, the prompt
  template and the reward functions (imported from grpo_lab.rewards, so the same code grades);
* ``accelerate/ddp.yaml``, ``accelerate/zero2.yaml``, ``accelerate/zero3.yaml``: example launch
  configs (set ``num_processes`` to your GPU count).

What is the same: loss_type, β, ε and ε_high, G (num_generations), μ (num_iterations), scale_rewards,
lr (constant after a linear warm-up), weight decay, gradient clipping, temperature, top-p,
max_completion_length, reward functions and weights, LoRA rank/alpha/dropout/targets, dtype,
gradient checkpointing, seed, and the batch: prompts_per_step × G completions per optimiser step
(split over processes and gradient-accumulation steps). TRL's own defaults that differ from
grpo_lab's are set explicitly: ``use_bias_correction_kl=False`` (DeepSeekMath's plain k3 KL),
``bf16`` only when the config asks for bfloat16, ``top_k=0``, ``lr_scheduler_type=
"constant_with_warmup"``.

What differs (documented in docs/scale_up.md): TRL's transformers sampler stops at EOS only, not
at ``grpo.stop_strings`` (with TRL's vLLM sampler they are passed as ``stop``); the "micro"
prompt source is materialised as a fixed dataset of steps × prompts_per_step fresh problems; the
exam evaluation and grpo_lab's phenomenon metrics are not part of the TRL run (evaluate the saved
adapter with ``grpo-lab eval --adapter``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from grpo_lab.config import Config

SCRIPT_NAME = "train_trl.py"

SCRIPT = '''#!/usr/bin/env python
"""TRL GRPOTrainer run, exported by `grpo-lab export-trl` from {source}.

    python {script}                                                        # one process
    accelerate launch --config_file accelerate/ddp.yaml {script}           # DDP on N GPUs
    accelerate launch --config_file accelerate/zero2.yaml {script}         # DeepSpeed ZeRO-2 (pip install deepspeed)
    accelerate launch --config_file accelerate/zero3.yaml {script}         # DeepSpeed ZeRO-3

trl_config.yaml holds TRL's settings (edit freely); grpo_lab_config.yaml the data, the prompt
template and the reward functions, which come from grpo_lab itself (pip install grpo-lab first).
Metrics are logged under TRL's names (reward, reward_std, rewards/<fn>/mean, kl, ...) to the
output directory's metrics.jsonl and to the trackers in report_to.
"""

import os
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def main() -> None:
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from grpo_lab.config import load_config
    from grpo_lab.export_trl import MetricsFile, batch_layout, build_prompt_dataset
    from grpo_lab.models import load_tokenizer, resolve_model_path
    from grpo_lab.rewards import get_reward_function

    cfg = load_config(HERE / "grpo_lab_config.yaml")
    settings = yaml.safe_load((HERE / "trl_config.yaml").read_text())
    args = dict(settings["grpo_config"])
    args["output_dir"] = str(HERE / args["output_dir"])
    if args["bf16"] == "auto":  # model.dtype "auto": bfloat16 where the GPU supports it
        import torch

        args["bf16"] = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    # prompts_per_step x G completions per optimiser step, split over the processes accelerate started.
    args.update(batch_layout(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1"))))
    training_args = GRPOConfig(**args)

    model_path = resolve_model_path(settings["model"]["name_or_path"])
    tokenizer = load_tokenizer(model_path, settings["model"]["model_init_kwargs"]["trust_remote_code"])
    dataset = build_prompt_dataset(cfg, tokenizer)
    reward_funcs = [get_reward_function(name) for name in cfg.rewards.functions]
    lora = LoraConfig(**settings["lora"]) if settings["lora"] else None

    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[MetricsFile(Path(training_args.output_dir) / "metrics.jsonl")],
    )
    trainer.train()
    trainer.save_model(training_args.output_dir)


if __name__ == "__main__":
    main()
'''


def trl_settings(cfg: Config) -> dict[str, Any]:
    """The TRL GRPOConfig arguments, LoRA and model settings equivalent to a grpo_lab config.

    Batch sizes are left out: they depend on the number of processes (see `batch_layout`).
    """
    g, m, t = cfg.grpo, cfg.model, cfg.tracking
    bf16: bool | str = "auto" if m.dtype == "auto" else m.dtype == "bfloat16"  # "auto": decided at launch
    grpo_config = {
        "output_dir": "output",
        "run_name": cfg.name,
        "seed": g.seed,
        # the algorithm
        "loss_type": g.loss_type,
        "beta": g.beta,
        "epsilon": g.epsilon,
        "epsilon_high": g.epsilon_high if g.epsilon_high is not None else g.epsilon,
        "num_generations": g.group_size,
        "num_iterations": g.num_iterations,
        "scale_rewards": g.scale_rewards,
        "use_bias_correction_kl": False,  # TRL 1.16 defaults to True; grpo_lab uses DeepSeekMath's plain k3 KL
        "reward_weights": [float(w) for w in cfg.rewards.weights],
        "mask_truncated_completions": False,
        # sampling
        "temperature": g.temperature,
        "top_p": g.top_p,
        "top_k": 0,
        "max_completion_length": g.max_new_tokens,
        # optimisation: grpo_lab's AdamW, constant lr after a linear warm-up, one update per μ-step
        "learning_rate": g.lr,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": g.warmup_steps,
        "weight_decay": g.weight_decay,
        "adam_epsilon": g.adam_epsilon,
        "max_grad_norm": g.max_grad_norm,
        "max_steps": g.steps * g.num_iterations,
        # precision and memory
        "bf16": bf16,  # TRL 1.16 defaults to True, which on CPU runs the LM head under bf16 autocast
        "fp16": m.dtype == "float16",
        "use_cpu": m.device == "cpu",
        "gradient_checkpointing": m.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if m.gradient_checkpointing else None,
        "model_init_kwargs": None,
        # logging and checkpoints
        "logging_steps": 1,
        "report_to": "none" if t.wandb_mode == "disabled" else "wandb",
        "save_strategy": "steps" if t.save_every else "no",
        "save_steps": t.save_every * g.num_iterations if t.save_every else 500,
        "remove_unused_columns": False,  # reward functions read the dataset's columns (answer, nums, ...)
        "use_vllm": False,
    }
    dtype = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}.get(m.dtype, "auto")
    grpo_config["model_init_kwargs"] = {
        "dtype": dtype, "trust_remote_code": m.trust_remote_code, "use_safetensors": True,
    }
    lora = {
        "task_type": "CAUSAL_LM", "r": m.lora_r, "lora_alpha": m.lora_alpha, "lora_dropout": m.lora_dropout,
        "target_modules": list(m.lora_target_modules),
    } if m.use_lora else None
    return {
        "model": {"name_or_path": m.name_or_path, "model_init_kwargs": dict(grpo_config["model_init_kwargs"])},
        "lora": lora,
        "grpo_config": grpo_config,
    }


def batch_layout(cfg: Config, world_size: int = 1) -> dict[str, int]:
    """per_device_train_batch_size and gradient_accumulation_steps for prompts_per_step × G a step.

    TRL generates one batch of per_device × processes × accumulation completions per optimiser
    step (its steps_per_generation defaults to the accumulation steps), so that product must be
    grpo_lab's prompts_per_step × group_size. grpo.micro_batch_size (0: all) caps per_device.
    """
    total = cfg.grpo.prompts_per_step * cfg.grpo.group_size
    if total % world_size:
        raise ValueError(
            f"grpo.prompts_per_step × grpo.group_size = {total} completions a step cannot be split over "
            f"{world_size} processes; make it a multiple of the number of GPUs"
        )
    per_process = total // world_size
    per_device = min(cfg.grpo.micro_batch_size or per_process, per_process)
    while per_process % per_device:
        per_device -= 1
    return {"per_device_train_batch_size": per_device, "gradient_accumulation_steps": per_process // per_device}


def build_prompt_dataset(cfg: Config, tokenizer, num_rows: int | None = None):
    """A `datasets.Dataset` with a formatted "prompt" column and the rows' other columns.

    Files and benchmarks: every training row (exam questions excluded, as grpo_lab does). The
    micro world draws fresh problems each step; here steps × prompts_per_step of them are drawn
    up front with the same seed.
    """
    from datasets import Dataset

    from grpo_lab.data import PromptSource, format_prompt, load_exam

    exam = load_exam(cfg.eval.exam, cfg.data.question_field, cfg.data.answer_field)
    source = PromptSource(cfg.data.train, cfg.grpo.seed, cfg.data.question_field, cfg.data.answer_field,
                          exclude_questions={str(r["question"]) for r in exam})
    if source.rows:
        rows = [dict(r, question=r[cfg.data.question_field], answer=r[cfg.data.answer_field]) for r in source.rows]
    else:
        rows = source.next(num_rows or max(1, cfg.grpo.steps) * cfg.grpo.prompts_per_step)
    records = [{"prompt": format_prompt(str(r["question"]), cfg.data.template, tokenizer),
                **{k: v for k, v in r.items() if k != "prompt"}} for r in rows]
    return Dataset.from_list(records)


try:  # the callback needs transformers (a dependency); keep importing this module cheap otherwise
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover
    TrainerCallback = object  # type: ignore[misc,assignment]


class MetricsFile(TrainerCallback):
    """Appends every TRL log line (a dict of metrics) to a jsonl file, on the main process only."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


# ------------------------------------------------------------------------------ accelerate
def accelerate_configs(mixed_precision: str) -> dict[str, dict[str, Any]]:
    """Example `accelerate launch --config_file` files: DDP and DeepSpeed ZeRO-2/3 on one 8-GPU node."""
    common = {
        "compute_environment": "LOCAL_MACHINE", "debug": False, "machine_rank": 0, "main_training_function": "main",
        "mixed_precision": mixed_precision, "num_machines": 1, "num_processes": 8, "rdzv_backend": "static",
        "same_network": True, "use_cpu": False,
    }

    def zero(stage: int) -> dict[str, Any]:
        return {**common, "distributed_type": "DEEPSPEED", "deepspeed_config": {
            "deepspeed_multinode_launcher": "standard", "offload_optimizer_device": "none",
            "offload_param_device": "none", "zero3_init_flag": stage == 3, "zero_stage": stage,
            **({"zero3_save_16bit_model": True} if stage == 3 else {}),
        }}

    return {
        "ddp.yaml": {**common, "distributed_type": "MULTI_GPU", "gpu_ids": "all"},
        "zero2.yaml": zero(2),
        "zero3.yaml": zero(3),
    }


def export_trl(cfg: Config, out_dir: str | Path, source: str = "a grpo_lab config") -> Path:
    """Write the TRL script, its configs and example accelerate configs to out_dir; return the script path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = trl_settings(cfg)
    batch_layout(cfg)  # fails now, not on the cluster, if the batch cannot be laid out
    cfg.to_yaml(out / "grpo_lab_config.yaml")
    header = (
        f"# TRL settings exported by `grpo-lab export-trl` from {source}.\n"
        "# per_device_train_batch_size and gradient_accumulation_steps are computed at launch from the\n"
        "# number of processes (prompts_per_step x group_size completions per optimiser step).\n"
        "# TRL's sampler stops at EOS only; with use_vllm: true add\n"
        f"#   generation_kwargs: {{stop: {list(cfg.grpo.stop_strings)}, include_stop_str_in_output: true}}\n"
    )
    (out / "trl_config.yaml").write_text(header + yaml.safe_dump(settings, sort_keys=False))
    script = out / SCRIPT_NAME
    script.write_text(SCRIPT.format(source=source, script=SCRIPT_NAME))
    script.chmod(0o755)
    mixed = {"bfloat16": "bf16", "float16": "fp16"}.get(cfg.model.dtype, "no")
    (out / "accelerate").mkdir(exist_ok=True)
    for name, content in accelerate_configs(mixed).items():
        (out / "accelerate" / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return script
