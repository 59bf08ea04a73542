"""Rule-based rewards for R1-Zero-style training.

DeepSeek-R1-Zero is trained with two rule-based rewards only (DeepSeek-R1 paper, §2.2.2): an
*accuracy* reward that checks the final answer by rule, and a *format* reward that checks the
``<think>…</think> <answer>…</answer>`` layout. No neural reward model is used, to avoid reward
hacking. DeepSeek-R1 (§2.3.2) adds a *language-consistency* reward. This module implements those,
plus a coin-flip reward for the control experiment "what if the reward carried no information?".

Every reward function has TRL's signature::

    f(prompts: list[str], completions: list[str], **dataset_columns) -> list[float]

so the same functions plug into ``trl.GRPOTrainer`` and into grpo-lab's own trainer. Completions
are plain strings (the text generated after the prompt, which ends with ``Assistant:``), e.g.
``" <think> 6*7 = 42 </think> <answer> 42 </answer>"``.

Safety: grading never evaluates model text as Python. Plain numbers are compared with
:class:`fractions.Fraction`; everything else goes to Hugging Face ``math-verify``, which parses
LaTeX with a grammar (latex2sympy2) and only hands sympy's ``parse_expr`` strings its regexes have
restricted to digits, operators and brackets. Answers longer than :data:`MAX_ANSWER_CHARS`
score 0.0 without being parsed, and math-verify's own per-operation timeout is always switched on
when we are on the main thread (see :func:`grade_answer`).
"""

from __future__ import annotations

import functools
import math
import numbers
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from grpo_lab.answers import extract_answer, last_boxed_content  # noqa: F401  (part of this module's API)
from grpo_lab.plain import random_state_from_json, random_state_to_json

if TYPE_CHECKING:  # torch is imported inside compute_rewards: importing the graders stays cheap
    import torch

RewardFunction = Callable[..., list[float]]

# Answers longer than this are not graded (0.0): no sensible final answer is this long, and a
# pathological string should not be able to make the LaTeX parser or sympy spin.
MAX_ANSWER_CHARS = 1000

# Seconds math-verify may spend on each parse and on each gold/prediction comparison. It is an
# int because math-verify uses ``signal.alarm``, which counts whole seconds.
MATH_VERIFY_TIMEOUT_S = 2


# --------------------------------------------------------------------------------------------
# Answer extraction lives in grpo_lab.answers (shared with countdown and datasets)
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Format rewards
# --------------------------------------------------------------------------------------------

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_STRICT_FORMAT = re.compile(r"<think>.*</think>\s*<answer>.*</answer>", re.DOTALL)
_ORDERED_TAGS = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def assistant_text(prompt: str, completion: str) -> str:
    """What the assistant wrote: the completion, after an opening ``<think>`` that the prompt prefilled.

    A template may open the assistant's turn with ``<think>`` (data.template "r1_chat_think"); the
    format is then judged on the whole turn, so closing the think block is what earns the format.
    """
    return "<think>" + completion if prompt and prompt.endswith("<think>") else completion


def _paired(prompts: list[str] | None, completions: list[str]) -> list[tuple[str, str]]:
    """(prompt, completion) pairs; callers that score bare completions may pass no prompts."""
    return list(zip(prompts, completions)) if prompts else [("", c) for c in completions]


