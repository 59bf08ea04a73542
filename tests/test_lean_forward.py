"""The lean training forward (grpo_lab/lean_forward.py) against the Hugging Face + PEFT forward (issue 18).

The lean forward must compute what `model(input_ids, attention_mask, position_ids, logits_to_keep)`
computes: the same completion log-probs, the same entropy, the same gradients of the LoRA weights,
with adapters on (the policy) and off (the reference), with left and right padding, with grouped-
query attention and biases (Qwen2), with LoRA dropout, and on the real SmolLM2-135M when it is
cached. It runs the same operations in the same order, so on one machine the results are bitwise
equal; the tolerance checks say how close they are should a library version reorder its own ops.
"""

from __future__ import annotations

import pytest
import torch

from grpo_lab.config import ConfigError, ModelConfig, load_config
from grpo_lab.data import format_prompt
from grpo_lab.grpo import entropy_from_logits, selective_log_probs
from grpo_lab.lean_forward import per_token_logps, unsupported_reason, use_lean
from grpo_lab.models import load_model_and_tokenizer, trainable_parameters
from grpo_lab.rollout import generate

QUESTIONS = ["1 + 2 + 3 = ?", "14 + 4 = ?", "7 + 8 + 9 + 10 = ?"]


def _model(name_or_path: str, lora_dropout: float = 0.0, dtype: str = "float32"):
    """A LoRA-wrapped model whose adapters matter (B ≠ 0), so policy and reference differ."""
    model, tok = load_model_and_tokenizer(ModelConfig(name_or_path=name_or_path, dtype=dtype, device="cpu",
                                                      lora_dropout=lora_dropout))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model, tok


def _batch(model, tok, template: str = "micro", max_new_tokens: int = 24) -> dict[str, torch.Tensor]:
    """A sampled batch as the trainer builds it: left-padded prompts, right-padded completions."""
    prompts = [format_prompt(q, template, tok) for q in QUESTIONS]
    r = generate(model, tok, prompts, num_samples=3, max_new_tokens=max_new_tokens, stop_strings=[],
                 generator=torch.Generator().manual_seed(0))
    attention_mask = torch.cat([r.prompt_mask, r.completion_mask], dim=1)
    return {
        "input_ids": torch.cat([r.prompt_ids, r.completion_ids], dim=1),
        "attention_mask": attention_mask,
        "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0),
        "completion_ids": r.completion_ids,
        "completion_mask": r.completion_mask,
    }


