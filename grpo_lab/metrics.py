"""The metrics of one training step, under TRL's names plus the phenomena's (docs/reference.md §5).

`reward_metrics` gives rewards/<function>/mean and /std; `completion_metrics` gives the length
statistics (phenomena.length_stats, the same function the exam uses), accuracy and the reflection
rate of the training completions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from grpo_lab.phenomena import count_reflections, length_stats
from grpo_lab.rewards import unparsed_ratio
from grpo_lab.rollout import Rollout


def reward_metrics(per_function: dict[str, list[float]]) -> dict[str, float]:
    """rewards/<name>/mean and rewards/<name>/std (the sample std; 0 for a single value)."""
    out = {}
    for name, values in per_function.items():
        t = torch.tensor(values, dtype=torch.float32)
        out[f"rewards/{name}/mean"] = t.mean().item()
        out[f"rewards/{name}/std"] = t.std().item() if len(values) > 1 else 0.0
    return out


def completion_metrics(rollout: Rollout, correct: Sequence[bool], lexicon: str) -> dict[str, float]:
    """Length and unreadable answers (completions/*), accuracy and reflection (phenomena/*) of the samples."""
    lengths = rollout.lengths.tolist()
    stats = length_stats(lengths, correct=correct, truncated=rollout.truncated.tolist())
    reflections = [count_reflections(c, lexicon) for c in rollout.completions]
    n = len(lengths)
    return {
        **{f"completions/{key}": value for key, value in stats.items()},
        "completions/unparsed_ratio": unparsed_ratio(rollout.completions),  # no readable answer, not a wrong one
        "accuracy": sum(bool(c) for c in correct) / n,
        "phenomena/reflection_rate": sum(r > 0 for r in reflections) / n,
        "phenomena/mean_reflections": sum(reflections) / n,
    }