def format_reward(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
    """Strict R1-Zero format reward: 1.0 iff the completion is exactly ``<think>…</think><answer>…</answer>``.

    After stripping surrounding whitespace the whole completion must be one ``<think>`` block,
    optional whitespace, then one ``<answer>`` block, with nothing after ``</answer>``, and each of
    the four tags must occur exactly once (DeepSeek-R1 Table 1 template). Text after the answer is
    rejected because it is where a model that keeps talking would hide a second answer.
    The contents may be empty: the accuracy reward is what judges the answer.
    """
    rewards = []
    for prompt, completion in _paired(prompts, completions):
        text = assistant_text(prompt, completion).strip()
        ok = all(text.count(tag) == 1 for tag in _TAGS) and _STRICT_FORMAT.fullmatch(text)
        rewards.append(1.0 if ok else 0.0)
    return rewards


def soft_format_reward(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
    """Partial-credit format reward in [0, 1], a denser signal for small models.

    - 1.0 if ``<think>…</think>`` followed (after optional whitespace) by ``<answer>…</answer>``
      appears anywhere in the completion (text before or after is tolerated);
    - otherwise 0.25 for each of the four tags that appears exactly once, capped at 0.75, so only
      the right order can earn full credit. A ``<think>`` that the prompt prefilled (data.template
      "r1_chat_think") earns nothing: partial credit is for tags the model wrote, so an empty or
      garbled completion scores 0 with every template (`grpo-lab check-rewards` checks this).

    Why: with a strict 0/1 reward a base model that never emits the exact layout gets no gradient
    from the format at all; partial credit for each tag gives it a slope to climb (the open-r1 and
    TinyZero recipes use similar "soft" variants).
    """
    rewards = []
    for prompt, completion in _paired(prompts, completions):
        text = assistant_text(prompt, completion)
        if _ORDERED_TAGS.search(text):
            rewards.append(1.0)
            continue
        prefilled = text != completion  # the template opened <think>; the model did not write it
        written = _TAGS[1:] if prefilled else _TAGS
        present_once = sum(text.count(tag) == 1 for tag in written)
        rewards.append(min(0.75, 0.25 * present_once))
    return rewards


# --------------------------------------------------------------------------------------------
# Accuracy reward
# --------------------------------------------------------------------------------------------

# A plain number: optional sign, digits with optional thousands commas, optional decimals.
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+")


def parse_number(text: str) -> Fraction | None:
    """Parse a plain number ("42", "-3.50", "+1,000", ".5") exactly, else None.

    A Fraction, not a float: "0.1" must equal "0.10" exactly, and large integers must not round.
    """
    text = text.strip()
    if len(text) > MAX_ANSWER_CHARS or not _NUMBER.fullmatch(text):
        return None
    return Fraction(text.replace(",", ""))


_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")  # "$x$" is math mode, "\$42" is a dollar sign


def _as_latex(text: str) -> str:
    """Wrap bare text in ``$…$`` so math-verify's LaTeX extractor looks at it."""
    if _UNESCAPED_DOLLAR.search(text) or any(m in text for m in ("\\(", "\\[", "\\boxed")):
        return text
    return f"${text}$"


def _math_verify_timeout() -> int | None:
    """The timeout to hand math-verify: ours on the main thread, None elsewhere.

    math-verify's timeout uses ``signal.alarm``, which only works on the main thread; elsewhere it
    raises. Off the main thread (e.g. a grading thread pool) we therefore run without its timeout
    and rely on :data:`MAX_ANSWER_CHARS` alone: grade on the main thread to keep the time limit.
    """
    if threading.current_thread() is threading.main_thread():
        return MATH_VERIFY_TIMEOUT_S
    return None


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str, timeout_s: int | None) -> tuple:
    """Gold answers repeat G times per group; parse each once."""
    from math_verify import parse

    return tuple(parse(_as_latex(gold), parsing_timeout=timeout_s))


def grade_answer(pred: str | None, gold: Any) -> bool:
    """True iff the extracted answer ``pred`` matches the gold answer.

    1. ``pred`` None, empty, or over :data:`MAX_ANSWER_CHARS` characters → False.
    2. Both parse as plain numbers (commas and a leading sign allowed) → exact comparison, so
       "42" == "42.0" == "+42" but "42" != "42.5" (docs/reference.md §1.3: numeric tasks may compare
       numbers exactly; no float tolerance that a near-miss could exploit).
    3. Otherwise Hugging Face math-verify: ``verify(parse(gold), parse(pred))``, each wrapped in
       ``$…$`` when it has no math delimiters, so ``\\frac{1}{2}`` matches ``0.5``. Each parse and
       comparison is limited to :data:`MATH_VERIFY_TIMEOUT_S` seconds (main thread only, see
       :func:`_math_verify_timeout`); a timeout counts as wrong.
    """
    if pred is None or gold is None:
        return False
    pred = pred.strip()
    gold = str(gold).strip()
    if not pred or not gold or len(pred) > MAX_ANSWER_CHARS:
        return False

    pred_number, gold_number = parse_number(pred), parse_number(gold)
    if pred_number is not None and gold_number is not None:
        return pred_number == gold_number

    from math_verify import parse, verify  # imported lazily: it pulls in sympy

    timeout_s = _math_verify_timeout()
    gold_parsed = list(_parse_gold(gold, timeout_s))
    pred_parsed = parse(_as_latex(pred), parsing_timeout=timeout_s)
    if not pred_parsed:  # wrapping found nothing: let math-verify search the raw text itself
        pred_parsed = parse(pred, parsing_timeout=timeout_s)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))


