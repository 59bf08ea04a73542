"""Measuring the phenomena R1-Zero reported: longer responses and reflection ("aha moments").

DeepSeek-R1 (§2.2.4) reports that R1-Zero's average response length grows steadily during RL and
that reflection, "the model revisits and reevaluates its previous steps", appears on its own. The
public reproductions measure reflection with keyword lists (docs/reference.md §4.2):

- understand-r1-zero (Liu et al. 2025, "Understanding R1-Zero-Like Training"),
- SimpleRL-Zoo (Zeng et al. 2025),
- Open-Reasoner-Zero (Hu et al. 2025), which uses case-sensitive regular expressions.

Each reproduction counts in its own way (docs/reference.md §7, read from their code), and a list
that carries a source's name here also carries that source's counting, so its figures can be
compared with the source's:

- ``grpo-lab`` (the default; ``"default"`` is an alias): our own list, matched case-insensitively
  on word boundaries; a run of markers with only spaces and punctuation between them is one
  reflection ("wait , let me check", R1's "Wait, wait. Wait."). A count per response.
- ``understand-r1-zero``: lower-cased substring, any keyword: 1 if any keyword occurs, else 0.
- ``simplerl``: lower-cased substring counts, summed over keywords ("waiting" counts as "wait";
  "retry again" counts "retry" and "try again").
- ``orz``: Open-Reasoner-Zero's regexes, case-sensitive, ``re.findall`` per pattern, summed
  ("Wait," does not match ``wait,``; "await," does).

So the same text gets different numbers: "Rechecking… reconsidered…" is a reflection for
understand-r1-zero (substrings) and none for ``grpo-lab`` (whole words only). The sources'
headline figures may add more than counting (understand-r1-zero also asks an LLM judge;
SimpleRL-Zoo reads only the first sample per question), which a keyword count does not reproduce.

Keyword counts measure how often the *words* of reflection appear, not whether the model actually
re-checked anything; oat-zero ("There May Not be Aha Moment in R1-Zero-like Training") shows base
models already use these words at step 0. :func:`find_corrections` and :func:`find_aha_examples`
look for the real thing, a check that changes a stated value; their precision and recall are
measured on answers whose truth is known (``benchmarks/aha_precision.py``,
:func:`grpo_lab.micro_world.labelled_aha_set`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

CountingMethod = Literal["word_boundary", "substring_any", "substring_count", "regex_count"]


@dataclass(frozen=True)
class Lexicon:
    """A named list of reflection markers and the way its source counts them.

    ``method`` (see the module docstring): ``"word_boundary"`` (grpo-lab's own: whole words,
    case-insensitive, flexible whitespace inside phrases, adjacent markers merged),
    ``"substring_any"`` (understand-r1-zero), ``"substring_count"`` (SimpleRL-Zoo) or
    ``"regex_count"`` (Open-Reasoner-Zero: the patterns are case-sensitive regexes).
    """

    name: str
    patterns: tuple[str, ...]
    method: CountingMethod = "word_boundary"
    source: str = ""

    @property
    def is_regex(self) -> bool:
        return self.method == "regex_count"


DEFAULT_LEXICON = "grpo-lab"
"""The lexicon used when none is named (``"default"`` is accepted as an alias for it)."""

LEXICONS: dict[str, Lexicon] = {
    # Ours, not the union of the others: the R1 paper's own "wait" / "aha" (Table 3: "Wait, wait.
    # Wait. That's an aha moment I can flag here."), plus a selection of the reproductions'
    # self-verification words and a few of our own ("let me check", "verify", "hmm", "mistake").
    # Left out on purpose: "however" (ordinary contrastive prose far more often than a reflection,
    # which is why understand-r1-zero does not use it) and "retry".
    "grpo-lab": Lexicon(
        name="grpo-lab",
        patterns=(
            "wait",
            "let me check",
            "recheck",
            "rethink",
            "re-evaluate",
            "reevaluate",
            "reconsider",
            "double-check",
            "double check",
            "check again",
            "verify",
            "hmm",
            "try again",
            "alternatively",
            "mistake",
            "aha",
        ),
        method="word_boundary",
        source="grpo-lab's own list (DeepSeek-R1 Table 3 + some of the reproductions' words), word boundaries",
    ),
    "understand-r1-zero": Lexicon(
        name="understand-r1-zero",
        patterns=(
            "recheck",
            "rethink",
            "reassess",
            "reevaluate",
            "re-evaluate",
            "reevaluation",
            "re-examine",
            "reexamine",
            "reconsider",
            "reanalyze",
            "double-check",
            "check again",
            "think again",
            "verify again",
            "go over the steps",
        ),
        method="substring_any",
        source="Liu et al. 2025, Understanding R1-Zero-Like Training (sail-sg/understand-r1-zero, "
        "analysis/keyword_count.py): lower-cased substring, any keyword, yes/no per response",
    ),
    "simplerl": Lexicon(
        name="simplerl",
        patterns=("recheck", "rethink", "try again", "wait", "alternatively", "retry", "however"),
        method="substring_count",
        source="Zeng et al. 2025, SimpleRL-Zoo (hkust-nlp/simpleRL-reason, collect_results.py): "
        "lower-cased substring counts, summed",
    ),
    "orz": Lexicon(
        name="orz",
        patterns=(r"wait,", r"recheck[,\s]", r"retry", r"alternatively,", r"however,"),
        method="regex_count",
        source="Hu et al. 2025, Open-Reasoner-Zero (orz/ppo/utils.py): case-sensitive re.findall per "
        "pattern, summed",
    ),
}


def _resolve_lexicon(lexicon: str | Sequence[str] | Lexicon) -> Lexicon:
    if isinstance(lexicon, Lexicon):
        return lexicon
    if isinstance(lexicon, str):
        try:
            return LEXICONS[DEFAULT_LEXICON if lexicon == "default" else lexicon]
        except KeyError:
            raise ValueError(
                f"unknown lexicon {lexicon!r}; known lexicons: {', '.join(LEXICONS)} "
                "(\"default\" is grpo-lab; or pass a list of words)"
            ) from None
    return Lexicon(name="custom", patterns=tuple(lexicon))


def _phrase_regex(phrase: str) -> str:
    """A word/phrase as a regex: whole words only, any run of whitespace between the words."""
    words = phrase.split()
    body = r"\s+".join(re.escape(word) for word in words)
    return rf"(?<!\w){body}(?!\w)"


@functools.lru_cache(maxsize=64)
def _compile(lexicon: Lexicon) -> list[re.Pattern[str]]:
    """The lexicon's patterns as compiled regexes.

    Word boundaries: one alternation, longest phrase first, so "let me check again" matches once
    (as "let me check"), not once per phrase it contains. The sources' methods: one pattern per
    keyword, as they count each keyword separately.
    """
    patterns = [p for p in lexicon.patterns if p.strip()]
    if not patterns:
        return []
    if lexicon.method == "word_boundary":
        body = "|".join(f"(?:{_phrase_regex(p)})" for p in sorted(patterns, key=len, reverse=True))
        return [re.compile(body, re.IGNORECASE)]
    if lexicon.method == "regex_count":
        return [re.compile(p) for p in patterns]
    return [re.compile(re.escape(p.lower())) for p in patterns]  # substrings of the lower-cased text


def find_reflections(
    text: str, lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON
) -> list[re.Match[str]]:
    """Every marker match in ``text``, in order of position, as the lexicon's method finds them.

    For the substring methods the matches are on ``text.lower()`` (same positions, as long as
    lower-casing keeps the length, which it does for ASCII).
    """
    lex = _resolve_lexicon(lexicon)
    haystack = text.lower() if lex.method in ("substring_any", "substring_count") else text
    matches = [m for pattern in _compile(lex) for m in pattern.finditer(haystack)]
    return sorted(matches, key=lambda m: (m.start(), m.end()))


def _marker_spans(text: str, matches: list[re.Match[str]]) -> list[tuple[int, int]]:
    """Marker matches as (start, end) spans, merging markers with only punctuation and spaces
    between them: "wait , let me check" is one reflection, not two with nothing in between."""
    spans: list[tuple[int, int]] = []
    for m in matches:
        if spans and (m.start() <= spans[-1][1] or not re.search(r"\w", text[spans[-1][1] : m.start()])):
            spans[-1] = (spans[-1][0], max(spans[-1][1], m.end()))
        else:
            spans.append((m.start(), m.end()))
    return spans


def count_reflections(text: str, lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON) -> int:
    """Count reflections in one response, the way the lexicon's source counts them.

    ``lexicon`` is a name from :data:`LEXICONS` (``"default"`` = ``"grpo-lab"``) or a list of
    words/phrases (counted like ``grpo-lab``).

    - ``grpo-lab`` and word lists: whole words, case-insensitive, any whitespace inside a phrase
      ("check  again" counts), so "await" is not "wait" and "rechecking" is not "recheck". Markers
      with only spaces and punctuation between them are one reflection ("wait , let me check" is 1).
    - ``understand-r1-zero``: 1 if any keyword is a substring of the lower-cased text, else 0.
    - ``simplerl``: the sum over keywords of ``text.lower().count(keyword)``.
    - ``orz``: the sum over patterns of ``len(re.findall(pattern, text))``, case-sensitive.

    Raises:
        ValueError: unknown lexicon name (the message lists the known ones).
    """
    lex = _resolve_lexicon(lexicon)
    if lex.method == "word_boundary":
        return len(_marker_spans(text, find_reflections(text, lex)))
    if lex.method == "substring_any":
        lowered = text.lower()
        return int(any(p.lower() in lowered for p in lex.patterns if p))
    if lex.method == "substring_count":
        lowered = text.lower()
        return sum(lowered.count(p.lower()) for p in lex.patterns if p)
    return sum(len(pattern.findall(text)) for pattern in _compile(lex))


def reflection_stats(
    texts: Sequence[str], lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON
) -> dict[str, float]:
    """Per-response reflection statistics: ``mean_count`` and ``rate`` (fraction with ≥ 1).

    Both are NaN for an empty list (no responses is not the same as no reflection). For
    understand-r1-zero, which counts yes/no per response, ``mean_count`` equals ``rate``.
    """
    counts = [count_reflections(t, lexicon) for t in texts]
    if not counts:
        return {"mean_count": math.nan, "rate": math.nan}
    return {
        "mean_count": sum(counts) / len(counts),
        "rate": sum(c > 0 for c in counts) / len(counts),
    }


def reflection_at_k(
    groups: Sequence[Sequence[str]], lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON
) -> float:
    """Fraction of questions for which at least one of the k sampled responses reflects.

    The per-question view used by the reproductions ("reflection@k"). NaN for no questions.
    """
    if not groups:
        return math.nan
    return sum(any(count_reflections(t, lexicon) > 0 for t in g) for g in groups) / len(groups)


def length_stats(
    lengths: Sequence[int],
    correct: Sequence[bool] | None = None,
    truncated: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Response-length statistics, named like TRL's ``completions/*`` metrics.

    Returns ``mean_length``, ``min_length``, ``max_length``, ``mean_length_correct``,
    ``mean_length_incorrect`` (split by correctness: Liu et al. 2025, Dr. GRPO, show that GRPO's
    per-sequence normalisation lets wrong answers grow longest), ``clipped_ratio`` (fraction stopped by the length cap)
    and ``mean_terminated_length`` (mean over responses that ended by themselves).
    A value with nothing to average over (or whose input was not given) is NaN.
    """
    n = len(lengths)
    for label, values in (("correct", correct), ("truncated", truncated)):
        if values is not None and len(values) != n:
            raise ValueError(f"{label} has {len(values)} entries for {n} lengths")

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    lengths = [float(x) for x in lengths]
    stats = {
        "mean_length": mean(lengths),
        "min_length": min(lengths) if lengths else math.nan,
        "max_length": max(lengths) if lengths else math.nan,
        "mean_length_correct": math.nan,
        "mean_length_incorrect": math.nan,
        "clipped_ratio": math.nan,
        "mean_terminated_length": math.nan,
    }
    if correct is not None:
        stats["mean_length_correct"] = mean([x for x, ok in zip(lengths, correct) if ok])
        stats["mean_length_incorrect"] = mean([x for x, ok in zip(lengths, correct) if not ok])
    if truncated is not None and n:
        stats["clipped_ratio"] = sum(bool(t) for t in truncated) / n
        stats["mean_terminated_length"] = mean([x for x, t in zip(lengths, truncated) if not t])
    return stats


