"""Supervised fine-tuning, rejection sampling and distillation: DeepSeek-R1's non-RL stages.

R1-Zero is pure RL. DeepSeek-R1 (§2.3) wraps RL in supervised stages (docs/reference.md §1.5):

1. **cold start**: SFT on a few thousand long, readable chain-of-thought examples;
2. reasoning RL (GRPO, here `grpo_lab.trainer`) with a language-consistency reward added;
3. **rejection sampling**: sample several answers per prompt from the RL checkpoint, keep only
   the correct ones, and SFT on them (2 epochs in R1);
4. **distillation**: SFT a *smaller* model on the big model's correct samples.

All of them are one operation, SFT on (prompt, completion) pairs with the prompt tokens masked
out of the loss (the model learns to write the completion, not to predict the question), so this
module is that operation plus the two ways of getting completions: a generator of checked-working
documents for the micro world's cold start, and rejection sampling. LoRA or full fine-tuning is
the caller's choice: only parameters with ``requires_grad`` are trained.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from grpo_lab.data import format_prompt
from grpo_lab.micro_world import CorpusConfig, PretrainConfig, build_tokenizer, exam_keys, make_exam, model_config, styled_document
from grpo_lab.rewards import accuracy_reward, format_reward
from grpo_lab.rollout import generate

IGNORE_INDEX = -100  # positions with this label add nothing to the loss (PyTorch's and HF's convention)


@dataclass
class SFTConfig:
    epochs: int = 2
    """R1 fine-tunes for 2 epochs on the rejection-sampled data."""
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0


# ------------------------------------------------------------------------------ the loss
def sft_batch(tokenizer, prompts: list[str], completions: list[str]) -> dict[str, torch.Tensor]:
    """Token ids for prompt + completion + EOS, right-padded, with labels only on the completion.

    The prompt is tokenized as `grpo_lab.rollout.generate` tokenizes it, and the completion is
    appended after it, so the model is trained on exactly the token sequence it will sample.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token: SFT needs one to teach the model where to stop")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    rows = [(p, c + [tokenizer.eos_token_id]) for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(p) + len(c) for p, c in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, c) in enumerate(rows):
        n = len(p) + len(c)
        input_ids[i, :n] = torch.tensor(p + c)
        labels[i, len(p) : n] = torch.tensor(c)
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def sft_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the completion tokens (prompt and padding positions are ignored)."""
    device = next(model.parameters()).device
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    labels = batch["labels"].to(device)
    # Position t predicts token t + 1.
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)


def train_sft(model, tokenizer, prompts: list[str], completions: list[str], cfg: SFTConfig | None = None) -> list[float]:
    """Fine-tune `model` in place on the pairs for cfg.epochs; returns the loss of every batch.

    Trains whatever requires grad: every weight of a plain model, only the adapters of a PEFT one.
    """
    cfg = cfg or SFTConfig()
    if not prompts:
        raise ValueError("no training examples")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True: nothing to train")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    order = torch.Generator().manual_seed(cfg.seed)
    was_training = model.training
    model.train()
    losses = []
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(prompts), generator=order).split(cfg.batch_size):
            batch = sft_batch(tokenizer, [prompts[i] for i in idx], [completions[i] for i in idx])
            loss = sft_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.train(was_training)
    return losses


# ------------------------------------------------------------------- where completions come from
def micro_cold_start(n: int, seed: int = 0, p_verify: float = 0.15, min_checks: int = 1,
                     k_min: int = 6, k_max: int = 9) -> list[dict[str, Any]]:
    """`n` long chain-of-thought examples for the micro world's cold start.

    Documents from the micro world's own corpus generator in its longest style: chunked working
    in which each chunk is checked one operand at a time ("wait , let me check : …") with
    probability `p_verify` (the corpus's rate by default), keeping only documents with at least
    `min_checks` checks. When a chunk's one-shot value is wrong its check corrects it, so every
    example ends with the right answer. Exam questions are never used.
    Rows: prompt, completion, question, answer.
    """
    corpus = CorpusConfig(direct=0.0, one_shot=0.0, chunked=1.0, p_verify=p_verify, verification_docs=0.0,
                          k_min=k_min, k_max=k_max)
    if min_checks > 0 and p_verify <= 0:
        raise ValueError("min_checks > 0 needs p_verify > 0")
    rng, exclude, rows = random.Random(seed), exam_keys(make_exam()), []
    while len(rows) < n:
        doc, _ = styled_document(rng, corpus, exclude)
        if doc.count("wait , let me check") < min_checks:
            continue
        prompt, completion = doc.split(" Assistant :", 1)
        prompt += " Assistant :"
        question = prompt.removeprefix("User : ").removesuffix(" Assistant :")
        answer = completion.rsplit("<answer>", 1)[1].split("</answer>", 1)[0].strip()
        rows.append({"prompt": prompt, "completion": completion, "question": question, "answer": answer})
    return rows


def rejection_sample(
    model,
    tokenizer,
    rows: list[dict[str, Any]],
    *,
    k: int = 8,
    template: str = "micro",
    max_new_tokens: int = 160,
    temperature: float = 1.0,
    top_p: float = 1.0,
    require_format: bool = True,
    batch_prompts: int = 16,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Sample k completions per question and keep only the correct ones (R1 §2.3.3).

    "Correct" is the accuracy reward's verdict (`grpo_lab.rewards.accuracy_reward`); with
    `require_format` a kept sample must also score 1 on the strict format reward (R1 also filters
    out unreadable samples). Returns (kept rows with prompt, completion, question, answer, length;
    stats: samples, kept, acceptance rate, questions with at least one kept sample).
    """
    generator = torch.Generator().manual_seed(seed)
    kept, total, solved = [], 0, 0
    for start in range(0, len(rows), batch_prompts):
        chunk = rows[start : start + batch_prompts]
        prompts = [format_prompt(r["question"], template, tokenizer) for r in chunk]
        out = generate(model, tokenizer, prompts, num_samples=k, max_new_tokens=max_new_tokens,
                       temperature=temperature, top_p=top_p, generator=generator)
        answers = [r["answer"] for r in chunk for _ in range(k)]
        ok = accuracy_reward(out.prompts, out.completions, answer=answers)
        if require_format:
            ok = [a * f for a, f in zip(ok, format_reward(out.prompts, out.completions))]
        lengths = out.lengths.tolist()
        for q, row in enumerate(chunk):
            good = [i for i in range(q * k, (q + 1) * k) if ok[i] == 1.0 and not bool(out.truncated[i])]
            solved += bool(good)
            kept += [{"prompt": out.prompts[i], "completion": out.completions[i], "question": row["question"],
                      "answer": row["answer"], "length": lengths[i]} for i in good]
        total += len(out.completions)
    stats = {"samples": total, "kept": len(kept), "acceptance_rate": len(kept) / max(total, 1),
             "questions_solved": solved / max(len(rows), 1)}
    return kept, stats


# ----------------------------------------------------------------------------- models
def micro_student(hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, intermediate_size: int | None = None,
                  seed: int = 0):
    """A randomly initialised micro-world model, smaller than the base model (128 wide, 2 layers).

    The default (64 wide, 2 layers) has a quarter of the base model's parameters. Keep 2 layers:
    a 1-layer model cannot copy operands back from the question well (measured: a 1-layer
    student distilled on the teacher's samples stayed near pass@1 0.05).

    Same architecture helper and tokenizer as `grpo_lab.micro_world`; returns (model, tokenizer).
    For a *pretrained* small model, call `grpo_lab.micro_world.pretrain` with a smaller
    `PretrainConfig` and load the directory it writes.
    """
    from transformers import LlamaForCausalLM

    tokenizer = build_tokenizer()
    cfg = PretrainConfig(hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                         intermediate_size=intermediate_size or 4 * hidden_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(model_config(tokenizer, cfg))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(model, tokenizer, out_dir: str | Path) -> Path:
    """Save like a hub model, so a config can name the directory as model.name_or_path.

    A PEFT model's adapters are merged into its base weights first (in place: afterwards, load the
    directory rather than keep training the PEFT object).
    """
    out_dir = Path(out_dir)
    if hasattr(model, "merge_and_unload"):  # a PEFT model: fold the adapters into the weights
        model = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def num_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