def answer_is_readable(pred: str | None) -> bool:
    """Whether the grader can read an extracted answer at all, right or wrong.

    False for no answer (None: no closed ``<answer>`` tag, or an empty one), an answer over
    :data:`MAX_ANSWER_CHARS`, and prose: text in which math-verify finds no math as written and
    that reads as words (a run of 4+ letters, or two words of 2+ letters, outside LaTeX commands),
    e.g. "the sum of them". Why the word rule: wrapped in ``$…$`` (as the grader wraps answers)
    any letters parse as a product of variables, so parsing alone cannot tell prose from ``x^2+1``.
    Such completions score 0 like wrong answers do, but they are a different problem (a format or
    a length cap, not the arithmetic), hence their own metric.
    """
    if pred is None or not pred.strip() or len(pred) > MAX_ANSWER_CHARS:
        return False
    if parse_number(pred) is not None:
        return True
    from math_verify import parse  # imported lazily: it pulls in sympy

    timeout_s = _math_verify_timeout()
    if parse(pred, parsing_timeout=timeout_s):
        return True
    words = re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", pred))
    if any(len(w) >= 4 for w in words) or len(words) >= 2:
        return False
    return bool(parse(_as_latex(pred), parsing_timeout=timeout_s))


def unparsed_ratio(completions: Sequence[str]) -> float:
    """Fraction of completions whose final answer cannot be read (:func:`answer_is_readable`).

    Logged as ``completions/unparsed_ratio``: it separates "could not parse an answer" from
    "wrong", which the accuracy reward alone (0 for both) cannot.
    """
    if not completions:
        return float("nan")
    return sum(not answer_is_readable(extract_answer(c)) for c in completions) / len(completions)


def is_correct(completion: str, gold: Any) -> bool:
    """Extract the answer from a whole completion and grade it (used by evaluation)."""
    return grade_answer(extract_answer(completion), gold)


def accuracy_reward(
    prompts: list[str], completions: list[str], answer: Sequence[Any], **kwargs: Any
) -> list[float]:
    """R1-Zero accuracy reward: 1.0 if the final answer is right, else 0.0.

    Reads the dataset's ``answer`` column (one gold answer per completion, as TRL repeats columns
    for each of the G generations). A missing answer tag scores 0.0: the format is part of the
    task (DeepSeek-R1 §2.2.2 requires the answer "in a specified format").
    """
    if len(answer) != len(completions):
        raise ValueError(
            f"accuracy_reward got {len(completions)} completions but {len(answer)} gold answers"
        )
    return [1.0 if is_correct(c, gold) else 0.0 for c, gold in zip(completions, answer)]


# --------------------------------------------------------------------------------------------
# Language-consistency reward (DeepSeek-R1 §2.3.2)
# --------------------------------------------------------------------------------------------

_CJK = (
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0002ebef"  # Extensions B-F
)
# A token is one CJK ideograph, or a run of anything else that is neither whitespace nor CJK.
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")

SUPPORTED_LANGUAGES = ("en", "zh")


