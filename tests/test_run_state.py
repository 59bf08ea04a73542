"""The run state is one object: saved and restored in one place, every generator included."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from grpo_lab.data import PromptSource
from grpo_lab.rewards import CoinFlipReward, accuracy_reward
from grpo_lab.run_state import RunState


def _state(seed: int = 0) -> RunState:
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    weight.grad = torch.ones(3)
    optimizer.step()
    return RunState(optimizer, scheduler, torch.Generator().manual_seed(seed), PromptSource("micro", seed),
                    [accuracy_reward, CoinFlipReward(seed)])


def _draws(state: RunState) -> dict:
    """One of everything a step draws from each generator the state holds."""
    return {
        "python": random.random(), "numpy": float(np.random.rand()), "torch": torch.rand(1).item(),
        "sampler": torch.rand(1, generator=state.generator).item(),
        "prompts": state.prompts.next(2), "coins": state.reward_funcs[1]([""] * 8, ["x"] * 8),
    }


def test_save_then_load_restores_every_generator_and_counter(tmp_path):
    state = _state()
    state.step, state.num_tokens, state.nonfinite_total = 7, 1234, 1
    _draws(state)
    state.save(tmp_path, eval_metrics={"pass@1": 0.5})
    expected = _draws(state)

    restored = _state(seed=99)  # different generators, counters at zero
    assert restored.load(tmp_path) == {"pass@1": 0.5}
    assert (restored.step, restored.num_tokens, restored.nonfinite_total) == (7, 1234, 1)
    assert _draws(restored) == expected
    assert torch.equal(restored.optimizer.state_dict()["state"][0]["exp_avg"],
                       state.optimizer.state_dict()["state"][0]["exp_avg"])


def test_a_checkpoint_from_before_reward_states_restores_the_coin_flips(tmp_path):
    state = _state()
    state.save(tmp_path)
    coins = state.reward_funcs[1]
    saved = json.loads((tmp_path / "trainer_state.json").read_text())
    saved["coin_flip_random"] = saved.pop("reward_states")["coin_flip_reward"]["rng"]  # the old layout
    (tmp_path / "trainer_state.json").write_text(json.dumps(saved))
    expected = coins([""] * 16, ["x"] * 16)
    restored = _state(seed=5)
    restored.load(tmp_path)
    assert restored.reward_funcs[1]([""] * 16, ["x"] * 16) == expected
