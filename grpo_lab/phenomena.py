"""Measuring the phenomena R1-Zero reported: longer responses and reflection ("aha moments").

DeepSeek-R1 (§2.2.4) reports that R1-Zero's average response length grows steadily during RL and
that reflection, "the model revisits and reevaluates its previous steps", appears on its own. The
public reproductions measure reflection with keyword lists (REFERENCE.md §4):

- understand-r1-zero (Liu et al. 2025, "Understanding R1-Zero-Like Training"),
- SimpleRL-Zoo (Zeng et al. 2025),
- Open-Reasoner-Zero (Hu et al. 2025), which uses case-sensitive regular expressions.

They count by substring on lower-cased text, so "wait" also matches "await". Here word lists are
matched on word boundaries instead (see :func:`count_reflections`), while the ORZ regexes are kept
exactly as published so their numbers can be compared. Keyword counts measure how often the
*words* of reflection appear, not whether the model actually re-checked anything; oat-zero ("There
May Not be Aha Moment in R1-Zero-like Training") shows base models already use these words at
step 0. :func:`find_aha_examples` is a stricter, still heuristic, filter for the real thing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class Lexicon:
    """A named list of reflection markers.

    ``is_regex=False``: plain words/phrases, matched case-insensitively on word boundaries with
    flexible whitespace inside phrases. ``is_regex=True``: regular expressions used verbatim.
    """

    name: str
    patterns: tuple[str, ...]
    is_regex: bool = False
    case_sensitive: bool = False
    source: str = ""


LEXICONS: dict[str, Lexicon] = {
    # Ours: the union of the reproductions' self-verification words plus the R1 paper's own
    # "wait" / "aha" example ("Wait, wait. Wait. That's an aha moment I can flag here.", Table 3).
    # "however" is left out on purpose: it is ordinary contrastive prose far more often than a
    # reflection, which is why understand-r1-zero does not use it either.
    "default": Lexicon(
        name="default",
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
        source="grpo-lab default (DeepSeek-R1 Table 3 + the reproductions' lists)",
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
        source="Liu et al. 2025, Understanding R1-Zero-Like Training (sail-sg/understand-r1-zero)",
    ),
    "simplerl": Lexicon(
        name="simplerl",
        patterns=("recheck", "rethink", "try again", "wait", "alternatively", "retry", "however"),
        source="Zeng et al. 2025, SimpleRL-Zoo (hkust-nlp/simpleRL-reason)",
    ),
    "orz": Lexicon(
        name="orz",
        patterns=(r"wait,", r"recheck[,\s]", r"retry", r"alternatively,", r"however,"),
        is_regex=True,
        case_sensitive=True,
        source="Hu et al. 2025, Open-Reasoner-Zero (regexes as published, case-sensitive)",
    ),
}


def _resolve_lexicon(lexicon: str | Sequence[str] | Lexicon) -> Lexicon:
    if isinstance(lexicon, Lexicon):
        return lexicon
    if isinstance(lexicon, str):
        try:
            return LEXICONS[lexicon]
        except KeyError:
            raise ValueError(
                f"unknown lexicon {lexicon!r}; known lexicons: {', '.join(LEXICONS)} "
                "(or pass a list of words)"
            ) from None
    return Lexicon(name="custom", patterns=tuple(lexicon))


def _phrase_regex(phrase: str) -> str:
    """A word/phrase as a regex: whole words only, any run of whitespace between the words."""
    words = phrase.split()
    body = r"\s+".join(re.escape(word) for word in words)
    return rf"(?<!\w){body}(?!\w)"


@functools.lru_cache(maxsize=64)
def _compile(lexicon: Lexicon) -> re.Pattern[str] | None:
    """One alternation for the whole lexicon, longest pattern first.

    A single pattern counts non-overlapping matches, so "let me check again" counts once (as
    "let me check"), not once per phrase it contains.
    """
    patterns = [p for p in lexicon.patterns if p.strip()]
    if not patterns:
        return None
    if not lexicon.is_regex:
        patterns = [_phrase_regex(p) for p in sorted(patterns, key=len, reverse=True)]
    flags = 0 if lexicon.case_sensitive else re.IGNORECASE
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags)


def find_reflections(
    text: str, lexicon: str | Sequence[str] | Lexicon = "default"
) -> list[re.Match[str]]:
    """All (non-overlapping) reflection-marker matches in ``text``, in order."""
    pattern = _compile(_resolve_lexicon(lexicon))
    return [] if pattern is None else list(pattern.finditer(text))


def count_reflections(text: str, lexicon: str | Sequence[str] | Lexicon = "default") -> int:
    """Count reflection markers in ``text``.

    ``lexicon`` is a name from :data:`LEXICONS` or a list of words/phrases.

    Word lists (every lexicon but ``"orz"``) match case-insensitively, on word boundaries, with any
    whitespace inside a phrase ("check  again" counts). Whole words only, so "await" is not
    "wait", and inflected forms such as "rechecking" or "waited" are not counted either: add them
    to a custom list if you want them. A word ending in a hyphenated compound still counts
    ("self-verify" contains "verify").

    ``"orz"`` applies Open-Reasoner-Zero's regexes verbatim and case-sensitively ("Wait," does not
    match ``wait,``, and, as published, "await," does).

    Raises:
        ValueError: unknown lexicon name (the message lists the known ones).
    """
    return len(find_reflections(text, lexicon))


def reflection_stats(
    texts: Sequence[str], lexicon: str | Sequence[str] | Lexicon = "default"
) -> dict[str, float]:
    """Per-response reflection statistics: ``mean_count`` and ``rate`` (fraction with ≥ 1 marker).

    Both are NaN for an empty list (no responses is not the same as no reflection).
    """
    counts = [count_reflections(t, lexicon) for t in texts]
    if not counts:
        return {"mean_count": math.nan, "rate": math.nan}
    return {
        "mean_count": sum(counts) / len(counts),
        "rate": sum(c > 0 for c in counts) / len(counts),
    }


def reflection_at_k(
    groups: Sequence[Sequence[str]], lexicon: str | Sequence[str] | Lexicon = "default"
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


def _marker_spans(text: str, matches: list[re.Match[str]]) -> list[tuple[int, int]]:
    """Marker matches as (start, end) spans, merging markers with only punctuation and spaces
    between them: "wait , let me check" is one reflection, not two with nothing in between."""
    spans: list[tuple[int, int]] = []
    for m in matches:
        if spans and not re.search(r"\w", text[spans[-1][1] : m.start()]):
            spans[-1] = (spans[-1][0], m.end())
        else:
            spans.append((m.start(), m.end()))
    return spans


def find_aha_examples(
    completions: Sequence[str],
    correct: Sequence[bool],
    lexicon: str | Sequence[str] | Lexicon = "default",
    max_examples: int = 5,
) -> list[dict[str, Any]]:
    """Find completions where a reflection marker is followed by a correction that ends right.

    Heuristic (cheap, imperfect, and meant for showing examples, not for statistics):

    1. the completion is correct (``correct[i]``);
    2. inside its reasoning (the ``<think>`` part, or the text before ``<answer>``), find the
       reflection markers;
    3. for a marker, take the last stated value ``= N`` in the segment before it (since the
       previous marker, or the start) and the last ``= M`` in the segment after it (up to the next
       marker, or the end of the reasoning);
    4. if N and M are both numbers and differ, the reflection changed a value: an "aha".

    Misses: corrections not written as ``= number`` (words, fractions in LaTeX), reflections that
    confirm a value (those are reflections but not corrections). False positives: a marker that
    happens to sit between two unrelated computations. Read the examples it returns.

    Returns up to ``max_examples`` dicts with ``index`` (into ``completions``), ``text`` (the full
    completion), ``marker`` (as written), ``before`` and ``after`` (the two values as written),
    and ``excerpt`` (the reasoning from the segment before the marker to the end of the one after).
    """
    if len(correct) != len(completions):
        raise ValueError(f"got {len(correct)} correctness flags for {len(completions)} completions")
    examples: list[dict[str, Any]] = []
    for index, (text, ok) in enumerate(zip(completions, correct)):
        if len(examples) >= max_examples:
            break
        if not ok:
            continue
        reasoning = _think_or_body(text)
        markers = _marker_spans(reasoning, find_reflections(reasoning, lexicon))
        for j, (start, end) in enumerate(markers):
            seg_start = markers[j - 1][1] if j > 0 else 0
            seg_end = markers[j + 1][0] if j + 1 < len(markers) else len(reasoning)
            before = _last_value(reasoning[seg_start:start])
            after = _last_value(reasoning[end:seg_end])
            if before is None or after is None or before[1] == after[1]:
                continue
            examples.append(
                {
                    "index": index,
                    "text": text,
                    "marker": reasoning[start:end],
                    "before": before[0],
                    "after": after[0],
                    "excerpt": reasoning[seg_start:seg_end].strip(),
                }
            )
            break  # one example per completion
    return examples
