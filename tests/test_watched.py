"""Watched questions (eval.watch): their answers at every exam, logged and read back per question."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpo_lab import watched_answers
from grpo_lab.config import ConfigError, load_config
from grpo_lab.evaluate import score_exam
from grpo_lab.tracking import RunLogger, read_jsonl

QUESTIONS = ["1 + 2 = ?", "3 + 4 = ?"]
GOLDS = ["3", "7"]


def exam_at(step: int) -> object:
    """An exam whose answers to question 1 grow longer and start checking at step 20."""
    long = "<think> 3 + 4 = 7 , wait let me check : 3 + 4 = 7 </think> <answer> 7 </answer>"
    short = "<think> 3 + 4 = 8 </think> <answer> 8 </answer>"
    q1 = [long, long] if step >= 20 else [short, short]
    completions = [["<answer> 3 </answer>", "<answer> 3 </answer>"], q1]
    lengths = [[3, 3], [len(c.split()) for c in q1]]
    return score_exam(QUESTIONS, GOLDS, completions, lengths=lengths)


def logged_run(tmp_path: Path, watch: list[int]) -> Path:
    run_dir = tmp_path / "run"
    with RunLogger(run_dir, {}, wandb_mode="disabled") as logger:
        for step in (0, 10, 20, 30):
            logger.log_watched(step, exam_at(step), watch)
    return run_dir


def test_watched_answers_follow_one_question_across_exams(tmp_path):
    run_dir = logged_run(tmp_path, [1])
    out = watched_answers(run_dir, 1)
    assert out["step"].tolist() == [0, 10, 20, 30]
    assert out["pass@1"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert out["first_check"].tolist() == [False, False, True, False]
    assert out["longer"].tolist() == [False, False, True, False]  # the first exam 1.5× longer than step 0
    assert out.attrs["question"] == "3 + 4 = ?" and "wait let me check" in out["example"].iloc[2]
    assert watched_answers(run_dir, "3 + 4 = ?")["step"].tolist() == [0, 10, 20, 30]  # by text too


def test_only_the_watched_questions_are_logged_with_their_gold_answer(tmp_path):
    run_dir = logged_run(tmp_path, [1, 5])  # 5 is beyond this 2-question exam: ignored
    rows = read_jsonl(run_dir / "watched.jsonl")
    assert {r["question_idx"] for r in rows} == {1} and len(rows) == 4 * 2
    assert {r["answer"] for r in rows} == {"7"} and all("extracted" in r for r in rows)


def test_runs_without_watched_log_are_read_from_the_exam_samples(tmp_path):
    run_dir = tmp_path / "old"
    (run_dir / "eval").mkdir(parents=True)
    for step in (0, 20):
        result = exam_at(step)
        result.samples.to_json(run_dir / "eval" / f"samples_step{step:06d}.jsonl", orient="records", lines=True)
        result.per_question.to_csv(run_dir / "eval" / f"questions_step{step:06d}.csv", index=False)
    out = watched_answers(run_dir, 1)
    assert out["pass@1"].tolist() == [0.0, 1.0] and out.attrs["question"] == "3 + 4 = ?"
    with pytest.raises(KeyError, match="no exam question"):
        watched_answers(run_dir, "5 + 5 = ?")


def test_watch_is_a_config_list_of_question_indices():
    assert load_config(None).eval.watch == [0, 1, 2]
    assert load_config(None, ["eval.watch=[4, 7]"]).eval.watch == [4, 7]
    with pytest.raises(ConfigError, match="eval.watch"):
        load_config(None, ["eval.watch=[-1]"])
