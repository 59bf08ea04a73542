"""Rollouts: G contiguous samples per prompt, stop strings, masks, and log-prob parity with training."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from grpo_lab.grpo import selective_log_probs
from grpo_lab.micro_world import prompt_for
from grpo_lab.models import load_tokenizer
from grpo_lab.rollout import generate, sample_token


def _load(path):
    return AutoModelForCausalLM.from_pretrained(path), load_tokenizer(str(path))


def test_generate_returns_group_of_samples_per_prompt_contiguously(tiny_model_dir):
    model, tok = _load(tiny_model_dir)
    prompts = [prompt_for("1 + 2 = ?"), prompt_for("3 + 4 + 5 + 6 = ?")]
    out = generate(model, tok, prompts, num_samples=3, max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    assert out.prompts == [prompts[0]] * 3 + [prompts[1]] * 3
    assert out.completion_ids.shape[0] == 6 and out.completion_mask.shape == out.completion_ids.shape
    # Prompts are left-padded: every row's last prompt column is a real token.
    assert bool(out.prompt_mask[:, -1].all())
    # A completion that did not stop ran to the cap; masks end where each completion ended.
    assert torch.equal(out.truncated, out.lengths == 8) or bool((out.lengths[out.truncated] == 8).all())
    assert all(int(n) <= 8 for n in out.lengths)


def test_generate_is_reproducible_with_a_generator(tiny_model_dir):
    model, tok = _load(tiny_model_dir)
    prompts = [prompt_for("1 + 2 = ?")]
    a = generate(model, tok, prompts, num_samples=4, max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    b = generate(model, tok, prompts, num_samples=4, max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    assert a.completions == b.completions


def test_generation_stops_at_the_stop_string(tiny_model_dir):
    """Force the model to write '</answer>' by biasing its logits; the completion must end there."""
    model, tok = _load(tiny_model_dir)
    stop_id = tok.convert_tokens_to_ids(" </answer>")
    bias = torch.zeros(len(tok))
    bias[stop_id] = 50.0
    hook = model.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    try:
        out = generate(model, tok, [prompt_for("1 + 2 = ?")], num_samples=2, max_new_tokens=10)
    finally:
        hook.remove()
    assert all(c.endswith("</answer>") for c in out.completions)
    assert out.lengths.tolist() == [1, 1] and not out.truncated.any()


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_token(logits, 1.0, 0.7, g)) for _ in range(200)}
    assert draws == {0, 1}


def test_training_forward_log_probs_match_an_unpadded_forward(tiny_model_dir):
    """The left-padding pitfall: with position_ids = cumsum(mask) - 1 the padded batch gives the
    same log-probs as each sequence run alone without padding."""
    model, tok = _load(tiny_model_dir)
    prompts = [prompt_for("1 + 2 = ?"), prompt_for("3 + 4 + 5 + 6 + 7 + 8 = ?")]
    out = generate(model, tok, prompts, num_samples=2, max_new_tokens=6, generator=torch.Generator().manual_seed(1))
    ids = torch.cat([out.prompt_ids, out.completion_ids], 1)
    mask = torch.cat([out.prompt_mask, out.completion_mask], 1)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    T = out.completion_ids.size(1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=T + 1).logits[:, :-1]
        batched = selective_log_probs(logits, out.completion_ids)
        for i in range(len(out)):
            real = ids[i][mask[i].bool()].unsqueeze(0)
            n = int(out.lengths[i])
            alone = model(input_ids=real).logits[:, -n - 1 : -1]
            expected = selective_log_probs(alone, real[:, -n:])[0]
            torch.testing.assert_close(batched[i, :n], expected, atol=1e-5, rtol=1e-5)