def _unpadded(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The rows of the longest prompt, cut to the shortest completion: no padding anywhere."""
    P = batch["input_ids"].size(1) - batch["completion_ids"].size(1)
    rows = batch["attention_mask"][:, :P].all(1)
    T = int(batch["completion_mask"][rows].sum(1).min())
    part = {k: batch[k][rows, : P + T] for k in ("input_ids", "attention_mask", "position_ids")}
    part["completion_ids"] = batch["completion_ids"][rows, :T]
    part["completion_mask"] = batch["completion_mask"][rows, :T]
    assert part["attention_mask"].all() and T >= 2
    return part


def _hf_logps(model, batch, temperature: float, with_entropy: bool = False):
    """The reference path: the Hugging Face forward through PEFT, as the trainer computes log-probs."""
    T = batch["completion_ids"].size(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=T + 1, use_cache=False).logits[:, :-1]
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits, temperature)
    return selective_log_probs(logits, batch["completion_ids"], temperature), entropy


def _logps_and_grads(model, batch, fn, temperature: float = 0.7, seed: int = 0):
    """Log-probs, entropy and the LoRA weights' gradients of a masked-mean loss (as the update's)."""
    model.train()
    torch.manual_seed(seed)  # LoRA dropout draws from the global generator: the same draws for both paths
    logps, entropy = fn(model, batch, temperature, with_entropy=True)
    mask = batch["completion_mask"]
    ((logps * mask).sum() / mask.sum()).backward()
    params = trainable_parameters(model)
    grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    return logps.detach(), entropy, grads


def _assert_same(model, batch, bitwise: bool = True):
    hf = _logps_and_grads(model, batch, _hf_logps)
    lean = _logps_and_grads(model, batch, per_token_logps)
    mask = batch["completion_mask"].bool()
    assert hf[0][mask].abs().sum() > 0  # real log-probs, not an empty comparison
    torch.testing.assert_close(lean[0], hf[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lean[1], hf[1], rtol=1e-5, atol=1e-6)
    assert len(lean[2]) == len(hf[2]) > 0
    for g_lean, g_hf in zip(lean[2], hf[2]):
        assert g_hf.abs().sum() > 0
        torch.testing.assert_close(g_lean, g_hf, rtol=1e-4, atol=1e-7)
    if bitwise:  # same ops, same order, same machine: not one bit differs
        assert torch.equal(lean[0], hf[0]) and torch.equal(lean[1], hf[1])
        assert all(torch.equal(a, b) for a, b in zip(lean[2], hf[2]))


@pytest.fixture(scope="module")
def micro():
    return _model("micro")


@pytest.fixture(scope="module")
def micro_batch(micro):
    batch = _batch(*micro)
    assert not batch["attention_mask"].all()  # left and right padding both present
    return batch


# -------------------------------------------------------------------------------- parity
def test_micro_model_log_probs_and_lora_gradients_equal_the_hf_path(micro, micro_batch):
    _assert_same(micro[0], micro_batch)


def test_micro_model_without_padding_equals_the_hf_path(micro, micro_batch):
    _assert_same(micro[0], _unpadded(micro_batch))  # SDPA's own causal mask, as HF then uses


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_base_with_float32_adapters_equals_the_hf_path(dtype):
    """PEFT keeps the adapters in float32 under a 16-bit base and casts each layer's output back;
    the lean forward once skipped that cast and crashed at the next matmul (model.dtype=float16)."""
    model, tok = _model("micro", dtype=dtype)
    assert {p.dtype for p in trainable_parameters(model)} == {torch.float32}
    assert next(p for n, p in model.named_parameters() if "lora" not in n).dtype == getattr(torch, dtype)
    _assert_same(model, _batch(model, tok))


def test_reference_pass_with_adapters_off_equals_the_hf_path(micro, micro_batch):
    model = micro[0]
    model.eval()
    with torch.no_grad(), model.disable_adapter():
        ref_hf, _ = _hf_logps(model, micro_batch, 1.0)
        ref_lean, _ = per_token_logps(model, micro_batch, 1.0)
        policy_off = per_token_logps(model, micro_batch, 1.0)[0]
    with torch.no_grad():
        policy_on, _ = per_token_logps(model, micro_batch, 1.0)
    assert torch.equal(ref_lean, ref_hf) and torch.equal(policy_off, ref_lean)
    assert not torch.allclose(policy_on, ref_lean)  # the adapters did act when on


def test_qwen2_with_grouped_query_attention_and_biases_equals_the_hf_path(tiny_model_dir):
    model, tok = _model(str(tiny_model_dir))
    assert model.get_base_model().config.num_key_value_heads < model.get_base_model().config.num_attention_heads
    assert model.get_base_model().model.layers[0].self_attn.q_proj.get_base_layer().bias is not None
    batch = _batch(model, tok)
    _assert_same(model, batch)
    _assert_same(model, _unpadded(batch))  # GQA inside SDPA (no mask) rather than repeated K/V


def test_lora_dropout_draws_the_same_masks_as_peft():
    model, tok = _model("micro", lora_dropout=0.3)
    batch = _batch(model, tok)
    _assert_same(model, batch)
    a = _logps_and_grads(model, batch, per_token_logps, seed=1)[0]
    b = _logps_and_grads(model, batch, per_token_logps, seed=2)[0]
    assert not torch.equal(a, b)  # dropout does act in training mode


# ------------------------------------------------------------------------------ selection
def test_train_forward_selects_lean_only_for_a_supported_model(micro):
    model = micro[0]
    assert use_lean(model, "auto") and use_lean(model, "lean") and not use_lean(model, "hf")
    handle = model.get_base_model().model.layers[0].mlp.register_forward_hook(lambda *a: None)
    try:  # a hook would be skipped by the lean forward: auto falls back, lean refuses and says why
        assert unsupported_reason(model) is not None
        assert not use_lean(model, "auto")
        with pytest.raises(ValueError, match="train_forward = 'lean' cannot run this model: forward hooks"):
            use_lean(model, "lean")
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="allowed: 'auto', 'hf', 'lean'"):
        use_lean(model, "fast")


def test_train_forward_config_key_is_checked():
    from grpo_lab.cli import packaged_config

    cfg = load_config(packaged_config("micro_r1_zero"))
    assert cfg.grpo.train_forward == "auto"
    assert cfg.with_overrides(["grpo.train_forward=hf"]).grpo.train_forward == "hf"
    with pytest.raises(ConfigError, match="grpo.train_forward"):
        cfg.with_overrides(["grpo.train_forward=fast"])


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_smollm2_log_probs_and_lora_gradients_equal_the_hf_path():
    from grpo_lab import model_zoo

    try:
        model_zoo.cached_model_dir("smollm2-135m")
    except model_zoo.ModelNotFetchedError as exc:  # not cached on this machine: nothing to compare
        pytest.skip(f"SmolLM2-135M is not cached: {exc}")
    model, tok = _model("smollm2-135m")
    batch = _batch(model, tok, template="r1_chat_think", max_new_tokens=12)
    _assert_same(model, batch)


def test_a_bfloat16_run_trains_with_the_lean_forward(tiny_model_dir, tiny_exam, tmp_path):
    """End to end: the lean update forward (train_forward=lean) under a bfloat16 base model."""
    from grpo_lab.trainer import GRPOTrainer
    from tests.conftest import tiny_config

    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=2, train_forward="lean").with_overrides(
        ["model.dtype=bfloat16"])
    trainer = GRPOTrainer(cfg, run_dir=tmp_path / "run")
    trainer.train()
    assert trainer._lean and trainer.step == 2
