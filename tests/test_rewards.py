"""Tests for grpo_lab.rewards: extraction, the rule-based rewards, and combining them safely."""

from __future__ import annotations

import functools
import math
import string
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_lab import rewards
from grpo_lab.rewards import (
    MAX_ANSWER_CHARS,
    REWARD_FUNCTIONS,
    CoinFlipReward,
    RewardFunctionError,
    accuracy_reward,
    coin_flip_reward,
    compute_rewards,
    extract_answer,
    format_reward,
    get_reward_function,
    grade_answer,
    is_correct,
    language_consistency_reward,
    soft_format_reward,
    weighted_sum,
)

GOOD = " <think> 6 times 7 is 42 </think> <answer> 42 </answer>"


def one(func, completion: str, **columns) -> float:
    """Call a TRL-signature reward function on a single completion."""
    return func([""], [completion], **{k: [v] for k, v in columns.items()})[0]


# ---------------------------------------------------------------- extract_answer


def test_extract_answer_strips_whitespace():
    assert extract_answer(GOOD) == "42"


def test_extract_answer_missing_tag_is_none():
    assert extract_answer("<think> 42 </think> the answer is 42") is None
    assert extract_answer("<answer> 42") is None


def test_extract_answer_empty_answer_is_none():
    assert extract_answer("<answer>   </answer>") is None


def test_extract_answer_takes_the_last_answer_tag():
    assert extract_answer("<answer>1</answer> no, <answer>2</answer>") == "2"


def test_extract_answer_unboxes_nested_braces():
    assert extract_answer(r"<answer> so \boxed{\frac{1}{2}} </answer>") == r"\frac{1}{2}"


def test_extract_answer_uses_the_last_box():
    assert extract_answer(r"<answer>\boxed{1} then \boxed{2}</answer>") == "2"


def test_extract_answer_unbalanced_box_falls_back_to_raw_text():
    assert extract_answer(r"<answer>\boxed{\frac{1}{2}</answer>") == r"\boxed{\frac{1}{2}"


def test_extract_answer_ignores_boxes_outside_the_answer_tag():
    assert extract_answer(r"<think>\boxed{7}</think><answer>8</answer>") == "8"


# ---------------------------------------------------------------- format rewards


@pytest.mark.parametrize(
    "completion",
    [
        GOOD,
        "<think>a</think><answer>b</answer>",
        "<think>\nmulti\nline\n</think>\n\n<answer>\n3\n</answer>\n",
    ],
)
def test_format_reward_accepts_the_r1_zero_layout(completion):
    assert one(format_reward, completion) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "<think>a</think>",  # no answer
        "<answer>b</answer>",  # no think
        "<think>a</think><answer>b</answer> and more",  # text after </answer>
        "preamble <think>a</think><answer>b</answer>",  # text before <think>
        "<think>a</think> words <answer>b</answer>",  # text between the blocks
        "<think>a</think><answer>b</answer><answer>c</answer>",  # two answers
        "<think>a<think>b</think><answer>c</answer>",  # two think tags
        "<answer>b</answer><think>a</think>",  # wrong order
        "",
    ],
)
def test_format_reward_rejects_anything_else(completion):
    assert one(format_reward, completion) == 0.0


def test_format_reward_rejects_text_after_answer():
    assert one(format_reward, GOOD + " Also, 43.") == 0.0


def test_soft_format_reward_gives_full_credit_for_ordered_blocks_anywhere():
    assert one(soft_format_reward, "blah <think>a</think> <answer>b</answer> trailing") == 1.0


def test_soft_format_reward_gives_partial_credit_per_tag():
    assert one(soft_format_reward, "<think> only thinking") == 0.25
    assert one(soft_format_reward, "<think> a </think> no answer") == 0.5
    assert one(soft_format_reward, "nothing") == 0.0


def test_soft_format_reward_gives_no_credit_for_a_prefilled_think():
    prompt = "<|im_start|>assistant\n<think>"
    assert soft_format_reward([prompt], [""]) == [0.0]
    assert soft_format_reward([prompt], ["just rambling"]) == [0.0]
    assert soft_format_reward([prompt], [" a </think> no answer"]) == [0.25]
    assert soft_format_reward([prompt], [" a </think> <answer>"]) == [0.5]
    assert soft_format_reward([prompt], [" a </think> <answer>4</answer>"]) == [1.0]


def test_soft_format_reward_never_gives_full_credit_out_of_order():
    assert one(soft_format_reward, "</think><think><answer></answer>") == 0.75


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("42", "42"),
        ("42.0", "42"),
        ("+42", 42),
        ("1,000", "1000"),
        ("-3.50", "-3.5"),
        (".5", "0.5"),
        (r"\frac{1}{2}", "0.5"),
        ("0.5", r"\frac{1}{2}"),
        (r"\frac12", "1/2"),
        (r"\sqrt{2}", "2^{1/2}"),
        ("x = 3", "3"),
        (r"\$42", "42"),
        ("42 apples", "42"),
    ],
)
def test_grade_answer_accepts_equivalent_answers(pred, gold):
    assert grade_answer(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("41", "42"),
        ("42.5", "42"),
        ("", "42"),
        (None, "42"),
        (r"\frac{1}{3}", "0.5"),
    ],
)
def test_grade_answer_rejects_wrong_or_missing_answers(pred, gold):
    assert not grade_answer(pred, gold)