def _think_part(text: str) -> str:
    """The chain of thought: between ``<think>`` and ``</think>`` (or ``<answer>``/the end if unclosed)."""
    start = text.find("<think>")
    if start == -1:
        return ""
    start += len("<think>")
    end = text.find("</think>", start)
    if end == -1:
        end = text.find("<answer>", start)
    return text[start:] if end == -1 else text[start:end]


def language_fraction(text: str, target_language: str = "en") -> float:
    """Fraction of the words in ``text`` that are in ``target_language`` (0.0 if there are none).

    Definition (DeepSeek-R1 §2.3.2 says only "the proportion of target language words in the CoT";
    this makes it precise):

    - Words are whitespace-separated runs, except that every CJK ideograph is a word of its own
      (Chinese is written without spaces).
    - Words with no letter at all (numbers, ``=``, ``+``, punctuation) are language-neutral and
      are ignored, so a derivation full of arithmetic is not counted against either language.
    - ``"en"``: a word counts if it is pure ASCII (letters, digits, ASCII punctuation); words with
      Cyrillic, accented, CJK … letters count as another language.
    - ``"zh"``: a word counts if it is a CJK ideograph.
    """
    if target_language not in SUPPORTED_LANGUAGES:
        raise ValueError(
            f"target_language={target_language!r} is not supported; use one of {SUPPORTED_LANGUAGES}"
        )
    words = [w for w in _TOKEN.findall(text) if any(ch.isalpha() for ch in w)]
    if not words:
        return 0.0
    if target_language == "en":
        in_target = sum(w.isascii() for w in words)
    else:
        in_target = sum(bool(_CJK_CHAR.fullmatch(w)) for w in words)
    return in_target / len(words)


def language_consistency_reward(
    prompts: list[str], completions: list[str], target_language: str = "en", **kwargs: Any
) -> list[float]:
    """DeepSeek-R1's language-consistency reward: the target-language fraction of the ``<think>`` part.

    R1 adds this to the accuracy reward to stop the chain of thought from mixing languages, at a
    small cost in accuracy (§2.3.2). An empty or missing think part scores 0.0: there is no
    target-language reasoning to reward, and a reward for saying nothing would be easy to hack.
    See :func:`language_fraction` for the word definition.
    """
    return [language_fraction(_think_part(c), target_language) for c in completions]


# --------------------------------------------------------------------------------------------
# Coin-flip control
# --------------------------------------------------------------------------------------------

class CoinFlipReward:
    """Bernoulli(0.5) rewards that ignore the text: the "rewards replaced by coin flips" control.

    If training on this still "improves" a metric, the improvement is not coming from the reward.
    Each instance owns its generator (seeded with `seed`), so that a run's coin flips are
    reproducible and a checkpoint can save and restore them (`state_dict`, grpo_lab.run_state);
    no state is kept at module level.
    """

    __name__ = "coin_flip_reward"  # the metric name (rewards/coin_flip_reward/mean), as for a function

    def __init__(self, seed: int | None = None):
        self.rng = random.Random(seed)

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return [float(self.rng.random() < 0.5) for _ in completions]

    def state_dict(self) -> dict:
        return {"rng": random_state_to_json(self.rng.getstate())}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(random_state_from_json(state["rng"]))


def coin_flip_reward(prompts: list[str], completions: list[str], seed: int | None = None, **kwargs: Any
                     ) -> list[float]:
    """One call's coin flips (a fresh generator seeded with `seed`); a run uses :class:`CoinFlipReward`."""
    return CoinFlipReward(seed)(prompts, completions)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

REWARD_FUNCTIONS: dict[str, RewardFunction | type] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "soft_format": soft_format_reward,
    "language_consistency": language_consistency_reward,
    "coin_flip": CoinFlipReward,  # a class: each run gets its own seeded generator
}


class UnknownRewardFunctionError(KeyError, ValueError):
    """Raised for an unknown reward name; both a KeyError and a ValueError so either catch works."""

    def __str__(self) -> str:  # KeyError's str() would wrap the message in quotes
        return str(self.args[0])


