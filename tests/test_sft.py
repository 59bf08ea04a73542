"""SFT with the prompt masked out, micro cold-start data, rejection sampling, distillation students."""

from __future__ import annotations

import pytest
import torch

from grpo_lab.micro_world import build_tokenizer, exam_keys, make_exam
from grpo_lab.rewards import format_reward, is_correct
from grpo_lab.sft import (
    IGNORE_INDEX,
    SFTConfig,
    micro_cold_start,
    micro_student,
    rejection_sample,
    save_model,
    sft_batch,
    sft_loss,
    train_sft,
)


def test_sft_batch_labels_only_the_completion_and_eos():
    tok = build_tokenizer()
    batch = sft_batch(tok, ["User : 1 + 2 = ? Assistant :", "User : 3 = ? Assistant :"],
                      [" <think> </think> <answer> 3 </answer>", " <answer> 3 </answer>"])
    for i, (prompt, completion) in enumerate([("User : 1 + 2 = ? Assistant :", " <think> </think> <answer> 3 </answer>"),
                                              ("User : 3 = ? Assistant :", " <answer> 3 </answer>")]):
        n_prompt = len(tok(prompt)["input_ids"])
        labels = batch["labels"][i]
        assert (labels[:n_prompt] == IGNORE_INDEX).all()  # the prompt is not learned
        target = labels[labels != IGNORE_INDEX].tolist()
        assert target[-1] == tok.eos_token_id  # the model learns to stop
        assert tok.decode(target[:-1]) == completion
        # The model reads prompt + completion exactly as it would sample it.
        n = int(batch["attention_mask"][i].sum())
        assert tok.decode(batch["input_ids"][i, :n].tolist(), skip_special_tokens=True) == prompt + completion
    assert (batch["labels"][1, int(batch["attention_mask"][1].sum()):] == IGNORE_INDEX).all()  # padding


def test_sft_loss_ignores_prompt_tokens(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    completion = " <think> </think> <answer> 3 </answer>"
    a = sft_loss(model, sft_batch(tok, ["User : 1 + 2 = ? Assistant :"], [completion]))
    b = sft_loss(model, sft_batch(tok, ["User : 1 + 2 = ? Assistant :"], [completion]))
    torch.testing.assert_close(a, b)
    # By hand: mean -log p over the completion's tokens and EOS only.
    batch = sft_batch(tok, ["User : 1 + 2 = ? Assistant :"], [completion])
    logp = model(input_ids=batch["input_ids"]).logits.log_softmax(-1)[0]
    n_prompt = len(tok("User : 1 + 2 = ? Assistant :")["input_ids"])
    ids = batch["input_ids"][0]
    by_hand = -torch.stack([logp[t - 1, ids[t]] for t in range(n_prompt, len(ids))]).mean()
    torch.testing.assert_close(a, by_hand)


def test_train_sft_learns_a_completion_full_and_lora(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer()
    prompts, completions = ["User : 1 + 2 = ? Assistant :"] * 8, [" <think> 1 + 2 = 3 . </think> <answer> 3 </answer>"] * 8
    batch = sft_batch(tok, prompts[:1], completions[:1])
    for lora in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        if lora:
            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]))
            frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
        before = sft_loss(model, batch).item()
        losses = train_sft(model, tok, prompts, completions, SFTConfig(epochs=15, batch_size=4, lr=3e-2 if lora else 1e-2))
        assert len(losses) == 15 * 2
        assert sft_loss(model, batch).item() < (0.9 if lora else 0.5) * before  # a zero-init adapter starts slowly
        if lora:  # only the adapters moved
            assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)


def test_train_sft_refuses_empty_data_and_frozen_models(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="no training examples"):
        train_sft(model, tok, [], [])
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        train_sft(model, tok, ["a"], ["b"])
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        sft_batch(tok, ["a", "b"], ["c"])


def test_micro_cold_start_is_long_checked_correct_and_off_the_exam():
    rows = micro_cold_start(50, seed=1)
    assert len(rows) == 50
    exam = {r["question"] for r in make_exam()}
    assert exam_keys(make_exam())  # the exam exists
    for r in rows:
        assert r["prompt"] == f"User : {r['question']} Assistant :"
        assert "wait , let me check" in r["completion"]
        assert is_correct(r["completion"], r["answer"])
        assert str(sum(int(x) for x in r["question"].removesuffix(" = ?").split(" + "))) == r["answer"]
        assert r["question"] not in exam
    assert format_reward([r["prompt"] for r in rows], [r["completion"] for r in rows]) == [1.0] * 50
    assert micro_cold_start(5, seed=1) == rows[:5]  # reproducible
    every_chunk = micro_cold_start(20, seed=1, p_verify=1.0, min_checks=2)
    assert all(r["completion"].count("wait") >= 2 and is_correct(r["completion"], r["answer"]) for r in every_chunk)
    assert all(r["completion"].count("wait") == 0 for r in micro_cold_start(5, p_verify=0.0, min_checks=0))
    with pytest.raises(ValueError, match="needs p_verify"):
        micro_cold_start(1, p_verify=0.0)


def test_rejection_sampling_keeps_only_correct_formatted_samples(tiny_model_dir):
    """After SFT on one question's answer, the tiny model answers it; rejection keeps only right ones."""
    from transformers import AutoModelForCausalLM

    # build_tokenizer(), not the fixture directory's: AutoTokenizer reloads it as a Qwen2Tokenizer
    # (the config says qwen2), which drops the micro world's words.
    tok = build_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [{"question": "1 + 2 = ?", "answer": "3"}, {"question": "4 + 4 = ?", "answer": "8"}]
    # Teach it to answer "3" to everything: right for the first question, wrong for the second.
    train_sft(model, tok, ["User : 1 + 2 = ? Assistant :", "User : 4 + 4 = ? Assistant :"] * 4,
              [" <think> </think> <answer> 3 </answer>"] * 8, SFTConfig(epochs=20, batch_size=8, lr=1e-2))
    kept, stats = rejection_sample(model, tok, rows, k=6, max_new_tokens=12, seed=0)
    assert stats["samples"] == 12
    assert kept and all(r["question"] == "1 + 2 = ?" and is_correct(r["completion"], "3") for r in kept)
    assert stats["kept"] == len(kept) and stats["acceptance_rate"] == len(kept) / 12
    assert stats["questions_solved"] == 0.5
    assert all(r["length"] > 0 for r in kept)


def test_micro_student_is_smaller_and_saves_like_a_hub_model(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from grpo_lab.sft import num_parameters

    assert micro_student()[0].config.num_hidden_layers == 2  # the default keeps 2 layers
    student, tok = micro_student(hidden_size=32, num_layers=1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert num_parameters(student) < 60_000
    assert student.config.num_hidden_layers == 1 and student.config.hidden_size == 32
    save_model(student, tok, tmp_path / "student")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    ids = tok(["User : 1 + 2 = ? Assistant :"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(again(**ids).logits, student(**ids).logits)
    # A LoRA model is saved with its adapters merged in.
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False))
    with torch.no_grad():
        expected = lora(**ids).logits
    save_model(lora, tok, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    with torch.no_grad():
        torch.testing.assert_close(merged(**ids).logits, expected, rtol=1e-4, atol=1e-4)
