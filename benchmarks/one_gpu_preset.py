"""Peak memory and step time of a one-GPU preset on a random-init Qwen2.5-0.5B-shaped model.

No weights can be downloaded where this project is developed, so the model is built from a
``Qwen2Config`` with Qwen2.5-0.5B's shape (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864,
vocabulary 151,936, tied embeddings) and random weights, with a word-level stand-in tokenizer of
the same vocabulary size. Memory and time depend on the shape and on the number of tokens, not on
the weights' values, with one caveat: a random model almost never samples EOS, so every completion
runs to ``grpo.max_new_tokens``: the numbers are the preset's worst case (every completion at the
cap), not a typical step.

The preset's settings are used as they are (bf16, LoRA, gradient checkpointing, G, prompts per
step, micro-batch, max_new_tokens) unless overridden on the command line; the exam is skipped
(only training steps are timed). On a GPU::

    python benchmarks/one_gpu_preset.py --preset qwen2.5-0.5b_r1_zero --steps 3 --out docs/one_gpu_preset.json

On a CPU, only to check that it runs (tiny sizes)::

    python benchmarks/one_gpu_preset.py --device cpu --num-layers 2 --steps 2 --prompts-per-step 2 \\
        --group-size 2 --max-new-tokens 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

# Qwen2.5-0.5B's config.json (shape only; the weights here are random).
QWEN25_05B_SHAPE = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)
QUESTIONS = [
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
     "How many clips did Natalia sell altogether in April and May?", "72"),
    ("Weng earns 12 dollars an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
     "How much did she earn?", "10"),
    ("Betty is saving money for a new wallet which costs 100 dollars. Betty has only half of the money she "
     "needs. Her parents decided to give her 15 dollars for that purpose, and her grandparents twice as much "
     "as her parents. How much more money does Betty need to buy the wallet?", "5"),
    ("James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
     "624"),
]


def build_stand_in(path: Path, num_layers: int | None, seed: int = 0, vocab_size: int | None = None) -> Path:
    """Save a random Qwen2.5-0.5B-shaped Qwen2ForCausalLM and a same-size word-level tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from grpo_lab.data import R1_ZERO_TEMPLATE

    shape = dict(QWEN25_05B_SHAPE)
    if num_layers:
        shape["num_hidden_layers"] = num_layers
    if vocab_size:
        shape["vocab_size"] = vocab_size
    vocab: dict[str, int] = {"<|endoftext|>": 0, "<unk>": 1}
    words = (R1_ZERO_TEMPLATE + " " + " ".join(q for q, _ in QUESTIONS)).split() + list("0123456789")
    for w in words:
        for piece in (w, " " + w):
            vocab.setdefault(piece, len(vocab))
    shape["vocab_size"] = max(shape["vocab_size"], len(vocab))
    for i in range(len(vocab), shape["vocab_size"]):  # filler so that every id decodes to something
        vocab[f" w{i}"] = i
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?\d| ?[^\s\d]+"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                        unk_token="<unk>", clean_up_tokenization_spaces=False)
    config = Qwen2Config(**shape, pad_token_id=0, eos_token_id=0, bos_token_id=None)
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="qwen2.5-0.5b_r1_zero")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", help="override the preset's model.dtype (e.g. float32 on an old CPU)")
    parser.add_argument("--num-layers", type=int, help="fewer layers than 24, for a quick CPU check")
    parser.add_argument("--vocab-size", type=int, help="a smaller vocabulary than 151,936, for tests only")
    parser.add_argument("--prompts-per-step", type=int)
    parser.add_argument("--group-size", type=int)
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--micro-batch-size", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config override")
    parser.add_argument("--out", help="write the results as JSON here (e.g. docs/one_gpu_preset.json)")
    args = parser.parse_args(argv)

    from grpo_lab.cli import resolve_config_path
    from grpo_lab.config import load_config
    from grpo_lab.models import resolve_device
    from grpo_lab.trainer import GRPOTrainer

    if resolve_device(args.device).type == "cpu" and not (args.num_layers and args.max_new_tokens):
        parser.error("this measures a GPU; on a CPU pass toy sizes (e.g. --num-layers 2 --max-new-tokens 8 "
                     "--prompts-per-step 2 --group-size 2) only to check that the script runs")

    if "OMP_NUM_THREADS" not in os.environ and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(os.cpu_count() or 1, 2)))
    work = Path(tempfile.mkdtemp(prefix="one-gpu-preset-"))
    t0 = time.perf_counter()
    model_dir = build_stand_in(work / "model", args.num_layers, vocab_size=args.vocab_size)
    build_s = time.perf_counter() - t0
    data = work / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": f"... #### {a}"}) + "\n" for q, a in QUESTIONS))

    overrides = [f"model.name_or_path={model_dir}", f"model.device={args.device}", f"data.train=gsm8k:{data}",
                 f"eval.exam=gsm8k[:1]:{data}", f"grpo.steps={args.steps}", f"tracking.run_dir={work / 'run'}",
                 "tracking.wandb_mode=disabled", "tracking.progress=false"]
    for key, value in (("model.dtype", args.dtype), ("grpo.prompts_per_step", args.prompts_per_step),
                       ("grpo.group_size", args.group_size), ("grpo.max_new_tokens", args.max_new_tokens),
                       ("grpo.micro_batch_size", args.micro_batch_size)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(resolve_config_path(args.preset), overrides + args.set)
    trainer = GRPOTrainer(cfg)
    device = trainer.device
    n_params = sum(p.numel() for p in trainer.model.parameters())
    n_train = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    g = cfg.grpo
    print(f"{args.preset} on a random Qwen2.5-0.5B-shaped model ({cfg.model.dtype}, "
          f"{trainer.model.base_model.model.config.num_hidden_layers} layers, {n_params / 1e6:.0f}M params, "
          f"{n_train / 1e6:.1f}M trainable LoRA), device {device}, gradient checkpointing "
          f"{cfg.model.gradient_checkpointing}; {g.prompts_per_step} prompts x G {g.group_size}, "
          f"max_new_tokens {g.max_new_tokens}, micro-batch {g.micro_batch_size or 'all'}")
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rows = []
    for step in range(1, args.steps + 1):
        t = time.perf_counter()
        m = trainer.training_step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        row = {"step": step, "step_time_s": time.perf_counter() - t, "rollout_s": m["time/rollout"],
               "update_s": m["time/update"], "scoring_s": m["time/scoring"],
               "mean_length": m["completions/mean_length"], "loss": m["loss"]}
        if device.type == "cuda":
            row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
            row["peak_gpu_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        rows.append(row)
        print("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        trainer.step += 1
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    result = {
        "preset": args.preset, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "num_layers": trainer.model.base_model.model.config.num_hidden_layers,
        "params_m": n_params / 1e6, "trainable_m": n_train / 1e6, "dtype": cfg.model.dtype,
        "gradient_checkpointing": cfg.model.gradient_checkpointing, "prompts_per_step": g.prompts_per_step,
        "group_size": g.group_size, "max_new_tokens": g.max_new_tokens, "micro_batch_size": g.micro_batch_size,
        "build_s": build_s, "steps": rows, "peak_cpu_rss_gib": peak_rss_gib,
    }
    later = rows[1:] or rows
    summary = f"mean step time {sum(r['step_time_s'] for r in later) / len(later):.2f} s (steps after the first)"
    if device.type == "cuda":
        summary += f", peak GPU memory {max(r['peak_gpu_gib'] for r in rows):.2f} GiB allocated"
    summary += f", peak process RSS {peak_rss_gib:.2f} GiB"
    print(summary)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
