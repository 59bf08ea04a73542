"""Answer extraction: where a completion's final answer is, shared by rewards, graders and datasets.

This module sits below `rewards`, `countdown` and `datasets` (each needs to find the last
``<answer>…</answer>`` or ``\\boxed{…}``), so that none of them has to import another to do it.
"""

from __future__ import annotations

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_BOXED = "\\boxed{"


def last_boxed_content(text: str) -> str | None:
    r"""Return the brace-matched content of the last ``\boxed{…}`` in ``text``.

    Why brace matching and not a regex: answers such as ``\boxed{\frac{1}{2}}`` nest braces, and a
    non-greedy regex would stop at the first ``}``. Returns None when there is no ``\boxed{`` or
    when the last one is never closed (the caller then falls back to the raw text).
    """
    start = text.rfind(_BOXED)
    if start == -1:
        return None
    depth = 1
    i = start + len(_BOXED)
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            i += 2  # an escaped brace \{ or \} is content, not structure
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + len(_BOXED) : i]
        i += 1
    return None


def extract_answer(text: str) -> str | None:
    r"""Extract the final answer from a completion.

    The answer is the content of the LAST ``<answer>…</answer>`` pair (R1-Zero template: the model
    may restate its answer; the last statement is the one that counts). If that content holds a
    ``\boxed{…}``, the brace-matched content of the last box is used instead, as in the
    understand-r1-zero and SimpleRL-Zoo graders; an unbalanced box falls back to the raw content.

    Returns the stripped answer, or None when there is no closed answer tag or the answer is empty
    (an empty answer cannot be right, and must not take part in a majority vote).
    """
    end = text.rfind(ANSWER_CLOSE)
    if end == -1:
        return None
    start = text.rfind(ANSWER_OPEN, 0, end)
    if start == -1:
        return None
    answer = text[start + len(ANSWER_OPEN) : end]
    boxed = last_boxed_content(answer)
    if boxed is not None:
        answer = boxed
    answer = answer.strip()
    return answer or None
