"""The exam: one function that the trainer and `grpo-lab eval` both call, with the same seeds.

A run evaluates its policy on a fixed held-out exam every `eval.every` steps (k samples a
question at the eval temperature and top-p: the pass@1-over-k protocol of docs/reference.md §4).
The samples of the exam at step s come from a generator seeded with `exam_seed(grpo.seed, s)`, so
evaluating a saved checkpoint of step s later, with the run's config, reproduces exactly the eval
line the run logged for that step (tests/test_exam.py checks it).
"""

from __future__ import annotations

from grpo_lab.config import Config
from grpo_lab.data import load_exam
from grpo_lab.evaluate import ExamResult, evaluate_model
from grpo_lab.samplers import Sampler


def exam_seed(seed: int, step: int) -> int:
    """The seed of the exam at `step` of a run with `grpo.seed = seed` (a new draw every exam)."""
    return seed * 1_000_003 + step


def run_exam(model, tokenizer, config: Config, step: int, exam: list[dict] | None = None,
             progress: bool = False, sampler: str | Sampler | None = None) -> ExamResult:
    """Evaluate `model` on the config's exam as the trainer does at `step`.

    `exam`: the loaded exam rows (default: load `eval.exam`). Everything else (k, temperature,
    top-p, token budget, template, stop strings, lexicon, forbidden phrases, batch size) comes from
    the config, exactly as the trainer reads it. `sampler`: a sampler object or name (default
    `grpo.sampler`; vLLM, which needs the training engine, falls back to "auto" here). Every
    sampler draws the same tokens for the same generator (tests/test_samplers.py).
    """
    e, g = config.eval, config.grpo
    if sampler is None:
        sampler = "auto" if g.sampler == "vllm" else g.sampler
    if exam is None:
        exam = load_exam(e.exam, config.data.question_field, config.data.answer_field)
    return evaluate_model(
        model, tokenizer, exam, k=e.k, temperature=e.temperature, top_p=e.top_p,
        max_new_tokens=e.max_new_tokens or g.max_new_tokens, template=config.data.template,
        stop_strings=g.stop_strings, batch_size=e.batch_size, seed=exam_seed(g.seed, step),
        lexicon=e.lexicon, forbid_phrases=e.forbid_phrases, progress=progress, sampler=sampler,
    )
