"""Short sums: a verifiable task sized for a small real model (SmolLM2-135M).

"What is 7 + 3 + 5?" with 2 or 3 single-digit operands. The gold answer is the exact sum, graded
by the accuracy reward like any numeric answer. Why this task: a 135M instruct model gets such
sums right some of the time (about a fifth of its samples end with the right number) but never
in the R1-Zero format, so RL on accuracy + format has something to amplify and something to teach,
and a step stays short enough for a CPU.

`data.train: sums` draws fresh problems every step (never an exam question); `eval.exam: sums` is
a fixed 30-question exam (AIME-sized, docs/reference.md §3.5), 15 with two operands and
15 with three.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from grpo_lab.micro_world import TaskSampler

SUMS_EXAM_SEED = 20261202


def make_sums_question(operands: list[int]) -> str:
    return "What is " + " + ".join(str(x) for x in operands) + "?"


def make_sums_exam(seed: int = SUMS_EXAM_SEED, n: int = 30, ks: tuple[int, ...] = (2, 3)) -> list[dict]:
    """A fixed held-out exam of n distinct sums, the operand counts in equal shares."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(n):
        k = ks[i * len(ks) // n]
        while True:
            ops = tuple(rng.randint(1, 9) for _ in range(k))
            if ops not in seen:
                break
        seen.add(ops)
        rows.append({"question": make_sums_question(list(ops)), "answer": str(sum(ops)), "operands": list(ops)})
    return rows


@dataclass
class SumsSampler(TaskSampler):
    """Fresh training sums each step, never one of the exam's (the micro world's sampler, other wording)."""

    k_min: int = 2
    k_max: int = 3
    exclude: set = field(default_factory=lambda: {tuple(r["operands"]) for r in make_sums_exam()})

    def sample(self, n: int) -> list[dict]:
        rows = []
        while len(rows) < n:
            ops = [self.rng.randint(1, 9) for _ in range(self.rng.randint(self.k_min, self.k_max))]
            if tuple(ops) in self.exclude:
                continue
            rows.append({"question": make_sums_question(ops), "answer": str(sum(ops))})
        return rows
