"""Held-out evaluation: R1-style exam scoring (pass@1 over k samples, cons@k, pass@k).

DeepSeek-R1 (§3) reports pass@1 as the mean correctness over k sampled responses per question
(temperature 0.6, top-p 0.95) and cons@64 as the correctness of the majority-voted answer. This
file has two parts:

1. pure scoring (:func:`pass_at_k`, :func:`majority_vote`, :func:`score_exam`): lists of strings
   in, numbers and tables out, no model involved, so it is fast and fully unit-tested;
2. model sampling, at the end of the file (a separate section, added separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pandas as pd

from grpo_lab.phenomena import count_reflections, length_stats
from grpo_lab.rewards import extract_answer, format_reward, grade_answer, parse_number

if TYPE_CHECKING:
    from grpo_lab.samplers import Sampler

# --------------------------------------------------------------------------------------------
# Pure scoring
# --------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from ``n`` samples of which ``c`` are correct.

    pass@k = 1 - C(n-c, k) / C(n, k), the probability that a random k-subset of the n samples
    holds at least one correct one (Chen et al. 2021, "Evaluating Large Language Models Trained on
    Code", Codex paper). Computed as the product 1 - Π_{i=n-c+1}^{n} (1 - k/i), which avoids the
    huge binomial coefficients (their numerically stable form).

    Raises:
        ValueError: negative arguments, k < 1, c > n, or k > n (pass@k needs at least k samples).
    """
    if n < 0 or c < 0 or k < 0:
        raise ValueError(f"pass_at_k needs non-negative arguments, got n={n}, c={c}, k={k}")
    if k < 1:
        raise ValueError(f"k={k}: pass@k needs k >= 1")
    if c > n:
        raise ValueError(f"c={c} correct samples is more than the n={n} samples drawn")
    if k > n:
        raise ValueError(
            f"k={k} is larger than the n={n} samples drawn; pass@k needs n >= k samples"
        )
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def _vote_key(answer: str) -> Fraction | str:
    """A plain number by value ("42", "42.0", "+42" are one key), else the text without spaces."""
    number = parse_number(answer)
    if number is not None:
        return number
    return "".join(answer.split())  # LaTeX spacing does not change an answer


def _tie_order(key: Fraction | str) -> tuple[int, Fraction | int, str]:
    """The tie rule's order: numbers first, smallest value first; then other answers as text."""
    return (0, key, "") if isinstance(key, Fraction) else (1, 0, key)


@dataclass
class Vote:
    """The outcome of a majority vote: the winner and how contested it was."""

    answer: str | None
    """The winning group's representative (its shortest spelling), None if no sample had an answer."""
    votes: int
    """Samples in the winning group."""
    tied: bool
    """Another group had as many votes: the tie rule picked the winner."""