# --------------------------------------------------------------------------------------------
# "Aha" examples
# --------------------------------------------------------------------------------------------

# "= 42", "= -3.5", "= 1,000", "= $12" : a value the model states for something.
_STATED_VALUE = re.compile(r"=\s*\$?\s*([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)")


def _think_or_body(text: str) -> str:
    """The reasoning part: inside ``<think>`` if present, else everything before ``<answer>``."""
    start = text.find("<think>")
    start = 0 if start == -1 else start + len("<think>")
    end = text.find("</think>", start)
    if end == -1:
        end = text.find("<answer>", start)
    return text[start:] if end == -1 else text[start:end]


def _last_value(segment: str) -> tuple[str, Fraction] | None:
    matches = _STATED_VALUE.findall(segment)
    if not matches:
        return None
    raw = matches[-1]
    return raw, Fraction(raw.replace(",", ""))


# The end of a sentence: ".", "!" or "?" before a space or the end (so "0.5" does not end one), or a
# line break. A check's result is stated in the sentence that the check opens.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _check_span(reasoning: str, start: int, limit: int) -> str:
    """The check a marker opens: from ``start`` to the end of its sentence (at most ``limit``).

    If that sentence states no value ("Wait, that is wrong."), the next sentence is taken as well.
    """
    end = start
    for _ in range(2):
        match = _SENTENCE_END.search(reasoning, end, limit)
        end = match.end() if match else limit
        if _last_value(reasoning[start:end]) is not None or end >= limit:
            break
    return reasoning[start:end]


