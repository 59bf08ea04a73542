"""Tests for grpo_lab.phenomena: reflection counting, length statistics, aha examples."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_lab.micro_world import labelled_aha_set
from grpo_lab.phenomena import (
    DEFAULT_LEXICON,
    LEXICONS,
    count_reflections,
    find_aha_examples,
    find_corrections,
    length_stats,
    reflection_at_k,
    reflection_stats,
)

# ---------------------------------------------------------------- count_reflections


def test_count_reflections_does_not_count_await_as_wait():
    assert count_reflections("we await the result") == 0
    assert count_reflections("Wait, that is wrong.") == 1


def test_count_reflections_is_case_insensitive_for_word_lists():
    assert count_reflections("WAIT, I see. wait, no. Wait!") == 3


def test_default_lexicon_counts_adjacent_markers_as_one_reflection():
    # "wait" and "let me check" are both markers; with only punctuation between them they are one
    # reflection (the micro world's check phrase), as is R1's "Wait, wait. Wait." (Table 3).
    assert count_reflections("wait , let me check : 2 + 2 = 4") == 1
    assert count_reflections("Wait, wait. Wait. That's an aha moment") == 2  # "aha" after words
    assert count_reflections("wait , let me check : 2 + 2 = 4 . wait , let me check : 4 + 1 = 5") == 2


def test_grpo_lab_is_the_default_lexicon_and_default_is_its_alias():
    assert DEFAULT_LEXICON == "grpo-lab" and LEXICONS["grpo-lab"].method == "word_boundary"
    text = "Wait, retry. Hmm, let me check again."
    assert count_reflections(text) == count_reflections(text, "default") == count_reflections(text, "grpo-lab")


def test_count_reflections_matches_whole_words_only():
    assert count_reflections("rechecking the waiter's verification") == 0


def test_count_reflections_allows_flexible_whitespace_in_phrases():
    assert count_reflections("let me\n  check the sum") == 1
    assert count_reflections("letme check") == 0


def test_count_reflections_counts_overlapping_phrases_once():
    assert count_reflections("let me check again") == 1


def test_count_reflections_accepts_a_custom_word_list():
    assert count_reflections("Oops, I did it. oops.", ["oops"]) == 2


def test_understand_r1_zero_marks_a_response_once_by_lower_cased_substring():
    # Its code: any(response.count(keyword) > 0 for keyword in keywords) on the lower-cased text.
    text = "Let me recheck. I will re-evaluate, double-check and go over the steps. Wait."
    assert count_reflections(text, "understand-r1-zero") == 1  # yes/no, not a count
    inflected = "Rechecking… reconsidered… double-checking…"
    assert count_reflections(inflected, "understand-r1-zero") == 1  # substrings match inflections
    assert count_reflections(inflected, "grpo-lab") == 0  # whole words do not
    assert count_reflections("Wait.", "understand-r1-zero") == 0  # "wait" is not in its list


def test_simplerl_sums_lower_cased_substring_counts():
    # Its code: sum(text.lower().count(keyword) for keyword in keywords).
    assert count_reflections("Waiting… Rethinking", "simplerl") == 2
    assert count_reflections("Waiting… Rethinking", "grpo-lab") == 0
    assert count_reflections("retry again", "simplerl") == 2  # "retry" and "try again"
    assert count_reflections("retry again", "grpo-lab") == 0
    assert count_reflections("we await it", "simplerl") == 1  # the pitfall word boundaries avoid


def test_simplerl_lexicon_counts_however_and_wait():
    assert count_reflections("However, wait: try again.", "simplerl") == 3


def test_orz_lexicon_is_case_sensitive_regex():
    assert count_reflections("wait, recheck this, retry", "orz") == 3
    assert count_reflections("Wait, Retry", "orz") == 0
    assert count_reflections("recheck.", "orz") == 0  # needs a comma or whitespace after it


def test_orz_sums_findall_per_pattern_where_the_others_disagree():
    text = "Wait, we await, then retry. wait , check"
    # ORZ: "await," matches `wait,`; "Wait," does not; "wait ," (space) does not; retry once.
    assert count_reflections(text, "orz") == 2
    assert count_reflections(text, "simplerl") == 4  # wait ×3 (Wait, await, wait) + retry
    assert count_reflections(text, "grpo-lab") == 2  # "Wait" and "wait" (not "await", not "retry")


def test_every_named_lexicon_is_documented_with_its_counting_method():
    assert set(LEXICONS) == {"grpo-lab", "understand-r1-zero", "simplerl", "orz"}
    methods = {name: lexicon.method for name, lexicon in LEXICONS.items()}
    assert methods == {"grpo-lab": "word_boundary", "understand-r1-zero": "substring_any",
                       "simplerl": "substring_count", "orz": "regex_count"}
    for lexicon in LEXICONS.values():
        assert lexicon.patterns and lexicon.source


def test_count_reflections_unknown_lexicon_lists_known_names():
    with pytest.raises(ValueError, match="unknown lexicon 'r1'.*grpo-lab, understand-r1-zero"):
        count_reflections("wait", "r1")


# ---------------------------------------------------------------- stats


def test_reflection_stats_reports_mean_count_and_rate():
    stats = reflection_stats(["wait, I said wait", "fine", "hmm"])
    assert stats == {"mean_count": 1.0, "rate": pytest.approx(2 / 3)}


def test_reflection_stats_of_nothing_is_nan():
    assert all(math.isnan(v) for v in reflection_stats([]).values())


def test_reflection_at_k_counts_questions_with_any_reflecting_sample():
    groups = [["ok", "wait"], ["ok", "ok"], ["hmm", "wait"], ["ok", "fine"]]
    assert reflection_at_k(groups) == 0.5


def test_length_stats_splits_by_correctness_and_clipping():
    stats = length_stats([10, 20, 30, 40], correct=[True, False, True, False],
                         truncated=[False, False, False, True])
    assert stats["mean_length"] == 25
    assert (stats["min_length"], stats["max_length"]) == (10, 40)
    assert stats["mean_length_correct"] == 20
    assert stats["mean_length_incorrect"] == 30
    assert stats["clipped_ratio"] == 0.25
    assert stats["mean_terminated_length"] == 20


def test_length_stats_is_nan_when_there_is_no_such_group():
    stats = length_stats([5, 7], correct=[True, True])
    assert stats["mean_length_correct"] == 6
    assert math.isnan(stats["mean_length_incorrect"])
    assert math.isnan(stats["clipped_ratio"])  # truncation not given


def test_length_stats_rejects_mismatched_flags():
    with pytest.raises(ValueError, match="correct has 1 entries for 2 lengths"):
        length_stats([1, 2], correct=[True])


# ---------------------------------------------------------------- aha examples

AHA = (
    "<think> 17 * 3 = 41. Wait, let me recompute: 17 * 3 = 51. </think> <answer> 51 </answer>"
)


def test_find_aha_examples_finds_a_corrected_value():
    [example] = find_aha_examples(["no reflection = 3", AHA], [True, True])
    assert example["index"] == 1
    assert example["marker"] == "Wait"
    assert (example["before"], example["after"]) == ("41", "51")
    assert example["text"] == AHA


def test_find_aha_examples_treats_adjacent_markers_as_one_reflection():
    # The micro world's check phrase holds two default markers ("wait", "let me check") with only
    # punctuation between them; the correction spans the whole phrase.
    text = (" <think> 1 + 6 + 8 + 9 = 24 . 24 + 4 + 1 + 9 + 7 = 46 . wait , let me check : 24 + 4 = 28 ,"
            " 28 + 1 = 29 , 29 + 9 = 38 , 38 + 7 = 45 . </think> <answer> 45 </answer>")
    [example] = find_aha_examples([text], [True])
    assert (example["marker"], example["before"], example["after"]) == ("wait , let me check", "46", "45")


def test_find_aha_examples_skips_incorrect_completions():
    assert find_aha_examples([AHA], [False]) == []


def test_find_aha_examples_skips_reflections_that_confirm_the_value():
    confirm = "<think> 2 + 2 = 4. Wait, check: 2 + 2 = 4. </think> <answer>4</answer>"
    assert find_aha_examples([confirm], [True]) == []


def test_find_aha_examples_ignores_a_confirming_check_followed_by_the_next_chunk():
    # The check confirms 24; the next chunk's sum (45) is the working going on, not the check's result.
    text = (" <think> 5 + 4 + 6 + 9 = 24 . wait , let me check : 5 + 4 = 9 , 9 + 6 = 15 , 15 + 9 = 24 ."
            " 24 + 4 + 1 + 9 + 7 = 45 . </think> <answer> 45 </answer>")
    assert find_aha_examples([text], [True]) == []
    [check] = find_corrections(text)
    assert (check["before"], check["after"], check["changed"]) == ("24", "24", False)


def test_find_corrections_reads_the_result_in_the_next_sentence_when_the_marker_states_none():
    text = "<think> 17 * 3 = 41. Wait, that is wrong. 17 * 3 = 51. So 51 + 1 = 52. </think>"
    [check] = find_corrections(text)
    assert (check["before"], check["after"], check["changed"]) == ("41", "51", True)


def test_aha_detection_precision_and_recall_on_the_labelled_micro_corpus():
    # Answers written by the corpus generator, which knows whether each checked value was wrong and
    # whether the check corrected it (benchmarks/aha_precision.py prints the 20,000-answer figures).
    rows = labelled_aha_set(4000, seed=1)
    truth = [r["aha"] for r in rows]
    assert 50 < sum(truth) < len(rows) - 50  # both kinds present, and confirming checks too
    assert sum(bool(r["checks"]) and not r["aha"] for r in rows) > 50
    found = {e["index"] for e in find_aha_examples([r["completion"] for r in rows], [r["correct"] for r in rows],
                                                   max_examples=len(rows))}
    true_positives = sum(truth[i] for i in found)
    assert true_positives / len(found) >= 0.95  # precision
    assert true_positives / sum(truth) >= 0.90  # recall


def test_find_aha_examples_respects_max_examples():
    assert len(find_aha_examples([AHA] * 10, [True] * 10, max_examples=3)) == 3


# ---------------------------------------------------------------- fuzzing


@settings(max_examples=200, deadline=1000)
@given(
    st.lists(st.sampled_from(["wait", "await", ",", " ", "\n", "re-evaluate", "Recheck", "retry"])
             | st.text(max_size=6), max_size=30).map("".join),
    st.sampled_from(sorted(LEXICONS)),
)
def test_fuzz_count_reflections_never_raises_for_any_lexicon(text, lexicon):
    assert count_reflections(text, lexicon) >= 0
