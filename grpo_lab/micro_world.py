"""The micro world: a tiny base model, pretrained here on CPU, in which R1-Zero's phenomena emerge.

No model can be downloaded in a workshop without network, and a laptop has no GPU, so the project
pretrains its own base model (a 0.5M-parameter Llama) on a synthetic corpus in a few minutes.
The corpus is built so that the base model holds, at falling rates, a *ladder* of behaviours,
each longer and more accurate than the one below:

    direct     <think> </think> <answer> 38 </answer>                         shortest, a guess
    chunked    <think> 7 + 1 + 5 + 6 = 19 . 19 + 4 + 5 + 7 + 3 = 38 . </think> ...
    verified   ... 19 + 4 + 5 + 7 + 3 = 37 . wait , let me check : 19 + 4 = 23 , 23 + 5 = 28 ,
               28 + 7 = 35 , 35 + 3 = 38 . </think> <answer> 38 </answer>

(a one-shot rung, the whole sum at once, exists but is off by default: see CorpusConfig.)

Where the corpus is wrong, by construction (CorpusConfig): a direct answer is a guess, exact
only 25% of the time (``p_direct_exact``); a checked chunk shows a wrong value half the time
(``p_verified_chunk_wrong``), and the check then corrects it — that is what teaches a check to
*repair*. Unchecked chunked working in the corpus is always right: the errors a policy makes
there are its own (a multi-operand sum done at once is hard for a 2-layer model, and so is copying
operands). Checking is rare in the corpus (a chunk is checked with p = 0.15) and rarer still in
the base model's exam answers at step 0 (1–2%).

RL on accuracy alone then amplifies a behaviour that pretraining put there at a low rate: the
share of answers that check their work ("wait, let me check") rises and responses get longer,
without either being rewarded. That is the mechanism the R1-Zero reproductions describe (e.g.
oat-zero: base models already reflect at step 0); it is not reflection invented by RL. Whether
the policy's accuracy actually *depends* on checking is measured, not assumed: evaluate with the
check forbidden (grpo_lab.evaluate.evaluate_model's ``forbid_phrases``; notebook 06).

Design and measurements: `docs/micro_world.md`; the prototype it started from ("v8"): docs/reference.md §8.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from grpo_lab.plain import random_state_from_json, random_state_to_json

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# In a checkout, data/ beside the package (the committed model and exam); when installed from a
# wheel (e.g. on Colab), a cache directory where the model is built on first use.
DATA_DIR = (
    REPO_DIR / "data"
    if (REPO_DIR / "pyproject.toml").exists()
    else Path(os.environ.get("GRPO_LAB_HOME", Path.home() / ".cache" / "grpo_lab"))
)
DEFAULT_MODEL_DIR = DATA_DIR / "micro_model"
DEFAULT_EXAM_PATH = DATA_DIR / "micro_exam.jsonl"
EXAM_SEED = 20261125

SPECIAL_TOKENS = ["<pad>", "<eos>", "<unk>"]
WORDS = ["User", "Assistant", "<think>", "</think>", "<answer>", "</answer>", "wait", "let", "me", "check", "is",
         ":", "=", "?", "+", ",", "."]  # fmt: skip


# ------------------------------------------------------------------------------ tasks
def make_question(operands: list[int]) -> str:
    return " + ".join(str(x) for x in operands) + " = ?"


def prompt_for(question: str) -> str:
    """The micro world's template: the last line of R1-Zero's (docs/reference.md §1.2), kept short because
    a 0.5M-parameter model has a tiny context budget. Real models use the full template."""
    return f"User : {question} Assistant :"


def sample_operands(rng: random.Random, k: int) -> list[int]:
    return [rng.randint(1, 9) for _ in range(k)]


def make_exam(seed: int = EXAM_SEED, n: int = 30, ks: tuple[int, ...] = (8, 9)) -> list[dict]:
    """A fixed, held-out 30-question exam (AIME-sized): half with k = 8 operands, half with 9."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(n):
        k = ks[i * len(ks) // n]
        while True:
            ops = tuple(sample_operands(rng, k))
            if ops not in seen:
                break
        seen.add(ops)
        rows.append({"question": make_question(list(ops)), "answer": str(sum(ops)), "k": k, "operands": list(ops)})
    return rows


def exam_keys(rows: list[dict]) -> set[tuple[int, ...]]:
    return {tuple(r["operands"]) for r in rows}


@dataclass
class TaskSampler:
    """Fresh RL training problems each step, never an exam question."""

    k_min: int = 6
    k_max: int = 9
    seed: int = 0
    exclude: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def sample(self, n: int) -> list[dict]:
        rows = []
        while len(rows) < n:
            ops = sample_operands(self.rng, self.rng.randint(self.k_min, self.k_max))
            if tuple(ops) in self.exclude:
                continue
            rows.append({"question": make_question(ops), "answer": str(sum(ops))})
        return rows

    def state_dict(self) -> dict:
        return {"rng": random_state_to_json(self.rng.getstate())}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(random_state_from_json(state["rng"]))


# ----------------------------------------------------------------------------- corpus
@dataclass
class CorpusConfig:
    """Rates of the behaviours in the pretraining corpus (fractions of main documents)."""

    direct: float = 0.45
    one_shot: float = 0.0
    """Off by default: a one-shot line looks like a chunk line, so its errors leak into chunk sums."""
    chunked: float = 0.55
    """Chunked working; each chunk is verified with probability p_verify."""
    p_direct_exact: float = 0.25
    """A direct answer is a guess: exact this often, otherwise off by a little (±1..3) or by ±10."""
    p_one_shot_exact: float = 0.4
    """A one-shot sum is mental arithmetic: exact this often, otherwise off like a guess."""
    p_verify: float = 0.15
    p_verified_chunk_wrong: float = 0.5
    """In a verified chunk, how often the one-shot chunk value was wrong (and the check fixes it)."""
    chunk_size: int = 4
    k_min: int = 2
    k_max: int = 9
    verification_docs: float = 0.25
    """Share of documents that only teach one-operand-at-a-time checking ("is a + b + c = s ?")."""


def _wrong(rng: random.Random, value: int) -> int:
    return max(0, value + rng.choice([-2, -1, 1, 2, 10, -10]))


def _guess(rng: random.Random, value: int, p_exact: float) -> int:
    """An estimate of a sum that is exact with probability p_exact, otherwise near it."""
    if rng.random() < p_exact:
        return value
    return max(0, value + rng.choice([-3, -2, -1, 1, 2, 3, -10, 10]))


def _recheck(start: int | None, terms: list[int]) -> tuple[str, int]:
    """One operand at a time: '19 + 4 = 23 , 23 + 5 = 28 , 28 + 7 = 35'."""
    parts = []
    total = terms[0] if start is None else start
    rest = terms[1:] if start is None else terms
    for x in rest:
        parts.append(f"{total} + {x} = {total + x}")
        total += x
    return " , ".join(parts), total


def working(rng: random.Random, operands: list[int], cfg: CorpusConfig, style: str) -> str:
    """The think part of a main document in one of the ladder's styles."""
    return labelled_working(rng, operands, cfg, style)[0]


def labelled_working(
    rng: random.Random, operands: list[int], cfg: CorpusConfig, style: str
) -> tuple[str, list[dict]]:
    """:func:`working` plus the truth about each check it wrote, for measuring aha detectors.

    One dict per checked chunk: ``shown`` (the chunk's one-shot value), ``true`` (the right sum),
    ``checked`` (the value the check arrives at), ``wrong`` (shown ≠ true) and ``corrected``
    (wrong and the check arrived at the true value). It draws the same random numbers as
    :func:`working`, so the corpus does not change.
    """
    if style == "direct":
        return "", []
    if style == "one_shot":
        return " + ".join(map(str, operands)) + f" = {_guess(rng, sum(operands), cfg.p_one_shot_exact)} .", []
    lines, total, checks = [], None, []
    for i in range(0, len(operands), cfg.chunk_size):
        chunk = operands[i : i + cfg.chunk_size]
        terms = ([total] if total is not None else []) + chunk
        true_value = sum(terms)
        if rng.random() < cfg.p_verify:
            shown = _wrong(rng, true_value) if rng.random() < cfg.p_verified_chunk_wrong else true_value
            check, value = _recheck(None, terms)
            lines.append(f"{' + '.join(map(str, terms))} = {shown} . wait , let me check : {check} .")
            checks.append({"shown": shown, "true": true_value, "checked": value, "wrong": shown != true_value,
                           "corrected": shown != true_value and value == true_value})
        else:
            lines.append(f"{' + '.join(map(str, terms))} = {true_value} .")
        total = true_value
    return " ".join(lines), checks


def document(rng: random.Random, cfg: CorpusConfig, exclude: set) -> str:
    return styled_document(rng, cfg, exclude)[0]


def styled_document(rng: random.Random, cfg: CorpusConfig, exclude: set) -> tuple[str, str]:
    """One pretraining document and the behaviour it shows ("check", "direct", "one_shot", "chunked")."""
    if rng.random() < cfg.verification_docs:
        start = rng.randint(1, 60) if rng.random() < 0.5 else None
        terms = sample_operands(rng, rng.randint(2, 4))
        true_total = (start or 0) + sum(terms)
        claimed = true_total if rng.random() < 0.5 else _wrong(rng, true_total)
        lhs = " + ".join(map(str, ([start] if start else []) + terms))
        check, value = _recheck(start, terms)
        return (f"User : is {lhs} = {claimed} ? Assistant : <think> wait , let me check : {check} . </think> "
                f"<answer> {value} </answer>"), "check"
    text, style, _ = _main_document(rng, cfg, exclude)
    return text, style


def _main_document(rng: random.Random, cfg: CorpusConfig, exclude: set) -> tuple[str, str, dict]:
    """A question answered in one of the ladder's styles: (text, style, truth about it)."""
    while True:
        ops = sample_operands(rng, rng.randint(cfg.k_min, cfg.k_max))
        if tuple(ops) not in exclude:
            break
    style = rng.choices(["direct", "one_shot", "chunked"], weights=[cfg.direct, cfg.one_shot, cfg.chunked])[0]
    think, checks = labelled_working(rng, ops, cfg, style)
    if style == "direct":
        answer = _guess(rng, sum(ops), cfg.p_direct_exact)
    else:  # the answer is what the working arrived at
        answer = int(think.rstrip(" .").rsplit("=", 1)[-1])
    think = f" {think} " if think else " "
    text = f"{prompt_for(make_question(ops))} <think>{think}</think> <answer> {answer} </answer>"
    return text, style, {"correct": answer == sum(ops), "checks": checks}


def labelled_aha_set(n: int = 20_000, seed: int = 0, cfg: CorpusConfig | None = None) -> list[dict]:
    """``n`` answers written by the corpus generator, each with the truth an aha detector must find.

    Answers are main documents (the question-answering kind; the check drills have no working of
    their own to correct) cut after "Assistant :", as a policy would write them. Each row:
    ``completion``, ``style``, ``correct`` (the final answer is right), ``checks`` (see
    :func:`labelled_working`) and ``aha`` (at least one check found a wrong value and corrected
    it). Here the truth is known by construction, so a detector's precision and recall can be
    measured instead of assumed (benchmarks/aha_precision.py).
    """
    rng, cfg = random.Random(seed), cfg or CorpusConfig()
    rows = []
    while len(rows) < n:
        text, style, truth = _main_document(rng, cfg, exclude=set())
        completion = text.split("Assistant :", 1)[1]
        rows.append({"completion": completion, "style": style, **truth,
                     "aha": any(c["corrected"] for c in truth["checks"])})
    return rows


# --------------------------------------------------------------------------- tokenizer
def build_tokenizer():
    """A word-level tokenizer built locally: one token per word and per digit, spaces kept.

    Tokens carry their leading space (" 7", " wait") and a digit that continues a number has
    none ("2" in " 72"), so decoding is lossless and every number is one token per digit.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    for w in WORDS:
        for piece in (w, " " + w):
            vocab.setdefault(piece, len(vocab))
    for d in range(10):
        vocab.setdefault(str(d), len(vocab))
        vocab.setdefault(f" {d}", len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?\d| ?[^\s\d]+"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )


# ------------------------------------------------------------------------------ model
@dataclass
class PretrainConfig:
    seed: int = 0
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 2
    num_heads: int = 4
    seq_len: int = 128
    batch_size: int = 32
    steps: int = 1600
    lr: float = 4e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    corpus: CorpusConfig = field(default_factory=CorpusConfig)


def model_config(tokenizer, cfg: PretrainConfig):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        # Eager attention is ~2x faster than SDPA for a 2-layer, 128-wide model on CPU (measured).
        attn_implementation="eager",
    )


def token_stream(tokenizer, cfg: PretrainConfig, n_tokens: int, exclude: set) -> torch.Tensor:
    """Documents packed end to end, each closed by <eos>, until n_tokens tokens."""
    rng = random.Random(cfg.seed)
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    while len(ids) < n_tokens:
        docs = [document(rng, cfg.corpus, exclude) for _ in range(2048)]
        for row in tokenizer(docs, add_special_tokens=False)["input_ids"]:
            ids.extend(row)
            ids.append(eos)
    return torch.tensor(ids[:n_tokens], dtype=torch.long)


def pretrain(out_dir: str | Path = DEFAULT_MODEL_DIR, cfg: PretrainConfig | None = None, progress: bool = True) -> Path:
    """Pretrain the micro base model from scratch and save it like any Hugging Face model."""
    from transformers import LlamaForCausalLM

    cfg = cfg or PretrainConfig()
    out_dir = Path(out_dir)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    exclude = exam_keys(make_exam())
    n_rows = cfg.steps * cfg.batch_size
    stream = token_stream(tokenizer, cfg, n_rows * (cfg.seq_len + 1), exclude).view(n_rows, cfg.seq_len + 1)
    model = LlamaForCausalLM(model_config(tokenizer, cfg))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to min_lr_ratio (nanoGPT's schedule)
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        progress_ = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress_)))

    model.train()
    losses = []
    bar = tqdm(range(cfg.steps), desc="pretrain micro model", disable=not progress)
    for step in bar:
        batch = stream[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1])  # HF shifts labels inside
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")

    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    info = {
        "pretrain_config": asdict(cfg),
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "seconds": round(time.time() - t0, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens": n_rows * cfg.seq_len,
    }
    (out_dir / "micro_world.json").write_text(json.dumps(info, indent=2))
    return out_dir


def ensure_micro_model(path: str | Path | None = None, progress: bool = True) -> Path:
    """The micro model's directory, pretraining it first if it is missing."""
    path = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not (path / "model.safetensors").exists() or not (path / "tokenizer.json").exists():
        pretrain(path, progress=progress)
    return path


def ensure_exam(path: str | Path = DEFAULT_EXAM_PATH) -> Path:
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for row in make_exam():
                f.write(json.dumps({**row, "exam_seed": EXAM_SEED}) + "\n")
    return path


# --------------------------------------------------------------------------- diagnostics
LADDER = ("direct", "one_shot", "chunked", "verified", "other")


def ladder_rung(completion: str) -> str:
    """Which behaviour of the ladder a micro-world completion shows (for plots, not for rewards)."""
    think = completion.split("<think>", 1)[-1].split("</think>", 1)[0] if "<think>" in completion else ""
    if "</think>" not in completion:
        return "other"
    if "wait" in think.split():
        return "verified"
    lines = [line for line in think.split(" .") if "=" in line]
    if not lines:
        return "direct" if not think.strip() else "other"
    return "one_shot" if len(lines) == 1 else "chunked"