def find_corrections(
    text: str, lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON
) -> list[dict[str, Any]]:
    """Every reflection in the reasoning of ``text``, with the value it checked and the value it found.

    For each reflection (a run of adjacent markers, see :func:`count_reflections`):

    - ``before``: the last value stated as ``= N`` between the previous reflection (or the start
      of the reasoning) and this one: the value being checked;
    - ``after``: the last ``= M`` inside the check itself, i.e. from the marker to the end of its
      sentence (one more sentence if that one states no value), never past the next reflection;
    - ``changed``: both are numbers and differ: the check corrected the value.

    Ending the check at its sentence matters: the text that follows a check that only confirmed a
    value ("… = 24 . wait , let me check : … = 24 . 24 + 4 + 1 = 29") is the next step of the
    working, and reading its value as the check's result would report a correction that never
    happened. Misses: corrections not written as ``= number`` (in words, in LaTeX) and checks
    whose result is stated more than a sentence later. Returns dicts with ``marker``, ``before``,
    ``after`` (the values as written, or None), ``changed``, ``start`` and ``end`` (the check's
    span in the reasoning).
    """
    reasoning = _think_or_body(text)
    spans = _marker_spans(reasoning, find_reflections(reasoning, lexicon))
    found = []
    for j, (start, end) in enumerate(spans):
        previous_end = spans[j - 1][1] if j > 0 else 0
        next_start = spans[j + 1][0] if j + 1 < len(spans) else len(reasoning)
        before = _last_value(reasoning[previous_end:start])
        check = _check_span(reasoning, end, next_start)
        after = _last_value(check)
        found.append({
            "marker": reasoning[start:end],
            "before": before[0] if before else None,
            "after": after[0] if after else None,
            "changed": before is not None and after is not None and before[1] != after[1],
            "start": start,
            "end": end + len(check),
        })
    return found