def test_grade_answer_compares_plain_numbers_exactly_not_by_float():
    big = "12345678901234567890"
    assert grade_answer(big, big)
    assert not grade_answer("12345678901234567891", big)  # equal as float64


def test_grade_answer_refuses_overlong_answers():
    assert not grade_answer("4" * (MAX_ANSWER_CHARS + 1), "4" * (MAX_ANSWER_CHARS + 1))


def test_grade_answer_gives_up_on_a_power_tower_within_the_time_limit(monkeypatch):
    monkeypatch.setattr(rewards, "MATH_VERIFY_TIMEOUT_S", 1)
    start = time.perf_counter()
    assert not grade_answer("10^{10^{10}}", "5")
    assert time.perf_counter() - start < 8


def test_grade_answer_does_not_execute_model_text(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    assert not grade_answer(payload, "1")
    assert not marker.exists()


def test_is_correct_extracts_then_grades():
    assert is_correct(GOOD, "42")
    assert not is_correct("the answer is 42", "42")


def test_accuracy_reward_reads_the_answer_column():
    completions = [GOOD, "<answer>41</answer>", "no tags 42", r"<answer>\boxed{42.0}</answer>"]
    assert accuracy_reward([""] * 4, completions, answer=["42"] * 4) == [1.0, 0.0, 0.0, 1.0]


def test_accuracy_reward_rejects_a_mismatched_answer_column():
    with pytest.raises(ValueError, match="2 completions but 1 gold"):
        accuracy_reward(["", ""], [GOOD, GOOD], answer=["42"])


# ---------------------------------------------------------------- language consistency


def test_language_consistency_is_one_for_english_thinking():
    assert one(language_consistency_reward, "<think> so x = 3, done </think><answer>3</answer>") == 1.0


def test_language_consistency_counts_cjk_and_cyrillic_as_other_languages():
    # words: "first", "compute", 计, 算, "затем" -> 2 of 5 are English
    text = "<think> first compute 计算 затем 1+1=2 </think>"
    assert one(language_consistency_reward, text) == pytest.approx(2 / 5)


def test_language_consistency_supports_chinese_target():
    text = "<think> 首先 compute </think>"
    reward = language_consistency_reward([""], [text], target_language="zh")[0]
    assert reward == pytest.approx(2 / 3)


def test_language_consistency_is_zero_for_empty_or_missing_think():
    assert one(language_consistency_reward, "<think>   </think><answer>1</answer>") == 0.0
    assert one(language_consistency_reward, "<answer>1</answer>") == 0.0


def test_language_consistency_rejects_unsupported_language():
    with pytest.raises(ValueError, match="not supported"):
        language_consistency_reward([""], ["<think>hi</think>"], target_language="fr")


# ---------------------------------------------------------------- coin flips and registry


def test_coin_flip_reward_is_reproducible_after_seeding():
    completions = ["x"] * 64
    first = CoinFlipReward(seed=123)([""] * 64, completions)
    second = get_reward_function("coin_flip", seed=123)([""] * 64, completions)
    assert first == second
    assert set(first) == {0.0, 1.0}


def test_coin_flip_generator_is_per_instance_and_its_state_round_trips():
    a, b = CoinFlipReward(seed=7), CoinFlipReward(seed=7)
    a([""] * 10, ["x"] * 10)  # drawing from one instance does not move the other
    saved = a.state_dict()
    after = a([""] * 32, ["x"] * 32)
    assert b([""] * 10, ["x"] * 10) == CoinFlipReward(seed=7)([""] * 10, ["x"] * 10)
    restored = CoinFlipReward(seed=0)
    restored.load_state_dict(saved)
    assert restored([""] * 32, ["x"] * 32) == after


def test_coin_flip_reward_ignores_the_text():
    assert coin_flip_reward([""] * 8, [GOOD] * 8, seed=1) == coin_flip_reward(
        [""] * 8, ["junk"] * 8, seed=1
    )


def test_registry_has_the_documented_names():
    assert set(REWARD_FUNCTIONS) == {
        "accuracy",
        "format",
        "soft_format",
        "language_consistency",
        "coin_flip",
        "countdown",  # grpo_lab/countdown.py (issue 7)
    }
    assert get_reward_function("accuracy") is accuracy_reward


def test_get_reward_function_unknown_name_lists_allowed_names():
    with pytest.raises(KeyError, match="allowed names: accuracy, coin_flip"):
        get_reward_function("acuracy")
    with pytest.raises(ValueError, match="unknown reward function 'nope'"):
        get_reward_function("nope")


# ---------------------------------------------------------------- compute_rewards


def test_compute_rewards_weights_and_reports_raw_rewards():
    completions = [GOOD, "<answer>41</answer>"]
    total, per_fn = compute_rewards(
        {"accuracy": accuracy_reward, "format": format_reward},
        [1.0, 0.5],
        ["", ""],
        completions,
        {"answer": ["42", "42"]},
    )
    assert isinstance(total, torch.Tensor) and total.shape == (2,)
    assert total.tolist() == [1.5, 0.0]
    assert per_fn == {"accuracy": [1.0, 0.0], "format": [1.0, 0.0]}


def test_compute_rewards_names_listed_functions_like_trl():
    _, per_fn = compute_rewards([format_reward], None, [""], [GOOD])
    assert list(per_fn) == ["format_reward"]


def test_compute_rewards_passes_shared_settings_unchanged():
    lang = functools.partial(language_consistency_reward)
    _, per_fn = compute_rewards(
        [lang], None, [""], ["<think> 首先 </think>"], {"target_language": "zh"}
    )
    assert per_fn["language_consistency_reward"] == [1.0]


def _fails_on_index_2(prompts, completions, **kw):
    return [1.0 / (0 if "boom" in c else 1) for c in completions]


def test_compute_rewards_error_names_function_and_failing_index():
    completions = ["a", "b", "boom", "boom"]
    with pytest.raises(RewardFunctionError, match=r"'_fails_on_index_2'.*index 2") as info:
        compute_rewards([_fails_on_index_2], None, [""] * 4, completions)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_compute_rewards_error_when_only_the_batch_fails():
    def batch_only(prompts, completions, **kw):
        if len(completions) > 1:
            raise RuntimeError("batch too big")
        return [0.0]

    with pytest.raises(RewardFunctionError, match="'batch_only'.*each completion passes"):
        compute_rewards([batch_only], None, ["", ""], ["a", "b"])


def test_compute_rewards_wrong_length_names_expected_and_got():
    def short(prompts, completions, **kw):
        return [0.0]

    with pytest.raises(RewardFunctionError, match="'short'.*expected 3, got 1"):
        compute_rewards([short], None, [""] * 3, ["a", "b", "c"])


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, "high"])
def test_compute_rewards_rejects_nan_inf_and_none_with_index(bad):
    def sometimes_bad(prompts, completions, **kw):
        return [0.0, bad, 1.0]

    with pytest.raises(RewardFunctionError, match="'sometimes_bad'.*index 1"):
        compute_rewards([sometimes_bad], None, [""] * 3, ["a", "b", "c"])


