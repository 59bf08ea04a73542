"""The run's state: everything the next GRPO step depends on besides the weights, in one object.

A resumed run must take exactly the step an uninterrupted run would have taken, so a checkpoint
holds, besides the adapter: the step and token counters, the optimiser and the learning-rate
schedule, every random generator that the step draws from (torch's global one, the sampler's,
Python's, numpy's, and any reward function's own, such as the coin flips of the control run) and
the prompt source's cursor. `RunState.save` writes them and `RunState.load` restores them; nothing
else in the package saves or restores run state.

Files (inside one checkpoint directory, next to the adapter):
    optimizer.pt        AdamW's moments
    rng_state.pt        scheduler, torch's RNG, the sampler's generator (and CUDA's)
    trainer_state.json  counters, Python/numpy/reward RNGs, prompt cursor, this step's exam if run
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grpo_lab.data import PromptSource
from grpo_lab.plain import (
    numpy_state_from_json,
    numpy_state_to_json,
    random_state_from_json,
    random_state_to_json,
    to_plain,
)
from grpo_lab.rewards import check_reward_functions


@dataclass
class RunState:
    """Counters and every stateful part of a run (the weights are the model's, saved beside this)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # the rollout sampler's: sampling never touches the global RNG
    prompts: PromptSource
    reward_funcs: list = field(default_factory=list)  # those with state_dict() keep their own RNG
    step: int = 0
    num_tokens: int = 0
    nonfinite_in_a_row: int = 0  # steps skipped in a row for a NaN/inf loss or gradient
    nonfinite_total: int = 0

    def save(self, directory: str | Path, eval_metrics: dict[str, float] | None = None) -> None:
        """Write the state into a checkpoint directory; `eval_metrics`: this step's exam, if it ran."""
        directory = Path(directory)
        torch.save(self.optimizer.state_dict(), directory / "optimizer.pt")
        rng: dict[str, Any] = {
            "scheduler": self.scheduler.state_dict(),
            "torch": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, directory / "rng_state.pt")
        state = {
            "step": self.step,
            "num_tokens": self.num_tokens,
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "nonfinite_total": self.nonfinite_total,
            "python_random": random_state_to_json(random.getstate()),
            "numpy_random": numpy_state_to_json(np.random.get_state()),
            "reward_states": {name: to_plain(f.state_dict()) for name, f in self._stateful_rewards()},
            "prompts": to_plain(self.prompts.state_dict()),
            # The exam of this step, if it ran before the checkpoint: not redone on resume.
            "eval_metrics": eval_metrics,
        }
        with open(directory / "trainer_state.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(state))
            f.flush()
            os.fsync(f.fileno())

    def load(self, directory: str | Path) -> dict[str, float] | None:
        """Restore what `save` wrote; returns the saved step's exam metrics (None if it had not run)."""
        directory = Path(directory)
        state = json.loads((directory / "trainer_state.json").read_text())
        self.optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
        rng = torch.load(directory / "rng_state.pt", weights_only=True)
        self.scheduler.load_state_dict(rng["scheduler"])
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.step = int(state["step"])
        self.num_tokens = int(state["num_tokens"])
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        random.setstate(random_state_from_json(state["python_random"]))
        if "numpy_random" in state:
            np.random.set_state(numpy_state_from_json(state["numpy_random"]))
        reward_states = state.get("reward_states", {})
        if "coin_flip_random" in state:  # checkpoints written before reward functions kept their own RNG
            reward_states = {"coin_flip_reward": {"rng": state["coin_flip_random"]}}
        for name, func in self._stateful_rewards():
            if name in reward_states:
                func.load_state_dict(reward_states[name])
        self.prompts.load_state_dict(state["prompts"])
        return state.get("eval_metrics") or None

    def _stateful_rewards(self) -> list[tuple[str, Any]]:
        return [(name, f) for name, f in check_reward_functions(self.reward_funcs) if hasattr(f, "state_dict")]
