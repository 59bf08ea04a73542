"""Tests for the pure scoring half of grpo_lab.evaluate: pass@k, majority vote, score_exam."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from grpo_lab.evaluate import ExamResult, majority_vote, pass_at_k, score_exam, vote
from grpo_lab.rewards import grade_answer

# ---------------------------------------------------------------- pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c of them correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 3), (6, 1, 6), (8, 3, 4), (10, 0, 5), (10, 7, 2),
     (12, 4, 8), (16, 1, 16)],
)
def test_pass_at_k_matches_brute_force_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct():
    assert pass_at_k(16, 5, 1) == pytest.approx(5 / 16)


def test_pass_at_k_is_stable_for_large_n():
    value = pass_at_k(2000, 3, 100)
    assert 0.0 < value < 1.0 and math.isfinite(value)
    assert value == pytest.approx(1 - math.comb(1997, 100) / math.comb(2000, 100))


def test_pass_at_k_rejects_k_larger_than_n():
    with pytest.raises(ValueError, match="k=8 is larger than the n=4 samples drawn"):
        pass_at_k(4, 1, 8)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (-1, 0, 1), (4, -1, 1), (4, 1, 0)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# ---------------------------------------------------------------- majority vote


def test_majority_vote_picks_the_most_common_answer():
    assert majority_vote(["3", "4", "4", None, None, None]) == "4"


def test_majority_vote_normalises_numbers():
    assert majority_vote(["7", "42", "42.0", "7.5"]) == "42"


def test_majority_vote_breaks_ties_by_a_fixed_order_not_by_sample_order():
    # Numbers before other answers, smaller numbers first, then text: the same winner in any order.
    assert majority_vote(["b", "a", "a", "b"]) == majority_vote(["a", "b", "b", "a"]) == "a"
    assert majority_vote(["3", "2"]) == majority_vote(["2", "3"]) == "2"
    assert majority_vote(["x", "7"]) == majority_vote(["7", "x"]) == "7"
    assert vote(["3", "2"]).tied and not vote(["3", "3", "2"]).tied


def test_majority_vote_groups_answers_the_grader_finds_equal():
    # \frac{1}{2}, 0.5 and 1/2 are one answer to the grader, so they are one vote (3 beats 2 × "3").
    result = vote(["3", r"\frac{1}{2}", "0.5", "3", "1/2"])
    assert (result.votes, result.tied) == (3, False)
    assert grade_answer(result.answer, "0.5")


def test_cons_at_k_does_not_depend_on_sample_order_and_reports_ties():
    one_then_two = score_exam(["q"], ["1"], [[answer("1"), answer("2")]])
    two_then_one = score_exam(["q"], ["1"], [[answer("2"), answer("1")]])
    assert one_then_two.metrics["cons@2"] == two_then_one.metrics["cons@2"]
    assert one_then_two.metrics["cons_tie_rate"] == two_then_one.metrics["cons_tie_rate"] == 1.0


def test_majority_vote_ignores_whitespace_in_non_numbers():
    assert majority_vote([r"\frac{1}{2}", r"\frac{1} {2}", "3"]) == r"\frac{1}{2}"


def test_majority_vote_of_no_answers_is_none():
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


# ---------------------------------------------------------------- score_exam


def answer(value: str, think: str = "ok") -> str:
    return f" <think> {think} </think> <answer> {value} </answer>"


@pytest.fixture
def exam() -> ExamResult:
    """Three questions, four samples each, with hand-counted results."""
    completions = [
        # q0 (gold 42): 3 right, majority right; one reflects
        [answer("42"), answer("42.0", think="wait, 41? no"), answer("41"), answer("42")],
        # q1 (gold 1/2): 1 right via math-verify, majority ("3") wrong
        [answer(r"\frac{1}{2}"), answer("3"), answer("3"), "no answer here"],
        # q2 (gold 7): none right; two reflect
        [answer("8", think="hmm"), answer("9", think="hmm"), answer("8"), answer("6")],
    ]
    lengths = [[10, 20, 30, 40], [5, 5, 5, 5], [100, 100, 100, 100]]
    truncated = [[False] * 4, [False] * 4, [False, False, False, True]]
    return score_exam(
        ["q0", "q1", "q2"], ["42", "0.5", 7], completions, lengths=lengths,
        truncated=truncated, ks=(1, 2, 4, 8),
    )


def test_score_exam_pass_at_1_is_mean_correctness(exam):
    assert exam.metrics["pass@1"] == pytest.approx((3 / 4 + 1 / 4 + 0) / 3)


def test_score_exam_cons_at_n_uses_majority_vote(exam):
    assert exam.metrics["cons@4"] == pytest.approx(1 / 3)
    assert exam.per_question["majority_answer"].tolist() == ["42", "3", "8"]
    assert exam.metrics["cons_tie_rate"] == 0.0


def test_score_exam_pass_at_k_skips_k_larger_than_n(exam):
    assert exam.metrics["pass@2"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert exam.metrics["pass@4"] == pytest.approx(2 / 3)
    assert "pass@8" not in exam.metrics
    assert "pass@8" not in exam.per_question


def test_score_exam_reflection_metrics(exam):
    assert exam.metrics["reflection_rate"] == pytest.approx(3 / 12)
    assert exam.metrics["reflection@4"] == pytest.approx(2 / 3)
    assert exam.metrics["mean_reflections"] == pytest.approx(3 / 12)


def test_score_exam_length_metrics(exam):
    assert exam.metrics["mean_length"] == pytest.approx((100 + 20 + 400) / 12)
    assert exam.metrics["mean_length_correct"] == pytest.approx((10 + 20 + 40 + 5) / 4)
    assert exam.metrics["clipped_ratio"] == pytest.approx(1 / 12)
    assert exam.metrics["format_rate"] == pytest.approx(11 / 12)
    assert exam.metrics["answer_rate"] == pytest.approx(11 / 12)


def test_score_exam_tables_have_one_row_per_question_and_sample(exam):
    assert len(exam.per_question) == 3
    assert exam.per_question["num_correct"].tolist() == [3, 1, 0]
    assert {"question", "answer", "n", "pass@1", "cons_correct", "mean_length",
            "reflection_rate", "pass@2", "pass@4"} <= set(exam.per_question.columns)
    assert len(exam.samples) == 12
    assert {"question_idx", "sample_idx", "completion", "extracted", "correct", "length",
            "n_reflections"} <= set(exam.samples.columns)
    assert pd.isna(exam.samples["extracted"].iloc[7])  # "no answer here"


def test_score_exam_counts_whitespace_tokens_without_lengths():
    result = score_exam(["q"], ["1"], [["<answer>1</answer> two three"]], ks=(1,))
    assert result.metrics["mean_length"] == 3
    assert math.isnan(result.metrics["clipped_ratio"])


def test_score_exam_rejects_uneven_sample_counts():
    with pytest.raises(ValueError, match="same number n >= 1 of samples"):
        score_exam(["a", "b"], ["1", "2"], [["x"], ["y", "z"]])
