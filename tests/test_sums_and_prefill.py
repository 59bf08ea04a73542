"""The short-sums task, the `<think>` prefill template and the paired exam change (no model needed)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from grpo_lab.data import PromptSource, format_prompt, load_exam
from grpo_lab.rewards import format_reward, soft_format_reward
from grpo_lab.sums import make_sums_exam


def test_the_sums_exam_is_fixed_distinct_and_half_two_half_three_operands():
    exam = load_exam("sums")
    assert exam == load_exam("sums") and len(exam) == 30
    assert len({r["question"] for r in exam}) == 30
    assert [len(r["operands"]) for r in exam] == [2] * 15 + [3] * 15
    assert all(r["answer"] == str(sum(r["operands"])) for r in exam)
    assert exam[0]["question"].startswith("What is ") and exam[0]["question"].endswith("?")


def test_sums_training_prompts_never_ask_an_exam_question_and_resume_exactly():
    exam = {r["question"] for r in make_sums_exam()}
    source = PromptSource("sums", seed=3)
    rows = source.next(500)
    assert not exam & {r["question"] for r in rows}
    state = source.state_dict()
    again = PromptSource("sums", seed=0)
    again.load_state_dict(state)
    assert again.next(20) == source.next(20)


class ChatTokenizer:
    """Just enough of a chat tokenizer: the ChatML layout SmolLM2 uses."""

    chat_template = "chatml"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def test_r1_chat_think_opens_the_assistant_turn_with_think():
    tok = ChatTokenizer()
    plain, opened = format_prompt("What is 1 + 2?", "r1_chat", tok), format_prompt("What is 1 + 2?", "r1_chat_think", tok)
    assert opened == plain + "<think>"
    assert "<think> reasoning process here </think>" in opened  # Table 1's instructions as the system message


def test_the_format_is_judged_on_the_assistant_turn_prefill_included():
    prompt = format_prompt("What is 1 + 2?", "r1_chat_think", ChatTokenizer())
    closed = " 1 + 2 = 3 </think> <answer> 3 </answer>"
    assert format_reward([prompt], [closed]) == [1.0]
    assert format_reward([""], [closed]) == [0.0]  # without the prefill the think block was never opened
    assert soft_format_reward([prompt], [closed]) == [1.0]
    assert soft_format_reward([prompt], [" 1 + 2 = 3"]) == [0.0]  # the prefilled <think> earns no partial credit
    # a completion that opens a second think block does not get the format
    assert format_reward([prompt], ["<think> 3 </think> <answer> 3 </answer>"]) == [0.0]


def test_paired_exam_change_is_the_mean_per_question_difference_over_its_standard_error(tmp_path):
    from grpo_lab.report import paired_exam_change

    (tmp_path / "eval").mkdir()
    pd.DataFrame({"pass@1": [0.0, 0.5, 0.25, 0.0]}).to_csv(tmp_path / "eval" / "questions_step0000.csv", index=False)
    pd.DataFrame({"pass@1": [0.5, 0.5, 0.75, 0.25]}).to_csv(tmp_path / "eval" / "questions_step0010.csv", index=False)
    out = paired_exam_change(tmp_path, "pass@1")
    diffs = [0.5, 0.0, 0.5, 0.25]
    mean = sum(diffs) / 4
    se = (sum((d - mean) ** 2 for d in diffs) / 3) ** 0.5 / 2
    assert (out["start_step"], out["end_step"], out["questions"]) == (0, 10, 4)
    assert out["mean_change"] == pytest.approx(mean) and out["t"] == pytest.approx(mean / se)
    assert out["start"] == pytest.approx(0.1875) and out["end"] == pytest.approx(0.5)
    assert not math.isnan(out["se"])
    with pytest.raises(KeyError, match="no column 'nope'"):
        paired_exam_change(tmp_path, "nope")
