"""`grpo-lab check-rewards` (grpo_lab/reward_check.py): gold answers get full marks, empty and
garbled completions get zero, unparseable gold answers are listed."""

from __future__ import annotations

import json

import pytest

from grpo_lab import cli, rewards
from grpo_lab.config import load_config
from grpo_lab.reward_check import GARBLED, check_rewards, gold_completion


def test_the_demo_recipe_passes_every_check():
    result = check_rewards(load_config(cli.packaged_config("micro_r1_zero")))
    assert result.ok, result.failures
    assert result.table.loc["accuracy", "gold: full marks"] == "30/30"
    assert result.table.loc["format", "empty/garbled: zero"] == f"{len(GARBLED)}/{len(GARBLED)}"


def test_gold_completion_leaves_out_the_think_tag_a_template_prefills():
    assert gold_completion("7", "r1_zero").startswith("<think>")
    assert not gold_completion("7", "r1_chat_think").startswith("<think>")


def test_a_reward_that_pays_for_nothing_and_misses_gold_fails(monkeypatch, capsys, tmp_path):
    def generous(prompts, completions, **kw):
        return [0.5 for _ in completions]  # pays for empty text, never gives full marks

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "generous", generous)
    config = tmp_path / "c.yaml"
    config.write_text("rewards:\n  functions: [accuracy, generous]\n  weights: [1.0, 1.0]\ndata:\n  template: micro\n")
    assert cli.main(["check-rewards", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: generous: 30 of 30 gold answers do not get full marks" in out
    assert "FAIL: generous: pays for empty or garbled completions, e.g. ''" in out


def test_unparseable_gold_answers_are_listed(tmp_path):
    exam = tmp_path / "exam.jsonl"
    exam.write_text(json.dumps({"question": "2 + 2 = ?", "answer": "4"}) + "\n"
                    + json.dumps({"question": "name it", "answer": "the sum of them"}) + "\n")
    result = check_rewards(load_config(None, [f"eval.exam={exam}", "rewards.functions=[accuracy]",
                                              "rewards.weights=[1.0]"]))
    assert [g["index"] for g in result.unparseable_gold] == [1]
    assert not result.ok and "cannot be parsed" in result.to_text()


def test_coin_flip_is_reported_as_not_checked():
    result = check_rewards(load_config(cli.packaged_config("micro_coin_flip")))
    assert result.ok and "not checked" in result.table.loc["coin_flip", "note"]


@pytest.mark.parametrize("config", ["smollm2-135m_r1_zero"])
def test_soft_format_with_a_prefilled_think_pays_nothing_for_an_empty_completion(config):
    """The check's own finding, fixed: with data.template r1_chat_think the prompt already holds
    <think>, and soft_format once paid 0.25 for an empty completion (that tag counted as present).
    Now partial credit is for tags the model wrote, and the check passes."""
    result = check_rewards(load_config(cli.packaged_config(config)))
    assert not any("soft_format" in f for f in result.failures), result.failures
    assert result.table.loc["accuracy", "gold: full marks"] == "30/30"