def vote(answers: Sequence[str | None]) -> Vote:
    """Majority vote over answers grouped by the grader's equivalence (cons@k / maj@k).

    Two answers vote together when :func:`grpo_lab.rewards.grade_answer` would accept one as the
    other: plain numbers by exact value ("42" = "42.0"), anything else by math-verify, so
    ``\\frac{1}{2}``, ``0.5`` and ``1/2`` are one vote. Each answer joins the first group (in tie
    order) whose representative is equivalent to it, so grouping does not depend on sample order.

    Tie rule (documented because it decides cons@k when two groups have the same count): the
    winner is the tied group whose representative comes first in a fixed order — numbers before
    other answers, smaller numbers first, other answers by their text. The rule is arbitrary but
    deterministic and independent of sample order; :func:`score_exam` reports how often it was used
    (``cons_tie_rate``).
    """
    keys: dict[Fraction | str, tuple[str, int]] = {}  # one spelling and a count per distinct key
    for answer in answers:
        if answer is None or not answer.strip():
            continue
        key = _vote_key(answer)
        spelling, count = keys.get(key, (answer, 0))
        keys[key] = (min(spelling, answer, key=lambda a: (len(a), a)), count + 1)  # shortest spelling
    groups: list[list] = []  # [representative key, spelling, count], in tie order
    for key in sorted(keys, key=_tie_order):
        spelling, count = keys[key]
        for group in groups:
            same = key == group[0] if isinstance(key, Fraction) and isinstance(group[0], Fraction) \
                else grade_answer(spelling, group[1])
            if same:
                group[2] += count
                break
        else:
            groups.append([key, spelling, count])
    if not groups:
        return Vote(answer=None, votes=0, tied=False)
    top = max(group[2] for group in groups)
    winners = [group for group in groups if group[2] == top]
    return Vote(answer=winners[0][1], votes=top, tied=len(winners) > 1)


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The winning answer of :func:`vote` (None when every answer is None)."""
    return vote(answers).answer


@dataclass
class ExamResult:
    """The scores of one exam.

    ``metrics``: exam-level numbers (see :func:`score_exam`), ready for logging as ``eval/<key>``.
    ``per_question``: one row per question. ``samples``: one row per sampled response.
    """

    metrics: dict[str, float]
    per_question: pd.DataFrame = field(repr=False)
    samples: pd.DataFrame = field(repr=False)


def score_exam(
    questions: Sequence[str],
    golds: Sequence[Any],
    completions: Sequence[Sequence[str]],
    lengths: Sequence[Sequence[int]] | None = None,
    truncated: Sequence[Sequence[bool]] | None = None,
    ks: Sequence[int] = (1, 2, 4, 8, 16),
    lexicon: str | Sequence[str] = "default",
) -> ExamResult:
    """Score ``n`` sampled completions for each question (R1's protocol, docs/reference.md §3).

    Args:
        questions, golds: one entry per question.
        completions: for each question, its n sampled completions (the same n for every question).
        lengths: tokens per completion, same nesting; None → whitespace-separated word counts.
        truncated: whether each completion hit the length cap, same nesting (for clipped_ratio).
        ks: the k of the pass@k metrics; k larger than n is skipped here (pass_at_k itself raises).
        lexicon: reflection lexicon (grpo_lab.phenomena.LEXICONS name or word list).

    ``metrics`` keys: ``pass@1`` (mean correctness over the n samples, averaged over questions:
    R1's "pass@1" / avg@n), ``cons@{n}`` (majority vote over answers grouped by the grader's
    equivalence, see :func:`vote`), ``cons_tie_rate`` (fraction of questions whose vote was a tie,
    settled by :func:`vote`'s tie rule), ``pass@{k}`` for each k in ``ks`` with
    k ≤ n (unbiased estimator, averaged), ``reflection_rate`` (fraction of responses with a
    reflection marker), ``reflection@{n}`` (fraction of questions with one in any sample),
    ``mean_reflections``, ``format_rate`` (strict R1-Zero format), ``answer_rate`` (fraction with an
    extractable answer), the length statistics of :func:`grpo_lab.phenomena.length_stats`
    (``mean_length``, ``min_length``, ``max_length``, ``mean_length_correct``,
    ``mean_length_incorrect``, ``clipped_ratio``, ``mean_terminated_length``), ``num_questions``
    and ``samples_per_question``.
    """
    num_q = len(questions)
    if num_q == 0:
        raise ValueError("score_exam needs at least one question")
    if len(golds) != num_q or len(completions) != num_q:
        raise ValueError(
            f"got {num_q} questions, {len(golds)} gold answers and {len(completions)} completion "
            "lists; they must match"
        )
    n = len(completions[0])
    if n == 0 or any(len(group) != n for group in completions):
        sizes = sorted({len(group) for group in completions})
        raise ValueError(f"every question needs the same number n >= 1 of samples; got sizes {sizes}")
    for label, nested in (("lengths", lengths), ("truncated", truncated)):
        if nested is not None and [len(x) for x in nested] != [n] * num_q:
            raise ValueError(f"{label} must have the same shape as completions ({num_q} × {n})")

    sample_rows: list[dict[str, Any]] = []
    question_rows: list[dict[str, Any]] = []
    usable_ks = sorted({k for k in ks if 1 <= k <= n})
    for q, (question, gold, group) in enumerate(zip(questions, golds, completions)):
        extracted = [extract_answer(c) for c in group]
        correct = [grade_answer(a, gold) for a in extracted]
        group_lengths = (
            [int(x) for x in lengths[q]] if lengths is not None else [len(c.split()) for c in group]
        )
        reflections = [count_reflections(c, lexicon) for c in group]
        for s, completion in enumerate(group):
            row = {
                "question_idx": q,
                "sample_idx": s,
                "completion": completion,
                "extracted": extracted[s],
                "correct": correct[s],
                "length": group_lengths[s],
                "n_reflections": reflections[s],
            }
            if truncated is not None:
                row["truncated"] = bool(truncated[q][s])
            sample_rows.append(row)

        num_correct = sum(correct)
        majority = vote(extracted)
        question_row = {
            "question": question,
            "answer": gold,
            "n": n,
            "num_correct": num_correct,
            "pass@1": num_correct / n,
            "majority_answer": majority.answer,
            "cons_correct": grade_answer(majority.answer, gold),
            "cons_tied": majority.tied,
            "mean_length": sum(group_lengths) / n,
            "reflection_rate": sum(r > 0 for r in reflections) / n,
        }
        for k in usable_ks:
            if k != 1:  # pass@1 is the mean correctness above (the estimator agrees at k = 1)
                question_row[f"pass@{k}"] = pass_at_k(n, num_correct, k)
        question_rows.append(question_row)

    per_question = pd.DataFrame(question_rows)
    samples = pd.DataFrame(sample_rows)

    metrics: dict[str, float] = {
        "pass@1": float(per_question["pass@1"].mean()),
        f"cons@{n}": float(per_question["cons_correct"].mean()),
        "cons_tie_rate": float(per_question["cons_tied"].mean()),
    }
    for k in usable_ks:
        metrics[f"pass@{k}"] = float(per_question[f"pass@{k}"].mean())
    all_completions = samples["completion"].tolist()
    metrics.update(
        {
            "reflection_rate": float((samples["n_reflections"] > 0).mean()),
            f"reflection@{n}": float(
                samples.groupby("question_idx")["n_reflections"].max().gt(0).mean()
            ),
            "mean_reflections": float(samples["n_reflections"].mean()),
            "format_rate": sum(format_reward([""] * len(all_completions), all_completions))
            / len(all_completions),
            "answer_rate": float(samples["extracted"].notna().mean()),
        }
    )
    metrics.update(
        length_stats(
            samples["length"].tolist(),
            correct=samples["correct"].tolist(),
            truncated=samples["truncated"].tolist() if truncated is not None else None,
        )
    )
    metrics["num_questions"] = float(num_q)
    metrics["samples_per_question"] = float(n)
    metrics = {key: float(value) for key, value in metrics.items()}
    return ExamResult(metrics=metrics, per_question=per_question, samples=samples)


# --------------------------------------------------------------------------------------------
# Model sampling
# --------------------------------------------------------------------------------------------
def evaluate_model(
    model,
    tokenizer,
    exam: list[dict],
    *,
    k: int = 16,
    temperature: float = 0.6,
    top_p: float = 0.95,
    max_new_tokens: int = 512,
    template: str = "r1_zero",
    stop_strings: Sequence[str] = ("</answer>",),
    batch_size: int = 128,
    seed: int = 0,
    lexicon: str = "default",
    ks: Sequence[int] = (1, 2, 4, 8, 16),
    progress: bool = False,
    forbid_phrases: Sequence[str] = (),
    sampler: str | Sampler = "auto",
) -> ExamResult:
    """AIME-style evaluation: k samples per question at T 0.6, top-p 0.95 (DeepSeek-R1 §3).

    ``sampler``: the run's sampler object (grpo_lab.samplers.make_sampler), so that the exam samples
    the way training does, or a name, "auto", "hf" or "lean" (grpo_lab.samplers.resolve_sampler).

    Sampling uses its own seeded torch.Generator, so evaluating never changes what training
    samples next, and two evaluations of the same weights with the same seed are identical.

    ``forbid_phrases``: a causal test of a behaviour. The first token of each phrase (as written
    and after a space, see :func:`first_tokens`) is never sampled, so the policy cannot start the
    phrase and must answer without it. Comparing pass@1 with and without the mask says how much of
    a policy's accuracy depends on the behaviour, which a correlation (reflection rate in correct
    vs incorrect answers) cannot. The mask also forbids every other word that begins with the same
    token; in the micro world " wait" is used only by the check, on a real tokenizer check which
    words share the token.
    """
    import torch
    from tqdm.auto import tqdm

    from grpo_lab.data import TEMPLATE_PREFILL, format_prompt
    from grpo_lab.samplers import resolve_sampler

    if isinstance(sampler, str):
        sampler = resolve_sampler(sampler, model)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    forbid_token_ids = first_tokens(tokenizer, forbid_phrases)
    questions = [str(row["question"]) for row in exam]
    prompts = [format_prompt(q, template, tokenizer) for q in questions]
    prefill = TEMPLATE_PREFILL.get(template, "")  # scored as part of the answer (grpo_lab.rewards.assistant_text)
    per_batch = max(1, batch_size // k)  # questions per sampling batch
    completions: list[list[str]] = []
    lengths: list[list[int]] = []
    truncated: list[list[bool]] = []
    for start in tqdm(range(0, len(prompts), per_batch), desc="eval", disable=not progress, leave=False):
        chunk = prompts[start : start + per_batch]
        out = sampler.generate(
            model, tokenizer, chunk, num_samples=k, max_new_tokens=max_new_tokens, temperature=temperature,
            top_p=top_p, stop_strings=list(stop_strings), generator=generator, forbid_token_ids=forbid_token_ids,
        )
        n_tokens = out.lengths.tolist()
        clipped = out.truncated.tolist()
        for j in range(len(chunk)):
            completions.append([prefill + c for c in out.completions[j * k : (j + 1) * k]])
            lengths.append(n_tokens[j * k : (j + 1) * k])
            truncated.append(clipped[j * k : (j + 1) * k])
    golds = [row["answer"] for row in exam]
    return score_exam(questions, golds, completions, lengths=lengths, truncated=truncated,
                      ks=[x for x in ks if x <= k], lexicon=lexicon)


def first_tokens(tokenizer, phrases: Sequence[str]) -> list[int]:
    """The token ids that can start each phrase: its first token as written and after a space.

    Tokenizers give a word a different token at the start of a text and after a space (" wait" vs
    "wait"), and a completion usually meets the phrase mid-text, so both are returned.
    """
    ids: set[int] = set()
    for phrase in phrases:
        for variant in (phrase.strip(), " " + phrase.strip()):
            tokens = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if tokens:
                ids.add(int(tokens[0]))
    return sorted(ids)


def load_eval_samples(run_dir, step: int | str = "last") -> pd.DataFrame:
    """The per-sample table of one exam evaluation of a run (written by the trainer in eval/).

    `step` is an RL step, "first" or "last". Columns: question_idx, sample_idx, completion,
    extracted, correct, length, n_reflections (see score_exam).
    """
    from pathlib import Path

    files = sorted((Path(run_dir) / "eval").glob("samples_step*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no evaluation samples in {Path(run_dir) / 'eval'}")
    steps = {int(f.stem.removeprefix("samples_step")): f for f in files}
    key = min(steps) if step == "first" else max(steps) if step == "last" else int(step)
    if key not in steps:
        raise KeyError(f"no evaluation at step {key} in {run_dir}; evaluated steps: {sorted(steps)}")
    df = pd.read_json(steps[key], orient="records", lines=True)
    df.attrs["step"] = key
    return df