def get_reward_function(name: str, seed: int | None = None) -> RewardFunction:
    """Look a reward function up by its registry name (config files name rewards this way).

    A registry entry that is a class (a reward with state, e.g. :class:`CoinFlipReward`) gives a
    new instance seeded with `seed` (the trainer passes grpo.seed).
    """
    try:
        entry = REWARD_FUNCTIONS[name]
    except KeyError:
        allowed = ", ".join(sorted(REWARD_FUNCTIONS))
        raise UnknownRewardFunctionError(
            f"unknown reward function {name!r}; allowed names: {allowed}"
        ) from None
    return entry(seed=seed) if isinstance(entry, type) else entry


# --------------------------------------------------------------------------------------------
# Combining rewards
# --------------------------------------------------------------------------------------------


class RewardFunctionError(RuntimeError):
    """A reward function raised or returned something unusable; the message says which and where."""


def _function_name(func: Callable) -> str:
    """A readable name for a function, also for ``functools.partial`` objects."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", repr(func))


def _named_functions(
    funcs: Mapping[str, Callable] | Sequence[Callable],
) -> list[tuple[str, Callable]]:
    if isinstance(funcs, Mapping):
        named = list(funcs.items())
    else:
        named = [(_function_name(f), f) for f in funcs]
    names = [name for name, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"reward function names must be unique; duplicated: {duplicates}")
    if not named:
        raise ValueError("at least one reward function is needed")
    return named


def check_reward_functions(funcs: Mapping[str, Callable] | Sequence[Callable]) -> list[tuple[str, Callable]]:
    """Check reward functions before any step runs: callable, with unique names (the metric keys).

    The trainer calls this when it is built, so a clash fails in a second and not after the
    step-0 exam. Returns the ``(name, function)`` pairs.
    """
    named = _named_functions(funcs)
    for name, func in named:
        if not callable(func):
            raise ValueError(f"reward function {name!r} is not callable: {func!r}")
    return named


FLOAT32_MAX = 3.4028234663852886e38
"""Rewards are summed in float32; a larger magnitude would become inf there."""


def _as_reward(value: Any) -> float | None:
    """A reward as a float, or None when it is not a real number (bools, strings, containers)."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _resolve_weights(
    names: list[str], weights: Sequence[float] | Mapping[str, float] | None
) -> list[float]:
    if weights is None:
        return [1.0] * len(names)
    if isinstance(weights, Mapping):
        missing = [n for n in names if n not in weights]
        if missing:
            raise ValueError(f"no weight given for reward function(s) {missing}")
        return [float(weights[n]) for n in names]
    if len(weights) != len(names):
        raise ValueError(
            f"got {len(weights)} reward weights for {len(names)} reward functions {names}"
        )
    return [float(w) for w in weights]


def _is_per_sample(values: Any) -> bool:
    """Columns given as lists/tuples hold one value per completion; anything else is shared."""
    return isinstance(values, (list, tuple))


def _call_checked(
    name: str,
    func: Callable,
    prompts: list[str],
    completions: list[str],
    columns: Mapping[str, Any],
) -> list[float]:
    """Call one reward function on the batch and turn every kind of misbehaviour into a clear error."""
    n = len(completions)
    try:
        raw = func(prompts=prompts, completions=completions, **columns)
    except Exception as batch_exc:
        # Find the first completion that fails on its own, so the error points at the data.
        for i in range(n):
            item_columns = {
                key: [values[i]] if _is_per_sample(values) else values
                for key, values in columns.items()
            }
            try:
                func(prompts=[prompts[i]], completions=[completions[i]], **item_columns)
            except Exception as exc:
                raise RewardFunctionError(
                    f"reward function {name!r} raised {type(exc).__name__} on completion "
                    f"index {i}: {exc}"
                ) from exc
        raise RewardFunctionError(
            f"reward function {name!r} raised {type(batch_exc).__name__} on the batch of {n} "
            f"completions (each completion passes on its own): {batch_exc}"
        ) from batch_exc

    if isinstance(raw, (str, bytes, Mapping)) or not hasattr(raw, "__len__") or not hasattr(raw, "__iter__"):
        # A dict would be iterated over its keys and a string over its characters: never rewards.
        raise RewardFunctionError(
            f"reward function {name!r} returned {type(raw).__name__}, expected a list of {n} floats"
        )
    got = len(raw)
    if got != n:
        raise RewardFunctionError(
            f"reward function {name!r} returned the wrong number of rewards: expected {n}, got {got}"
        )

    rewards = []
    for i, value in enumerate(raw):
        reward = _as_reward(value)
        if reward is None:
            raise RewardFunctionError(
                f"reward function {name!r} returned {value!r} ({type(value).__name__}, not a real number) at "
                f"completion index {i}"
            )
        if not math.isfinite(reward):
            raise RewardFunctionError(
                f"reward function {name!r} returned {reward} (not finite) at completion index {i}"
            )
        if abs(reward) > FLOAT32_MAX:
            raise RewardFunctionError(
                f"reward function {name!r} returned {reward} at completion index {i}, beyond the float32 range "
                f"(±{FLOAT32_MAX:.4g}) rewards are summed in"
            )
        rewards.append(reward)
    return rewards


