"""Benchmark loaders (grpo_lab.datasets) and the Countdown reward, on fixture files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from grpo_lab.config import ConfigError, load_config
from grpo_lab.countdown import check_equation, countdown_reward, evaluate_equation
from grpo_lab.data import PromptSource, load_exam
from grpo_lab.datasets import DatasetUnavailableError, load_benchmark, parse_spec
from grpo_lab.rewards import REWARD_FUNCTIONS, accuracy_reward


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GSM8K_ROWS = [
    {"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
     "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn all 48+24 = <<48+24=72>>72.\n#### 72"},
    {"question": "A shop sells 1,200 pens a day. How many in 2 days?", "answer": "1200*2 = 2400\n#### 2,400"},
]
MATH_ROWS = [
    {"problem": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "level": "Level 1", "type": "Algebra",
     "solution": "We get $\\frac{2}{4}+\\frac{1}{4}=\\boxed{\\frac{3}{4}}$."},
    {"problem": "Find $x$ if $x^2=4$, $x>0$.", "level": "Level 2", "type": "Algebra",
     "solution": "First $\\boxed{-2}$ is out; so $x=\\boxed{2}$."},
]


# ------------------------------------------------------------------------------ spec syntax
def test_spec_syntax_names_source_and_slice():
    spec = parse_spec("gsm8k[:100]:/data/gsm8k/test.jsonl")
    assert spec.benchmark.name == "gsm8k" and spec.source == "/data/gsm8k/test.jsonl"
    assert spec.rows == slice(None, 100)
    assert parse_spec("math500").source is None
    assert parse_spec("countdown[-200:]").rows == slice(-200, None)
    assert parse_spec("micro") is None and parse_spec("data/exam.jsonl") is None


def test_unknown_benchmark_name_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"data.train.*unknown benchmark 'gsm8kk'.*gsm8k"):
        load_config(None, ["data.train=gsm8kk:/tmp/train.jsonl"])
    with pytest.raises(ConfigError, match=r"eval.exam.*not a row slice"):
        load_config(None, ["eval.exam=math500[first:10]"])


# ---------------------------------------------------------------------------------- loaders
def test_gsm8k_gold_is_the_number_after_hashes(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    rows = load_benchmark(f"gsm8k:{path}")
    assert [r["answer"] for r in rows] == ["72", "2400"]
    assert rows[0]["question"].startswith("Natalia") and "#### 72" in rows[0]["solution"]
    # The gold works with the accuracy reward: "72" in the answer tag is right, "2,400" too.
    completions = ["<think> 48+24 </think> <answer> 72 </answer>", "<think> x </think> <answer> 2,400 </answer>"]
    assert accuracy_reward([""] * 2, completions, answer=[r["answer"] for r in rows]) == [1.0, 1.0]


def test_gsm8k_row_without_hashes_names_file_and_row(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GSM8K_ROWS[0], {"question": "q", "answer": "no final number"}])
    with pytest.raises(ValueError, match=r"bad.jsonl: row 2: GSM8K answer has no number"):
        load_benchmark(f"gsm8k:{path}")


def test_math_gold_is_the_last_boxed_brace_matched(tmp_path):
    path = tmp_path / "math.parquet"
    pd.DataFrame(MATH_ROWS).to_parquet(path)
    rows = load_benchmark(f"math:{path}", what="eval.exam", role="exam")
    assert [r["answer"] for r in rows] == ["\\frac{3}{4}", "2"]
    assert rows[0]["question"].startswith("What is") and rows[0]["level"] == "Level 1"


def test_math_without_boxed_answer_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "the answer is \\boxed{3"}])
    with pytest.raises(ValueError, match=r"m.jsonl: row 1: MATH solution has no closed"):
        load_benchmark(f"math:{path}")


def test_math500_prefers_its_answer_column(tmp_path):
    rows = [{"problem": "p", "solution": "... \\boxed{\\frac{1}{2}}", "answer": "\\frac12", "subject": "Algebra"}]
    path = write_jsonl(tmp_path / "test.jsonl", rows)
    assert load_benchmark(f"math500:{path}")[0]["answer"] == "\\frac12"


def test_aime_answers_are_integers(tmp_path):
    rows = [{"ID": "2024-I-1", "Problem": "Find m+n.", "Answer": 33},
            {"ID": "2024-I-2", "Problem": "Find k.", "Answer": "025"}]
    path = write_jsonl(tmp_path / "aime24.jsonl", rows)
    loaded = load_benchmark(f"aime24:{path}", role="exam")
    assert [r["answer"] for r in loaded] == ["33", "25"] and loaded[0]["question"] == "Find m+n."
    bad = write_jsonl(tmp_path / "aime25.jsonl", [{"question": "q", "answer": "3/4"}])
    with pytest.raises(ValueError, match=r"aime25.jsonl: row 1: AIME answer must be an integer"):
        load_benchmark(f"aime25:{bad}")


def test_directory_of_a_hub_download_reads_the_split_and_config(tmp_path):
    root = tmp_path / "gsm8k"
    pd.DataFrame(GSM8K_ROWS[:1]).to_parquet(_mk(root / "main" / "train-00000-of-00001.parquet"))
    pd.DataFrame(GSM8K_ROWS[1:]).to_parquet(_mk(root / "main" / "test-00000-of-00001.parquet"))
    pd.DataFrame(GSM8K_ROWS).to_parquet(_mk(root / "socratic" / "train-00000-of-00001.parquet"))
    assert [r["answer"] for r in load_benchmark(f"gsm8k:{root}", role="train")] == ["72"]
    assert [r["answer"] for r in load_benchmark(f"gsm8k:{root}", role="exam")] == ["2400"]


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_slice_selects_rows(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    assert [r["answer"] for r in load_benchmark(f"gsm8k[1:]:{path}")] == ["2400"]


def test_offline_and_not_cached_says_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    with pytest.raises(DatasetUnavailableError) as info:
        load_benchmark("aime24", role="exam", what="eval.exam")
    message = str(info.value)
    assert "eval.exam = 'aime24'" in message and "HuggingFaceH4/aime_2024" in message
    assert "offline" in message and "hf download HuggingFaceH4/aime_2024 --repo-type dataset" in message
    assert "aime24:data/aime24" in message


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data.train = 'gsm8k:.*does not exist.*hf download openai/gsm8k"):
        load_benchmark(f"gsm8k:{tmp_path / 'nope.jsonl'}")


def test_prompt_source_and_exam_read_benchmarks(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", GSM8K_ROWS)
    exam = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "Find n.", "answer": "7"}])
    source = PromptSource(f"gsm8k:{train}", seed=0)
    drawn = source.next(3)
    assert {r["answer"] for r in drawn} <= {"72", "2400"} and all("question" in r for r in drawn)
    assert load_exam(f"aime24:{exam}") == [{"problem": "Find n.", "answer": "7", "question": "Find n."}]


# -------------------------------------------------------------------------------- countdown
def test_countdown_loader_builds_question_and_keeps_numbers(tmp_path):
    path = tmp_path / "countdown.parquet"
    pd.DataFrame({"target": [22, 10], "nums": [[3, 5, 7], [2, 5, 1]]}).to_parquet(path)
    rows = load_benchmark(f"countdown:{path}")
    assert rows[0]["nums"] == [3, 5, 7] and rows[0]["target"] == 22 and rows[0]["answer"] == "22"
    assert "[3, 5, 7]" in rows[0]["question"] and "equals 22" in rows[0]["question"]
    json.dumps(rows)  # plain Python values (no numpy arrays) for logs and checkpoints


def test_countdown_reward_checks_numbers_and_target():
    nums, target = [3, 5, 7], 22
    cases = {
        "<answer> 3 * 5 + 7 </answer>": 1.0,
        "<answer> (7 + 5) * 3 - 14 </answer>": 0.0,   # uses 14, not given
        "<answer> 3 * 5 + 7 = 22 </answer>": 1.0,      # "= target" tolerated
        "<answer> 3 * 7 + 1 </answer>": 0.0,           # 1 not given, 5 unused
        "<answer> 5 * 5 - 3 </answer>": 0.0,           # 5 twice, 7 unused
        "<answer> 7 * 3 + 5 - 4 </answer>": 0.0,
        "<answer> 3 * 5 + 7 + 0 </answer>": 0.0,       # an extra number
        "<think> 3*5+7 </think>": 0.0,                 # no answer tag
        "<answer> \\boxed{7 + 3 * 5} </answer>": 1.0,
    }
    got = countdown_reward([""] * len(cases), list(cases), nums=[nums] * len(cases), target=[target] * len(cases))
    assert got == list(cases.values())
    assert REWARD_FUNCTIONS["countdown"] is countdown_reward


def test_countdown_exact_fractions_and_repeated_numbers():
    assert check_equation("7 / 2 * 2", [7, 2, 2], 7)
    assert check_equation("(6 - 2) * 6", [6, 6, 2], 24)
    assert not check_equation("6 / (2 - 2)", [6, 2, 2], 0)  # division by zero scores 0


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo pwned')", "3 ** 5 ** 5 ** 5", "(lambda: 1)()", "abs(-3)", "3 if 1 else 2",
    "9" * 300, "1e9", "2.5 * 2", "-3 + 5", "[1, 2]",
])
def test_countdown_never_runs_model_text(text):
    with pytest.raises(ValueError):
        evaluate_equation(text)
    assert check_equation(text, [3, 5], 8) is False


def test_countdown_trains_end_to_end_with_its_reward(tiny_model_dir, tmp_path):
    from grpo_lab.trainer import GRPOTrainer

    path = tmp_path / "countdown.jsonl"
    write_jsonl(path, [{"nums": [3, 5, 7], "target": 22}, {"nums": [2, 4], "target": 8}, {"nums": [9, 1], "target": 10}])
    cfg = load_config(None, [
        f"model.name_or_path={tiny_model_dir}", "model.dtype=float32", "model.device=cpu", "model.lora_r=4",
        f"data.train=countdown[:2]:{path}", f"eval.exam=countdown[2:]:{path}", "data.template=micro",
        "rewards.functions=[countdown, format]", "rewards.weights=[1.0, 0.1]",
        "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=4", "eval.k=1",
        f"tracking.run_dir={tmp_path / 'run'}", "tracking.wandb_mode=disabled", "tracking.progress=false",
    ])
    trainer = GRPOTrainer(cfg)
    assert sorted(r["target"] for r in trainer.prompts.rows) == [8, 22]  # the exam row is not trained on
    metrics = trainer.training_step()
    assert "rewards/countdown_reward/mean" in metrics and metrics["rewards/countdown_reward/mean"] == 0.0