def test_compute_rewards_rejects_mismatched_columns_and_weights():
    with pytest.raises(ValueError, match="column 'answer' has 1 values for 2"):
        compute_rewards([accuracy_reward], None, ["", ""], ["a", "b"], {"answer": ["1"]})
    with pytest.raises(ValueError, match="2 reward weights for 1 reward functions"):
        compute_rewards([format_reward], [1.0, 2.0], [""], ["a"])


def test_weighted_sum_returns_a_trl_signature_function():
    combined = weighted_sum([accuracy_reward, format_reward], [2.0, 1.0])
    assert combined(["", ""], [GOOD, "<answer>42</answer>"], answer=["42", "42"]) == [3.0, 2.0]
    assert combined.__name__ == "weighted_sum_accuracy_reward_format_reward"


# ---------------------------------------------------------------- fuzzing

TAGGY_TEXT = st.lists(
    st.sampled_from(
        ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "\\", " ", "\n", "42"]
    )
    | st.text(max_size=8),
    max_size=30,
).map("".join)
FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(TAGGY_TEXT)
def test_fuzz_extract_answer_never_raises(text):
    answer = extract_answer(text)
    assert answer is None or (answer == answer.strip() and answer)


@FUZZ
@given(TAGGY_TEXT)
def test_fuzz_format_rewards_are_bounded(text):
    assert one(format_reward, text) in (0.0, 1.0)
    assert 0.0 <= one(soft_format_reward, text) <= 1.0
    assert 0.0 <= one(language_consistency_reward, text) <= 1.0


MATHY_TEXT = st.text(
    alphabet=string.digits + string.ascii_letters + "+-*/^=.,(){}[]\\ $_!%",
    max_size=40,
)


# Worst case for one answer is a few math-verify timeouts (parse gold, parse prediction, compare
# each pair), so the deadline is generous; typical examples take milliseconds.
@settings(max_examples=200, deadline=15_000, suppress_health_check=[HealthCheck.too_slow])
@given(MATHY_TEXT, st.sampled_from(["42", r"\frac{1}{2}", "x^2+1", "(1, 2)"]))
def test_fuzz_grade_answer_never_raises(pred, gold):
    assert grade_answer(pred, gold) in (True, False)
