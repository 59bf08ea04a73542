"""Rollouts: G contiguous samples per prompt, stop strings, masks, and log-prob parity with training."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from grpo_lab.grpo import selective_log_probs
from grpo_lab.micro_world import prompt_for
from grpo_lab.models import load_tokenizer
from grpo_lab.rollout import LeanDecoder, generate, sample_token


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


# ------------------------------------------------------------------ the lean decoder (issue 5)
# Token-for-token and log-prob parity of the lean and hf samplers: tests/test_samplers.py.
def _lora_model(path, seed=0):
    """The model with LoRA adapters whose B is random, so that the adapters change the logits."""
    from grpo_lab.config import ModelConfig
    from grpo_lab.models import add_lora

    model, tok = _load(path)
    model = add_lora(model, ModelConfig(lora_r=4, lora_alpha=8))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model, tok


def test_lean_decoder_logits_match_a_full_recompute(tiny_model_dir):
    """Step by step through the static cache = one full forward over the whole left-padded sequence."""
    model, tok = _lora_model(tiny_model_dir, seed=1)
    model.eval()
    enc = tok([prompt_for("1 + 2 = ?"), prompt_for("3 + 4 + 5 + 6 + 7 + 8 = ?")], return_tensors="pt",
              padding=True, padding_side="left")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    new = torch.randint(2, len(tok), (2, 6), generator=torch.Generator().manual_seed(0))
    full_ids = torch.cat([ids, new], 1)
    full_mask = torch.cat([mask, torch.ones_like(new)], 1)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    P = ids.size(1)
    with torch.no_grad():
        expected = model(input_ids=full_ids, attention_mask=full_mask, position_ids=positions).logits
        dec = LeanDecoder(model, batch=2, max_len=full_ids.size(1))
        got = [dec.forward(ids, positions[:, :P], full_mask.bool(), start=0)]
        for t in range(new.size(1)):
            got.append(dec.forward(new[:, t : t + 1], positions[:, P + t : P + t + 1], full_mask.bool(), start=P + t))
    got = torch.stack(got, 1)  # logits after the prompt and after each new token
    torch.testing.assert_close(got, expected[:, P - 1 :], atol=1e-5, rtol=1e-5)


def test_lean_decoder_declines_what_it_cannot_compute(tiny_model_dir):
    model, tok = _load(tiny_model_dir)
    assert LeanDecoder.unsupported_reason(model) is None
    handle = model.lm_head.register_forward_hook(lambda m, i, o: o)
    assert "hook" in LeanDecoder.unsupported_reason(model)
    handle.remove()
    model.config.hidden_act = "gelu"
    assert "hidden_act" in LeanDecoder.unsupported_reason(model)
    with pytest.raises(ValueError, match="decoder"):
        generate(model, tok, [prompt_for("1 + 2 = ?")], max_new_tokens=2, decoder="fast")


def test_lean_decoder_leaves_adapters_and_modes_as_they_were(tiny_model_dir):
    """Merging is a copy for the rollout: the adapters, base weights and train/eval mode are untouched."""
    model, tok = _lora_model(tiny_model_dir)
    model.train()
    before = {n: p.clone() for n, p in model.named_parameters()}
    generate(model, tok, [prompt_for("1 + 2 = ?")], num_samples=2, max_new_tokens=5, decoder="lean")
    assert model.training
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n


@pytest.mark.parametrize("decoder", ["hf", "lean"])
def test_forbidden_tokens_are_never_sampled_and_both_decoders_agree(tiny_model_dir, decoder):
    """The causal test of reflection masks a phrase's first token; both decoders must honour the mask
    and still draw the same tokens as each other."""
    model, tok = _lora_model(tiny_model_dir)
    banned = [tok.convert_tokens_to_ids(" wait"), tok.convert_tokens_to_ids(" 7")]
    prompts = [prompt_for("1 + 2 = ?"), prompt_for("3 + 4 + 5 = ?")]

    def run(which, forbid):
        return generate(model, tok, prompts, num_samples=8, max_new_tokens=30, temperature=1.5,
                        generator=torch.Generator().manual_seed(1), decoder=which, forbid_token_ids=forbid)

    free, masked = run(decoder, ()), run(decoder, banned)
    assert any(t in banned for t in free.completion_ids[free.completion_mask.bool()].tolist())  # the test can fail
    assert not any(t in banned for t in masked.completion_ids[masked.completion_mask.bool()].tolist())
    other = run("lean" if decoder == "hf" else "hf", banned)
    assert torch.equal(masked.completion_ids, other.completion_ids)


def test_evaluate_model_with_the_reflection_phrase_forbidden_never_writes_it(tiny_model_dir):
    from grpo_lab.evaluate import evaluate_model, first_tokens

    model, tok = _load(tiny_model_dir)
    phrase = "wait , let me check"
    assert first_tokens(tok, [phrase]) == sorted({tok.convert_tokens_to_ids("wait"), tok.convert_tokens_to_ids(" wait")})
    exam = [{"question": f"{a} + {b} = ?", "answer": str(a + b)} for a, b in ((1, 2), (3, 4), (5, 6))]
    common = dict(k=8, temperature=1.5, top_p=1.0, max_new_tokens=30, template="micro", seed=0, ks=(1,))
    free = evaluate_model(model, tok, exam, **common)
    forbidden = evaluate_model(model, tok, exam, forbid_phrases=[phrase], **common)
    assert free.samples["completion"].str.contains("wait").any()  # the random model does write it
    assert not forbidden.samples["completion"].str.contains("wait").any()
