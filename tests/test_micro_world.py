"""The micro world: tokenizer, tasks, exam, corpus ladder, deterministic pretraining, the main job."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from grpo_lab import micro_world as mw
from grpo_lab.rewards import format_reward, is_correct


def test_tokenizer_round_trips_documents_losslessly():
    tok = mw.build_tokenizer()
    rng = random.Random(0)
    for _ in range(50):
        doc = mw.document(rng, mw.CorpusConfig(), set())
        ids = tok(doc, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == doc


def _gold(doc: str) -> int:
    question = doc.split(" Assistant :")[0].removeprefix("User : ").removeprefix("is ")
    return sum(int(x) for x in question.split("=")[0].split("+"))


def test_every_corpus_document_is_in_the_r1_zero_format():
    rng = random.Random(1)
    for _ in range(300):
        doc = mw.document(rng, mw.CorpusConfig(), set())
        prompt, completion = doc.split(" Assistant :", 1)
        assert format_reward([prompt], [completion]) == [1.0], doc


def test_working_is_always_right_and_guesses_are_right_at_their_configured_rates():
    """Chunked (and verified) working ends right; direct answers and one-shot sums are guesses."""
    cfg = mw.CorpusConfig()
    rng = random.Random(2)
    exact = {"check": [], "direct": [], "one_shot": [], "chunked": []}
    for _ in range(6000):
        doc, style = mw.styled_document(rng, cfg, set())
        exact[style].append(is_correct(doc.split(" Assistant :")[1], str(_gold(doc))))
    assert all(exact["chunked"]) and all(exact["check"])
    cfg_one_shot = mw.CorpusConfig(one_shot=0.5)
    for _ in range(2000):
        doc, style = mw.styled_document(rng, cfg_one_shot, set())
        if style == "one_shot":
            exact[style].append(is_correct(doc.split(" Assistant :")[1], str(_gold(doc))))
    for rung, p in (("direct", cfg.p_direct_exact), ("one_shot", cfg.p_one_shot_exact)):
        rate = sum(exact[rung]) / len(exact[rung])
        assert abs(rate - p) < 0.05, (rung, rate)


def test_only_verified_chunks_ever_show_a_wrong_value_and_the_check_corrects_it():
    rng = random.Random(2)
    cfg = mw.CorpusConfig(p_verify=1.0, p_verified_chunk_wrong=1.0)
    text = mw.working(rng, [7, 1, 5, 6, 4, 5, 7, 3], cfg, "chunked")
    assert text.count("wait , let me check") == 2
    assert text.endswith("= 38 .")
    clean = mw.working(rng, [7, 1, 5, 6, 4, 5, 7, 3], mw.CorpusConfig(p_verify=0.0), "chunked")
    assert clean == "7 + 1 + 5 + 6 = 19 . 19 + 4 + 5 + 7 + 3 = 38 ."


def test_exam_is_fixed_by_its_seed_and_matches_the_committed_file():
    exam = mw.make_exam()
    assert len(exam) == 30 and exam == mw.make_exam()
    committed = [json.loads(line) for line in mw.ensure_exam().read_text().splitlines()]
    assert [r["question"] for r in committed] == [r["question"] for r in exam]
    assert all(r["exam_seed"] == mw.EXAM_SEED for r in committed)


def test_exam_questions_never_appear_in_training_prompts_or_pretraining():
    keys = mw.exam_keys(mw.make_exam())
    sampler = mw.TaskSampler(k_min=8, k_max=9, seed=0, exclude=keys)
    questions = {r["question"] for r in sampler.sample(5000)}
    assert not questions & {r["question"] for r in mw.make_exam()}
    rng = random.Random(0)
    docs = [mw.document(rng, mw.CorpusConfig(k_min=8), keys) for _ in range(3000)]
    exam_prompts = {mw.prompt_for(r["question"]) for r in mw.make_exam()}
    assert not any(doc.split(" <think>")[0] in exam_prompts for doc in docs)


@pytest.mark.parametrize(
    "completion, rung",
    [
        (" <think> </think> <answer> 9 </answer>", "direct"),
        (" <think> 1 + 2 + 6 = 9 . </think> <answer> 9 </answer>", "one_shot"),
        (" <think> 1 + 2 = 3 . 3 + 6 = 9 . </think> <answer> 9 </answer>", "chunked"),
        (" <think> 1 + 2 = 4 . wait , let me check : 1 + 2 = 3 . </think> <answer> 3 </answer>", "verified"),
        (" <answer> 9 </answer>", "other"),
    ],
)
def test_ladder_rung_classifies_behaviours(completion, rung):
    assert mw.ladder_rung(completion) == rung


def test_pretraining_is_deterministic_for_a_seed(tmp_path):
    cfg = mw.PretrainConfig(hidden_size=32, intermediate_size=64, num_heads=2, steps=3, batch_size=4, seq_len=64,
                            warmup_steps=1)
    a = mw.pretrain(tmp_path / "a", cfg, progress=False)
    b = mw.pretrain(tmp_path / "b", cfg, progress=False)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(a)
    tok = AutoTokenizer.from_pretrained(a)
    assert model.config.model_type == "llama" and tok.eos_token == "<eos>"


def test_committed_micro_model_loads_like_any_hub_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = mw.DEFAULT_MODEL_DIR
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    info = json.loads((path / "micro_world.json").read_text())
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    assert tok.pad_token == "<pad>" and (path / "model.safetensors").exists()


def test_labelled_working_writes_the_same_corpus_and_the_truth_of_each_check():
    cfg = mw.CorpusConfig()
    a, b = random.Random(5), random.Random(5)
    for _ in range(300):
        ops = [a.randint(1, 9) for _ in range(8)]
        assert [b.randint(1, 9) for _ in range(8)] == ops
        text = mw.working(a, ops, cfg, "chunked")
        labelled, checks = mw.labelled_working(b, ops, cfg, "chunked")
        assert labelled == text  # same random draws: the pretraining corpus is unchanged
        assert len(checks) == text.count("wait")
        for check in checks:
            assert check["wrong"] == (check["shown"] != check["true"])
            assert check["corrected"] == check["wrong"]  # the corpus's checks always repair
