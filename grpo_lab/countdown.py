"""Countdown: reach a target number with given numbers and + - * / (TinyZero's R1-Zero task).

A problem is a list of numbers and a target, e.g. nums [3, 5, 7], target 22 → "3 * 5 + 7". The
model writes an equation inside ``<answer>…</answer>``; the reward checks it by rule:

* the equation uses only numbers, ``+ - * /`` and parentheses (anything else scores 0);
* it uses each given number exactly once (a number given twice may be used twice), no other
  number, and none twice (TinyZero's rule: all numbers, each once);
* its value equals the target exactly (computed with :class:`fractions.Fraction`, so 7/2*2 = 7).

Why not ``eval()``: model text is untrusted; evaluating it as Python could run anything. The
equation is parsed with :func:`ast.parse` (which only builds a tree, it runs nothing) and walked
by a tiny interpreter that knows four operators and numbers; every other node (names, calls,
attributes, ``**``) is refused. Length and operand sizes are capped so no input can make the
arithmetic slow.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from grpo_lab.answers import extract_answer

MAX_EQUATION_CHARS = 200
"""Longer equations score 0 without being parsed (Countdown needs a handful of numbers)."""

MAX_OPERAND = 10**12
"""Numbers and intermediate values beyond this are refused: no huge-number arithmetic."""

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


class _Refused(ValueError):
    """The equation is not a plain arithmetic expression (or divides by zero, or grows too big)."""


def countdown_prompt(nums: Sequence[int], target: int) -> str:
    """The question text for one Countdown problem (the R1-Zero/chat template wraps it)."""
    numbers = ", ".join(str(n) for n in nums)
    return (
        f"Using the numbers [{numbers}], create an equation that equals {target}. You can use basic "
        "arithmetic operations (+, -, *, /) and each number must be used exactly once. Show your work in "
        "<think> </think> tags and return the final equation in <answer> </answer> tags, for example "
        "<answer> (1 + 2) / 3 </answer>"
    )


def evaluate_equation(equation: str) -> tuple[Fraction, list[int]]:
    """The exact value of an arithmetic equation and the numbers it uses, without running it.

    Raises ValueError for anything that is not numbers, + - * / and parentheses, for a division
    by zero, for a non-integer literal and for values beyond :data:`MAX_OPERAND`.
    """
    if len(equation) > MAX_EQUATION_CHARS:
        raise _Refused(f"equation longer than {MAX_EQUATION_CHARS} characters")
    text = equation.strip().replace("×", "*").replace("÷", "/")
    if "=" in text:  # "3 * 5 + 7 = 22": the left-hand side is the equation
        text = text.split("=", 1)[0]
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise _Refused(f"not an arithmetic expression: {exc}") from None
    used: list[int] = []
    return _value(tree.body, used), used


def _value(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        if abs(node.value) > MAX_OPERAND:
            raise _Refused("number too large")
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left, used), _value(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Refused("division by zero")
        result = _OPERATORS[type(node.op)](left, right)
        if abs(result) > MAX_OPERAND or result.denominator > MAX_OPERAND:
            raise _Refused("intermediate value too large")
        return result
    raise _Refused(f"{type(node).__name__} is not allowed (numbers, + - * / and parentheses only)")


def check_equation(equation: str | None, nums: Sequence[int], target: int | str) -> bool:
    """True iff `equation` uses every number of `nums` exactly once and equals `target`."""
    if not equation:
        return False
    try:
        value, used = evaluate_equation(equation)
        wanted = Counter(int(n) for n in nums)
        goal = Fraction(int(target))
    except (ValueError, TypeError):
        return False
    return Counter(used) == wanted and value == goal


def countdown_reward(
    prompts: list[str], completions: list[str], nums: Sequence[Sequence[int]], target: Sequence[Any],
    **kwargs: Any,
) -> list[float]:
    """Countdown accuracy: 1.0 if the equation in the last <answer>…</answer> is right, else 0.0.

    TRL signature; reads the dataset's ``nums`` and ``target`` columns (one per completion). The
    equation may be wrapped in ``\\boxed{…}`` (extracted like every answer, grpo_lab.rewards).
    """
    if len(nums) != len(completions) or len(target) != len(completions):
        raise ValueError(
            f"countdown_reward got {len(completions)} completions but {len(nums)} nums and {len(target)} targets"
        )
    return [
        1.0 if check_equation(extract_answer(c), list(n), t) else 0.0
        for c, n, t in zip(completions, nums, target)
    ]