def find_aha_examples(
    completions: Sequence[str],
    correct: Sequence[bool],
    lexicon: str | Sequence[str] | Lexicon = DEFAULT_LEXICON,
    max_examples: int = 5,
) -> list[dict[str, Any]]:
    """Correct completions in which a check changed a stated value: "aha" corrections.

    A completion qualifies when it is correct (``correct[i]``) and one of its reflections
    corrected a value (:func:`find_corrections`, ``changed``). A reflection that confirms a value
    is a reflection but not a correction, and is not returned. Measured on 20,000 answers of the
    micro corpus whose truth is known (``benchmarks/aha_precision.py``), not assumed; on other
    text, read the examples it returns.

    Returns up to ``max_examples`` dicts with ``index`` (into ``completions``), ``text`` (the full
    completion), ``marker`` (as written), ``before`` and ``after`` (the two values as written),
    and ``excerpt`` (the sentence before the marker through the end of the check).
    """
    if len(correct) != len(completions):
        raise ValueError(f"got {len(correct)} correctness flags for {len(completions)} completions")
    examples: list[dict[str, Any]] = []
    for index, (text, ok) in enumerate(zip(completions, correct)):
        if len(examples) >= max_examples:
            break
        if not ok:
            continue
        for fix in find_corrections(text, lexicon):
            if not fix["changed"]:
                continue
            reasoning = _think_or_body(text)
            sentence_starts = [m.end() for m in _SENTENCE_END.finditer(reasoning, 0, fix["start"])]
            excerpt_start = sentence_starts[-2] if len(sentence_starts) >= 2 else 0
            examples.append({
                "index": index,
                "text": text,
                "marker": fix["marker"],
                "before": fix["before"],
                "after": fix["after"],
                "excerpt": reasoning[excerpt_start : fix["end"]].strip(),
            })
            break  # one example per completion
    return examples