def compute_rewards(
    funcs: Mapping[str, Callable] | Sequence[Callable],
    weights: Sequence[float] | Mapping[str, float] | None,
    prompts: list[str],
    completions: list[str],
    columns: Mapping[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Run every reward function on a batch and combine them: ``total = Σ_j w_j · r_j``.

    Args:
        funcs: ``{name: function}``, or a list of functions named by ``__name__`` (as TRL does).
        weights: one weight per function (list, or dict by name); None means all 1.0.
        prompts, completions: N strings each.
        columns: the dataset columns to pass as keyword arguments. Lists/tuples hold one value
            per completion and must have length N; other values (TRL's ``trainer_state``, a
            setting such as ``target_language="zh"``) are passed unchanged.

    Returns:
        ``(total, per_function)``: ``total`` is a float32 tensor of shape (N,); ``per_function``
        maps each name to its raw (unweighted) rewards, for the ``rewards/<name>/mean`` metrics.

    Raises:
        RewardFunctionError: a function raised (message names it and the first failing completion
            index), returned the wrong number of rewards, or returned None/NaN/inf/non-numbers.
        ValueError: mismatched lengths of prompts, completions, columns or weights.
    """
    import torch

    columns = dict(columns or {})
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts for {n} completions")
    for key, values in columns.items():
        if _is_per_sample(values) and len(values) != n:
            raise ValueError(f"column {key!r} has {len(values)} values for {n} completions")

    named = _named_functions(funcs)
    weight_list = _resolve_weights([name for name, _ in named], weights)

    per_function: dict[str, list[float]] = {}
    total = torch.zeros(n, dtype=torch.float32)
    for (name, func), weight in zip(named, weight_list):
        rewards = _call_checked(name, func, prompts, completions, columns)
        per_function[name] = rewards
        total += weight * torch.tensor(rewards, dtype=torch.float32)
    return total, per_function


def weighted_sum(funcs: Sequence[Callable], weights: Sequence[float]) -> RewardFunction:
    """Fold several reward functions into one TRL-signature function returning ``Σ_j w_j · r_j``.

    Useful where only one reward function can be passed (e.g. R1's "accuracy + language
    consistency" as a single reward). Errors are reported as in :func:`compute_rewards`.
    """
    named = _named_functions(funcs)
    weight_list = _resolve_weights([name for name, _ in named], weights)

    def combined(prompts: list[str], completions: list[str], **columns: Any) -> list[float]:
        total, _ = compute_rewards(dict(named), weight_list, prompts, completions, columns)
        return total.tolist()

    combined.__name__ = "weighted_sum_" + "_".join(name for name, _ in named)
    return combined


# Countdown (TinyZero's task) lives in its own module with its safe equation checker; registered
# here so that configs can name it like every other reward.
from grpo_lab.countdown import countdown_reward  # noqa: E402

REWARD_FUNCTIONS["countdown"] = countdown_reward
