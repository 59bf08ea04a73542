"""A lean training forward for Llama/Qwen2 + LoRA: the log-probs of the update and the scoring pass.

The update of a small model is bound by per-operation overhead, not by FLOPs: at the micro
world's 0.5M parameters, Hugging Face's forward spends more time in Python (module calls, PEFT's
per-layer argument checks and adapter loops, building the 4-D attention mask) than in arithmetic.
This module computes the same forward as `model(input_ids, attention_mask, position_ids,
logits_to_keep=T + 1)` with a PEFT-wrapped Llama/Qwen2, written out in plain torch:

    embedding → per layer: RMSNorm, q/k/v projections, rotary, attention, o projection,
    RMSNorm, SwiGLU MLP → final RMSNorm on the kept positions → LM head

and every adapted projection as PEFT computes it (Hu et al. 2021, Eq. 3; peft.tuners.lora.Linear):

    y = W x + b + s · B(A(dropout(x))),   s = lora_alpha / r

The *operations are the same ones, in the same order, on the same tensors* as Hugging Face's and
PEFT's (nothing is fused or merged), so on a given machine the log-probs and the LoRA gradients
come out bitwise equal to the reference path (tests/test_lean_forward.py checks this, and checks
against a tolerance as well, since a future torch or transformers may reorder its own ops). What
it drops is only the Python around the arithmetic. The readable reference stays the Hugging Face
forward; `grpo.train_forward` selects between them ("hf", "lean", or "auto": lean when the model
is supported).

`per_token_logps` has the signature of the trainer's log-prob function: a batch dict with
input_ids, attention_mask, position_ids (from the mask: left padding shifts rows),
completion_ids and completion_mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from grpo_lab.grpo import entropy_from_logits, selective_log_probs
from grpo_lab.samplers.lean import LeanDecoder  # the rollout's lean decoder: the same family of models

_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def unsupported_reason(model) -> str | None:
    """None if `model` can run on the lean training forward, else why not (use Hugging Face's then).

    The rollout's lean decoder has the same needs (Llama/Qwen2, SiLU, full attention, a static
    rope, no hooks, plain LoRA on the projections); the training forward adds: SDPA attention (what
    the reference path computes with), no attention dropout while training, no gradient
    checkpointing, no adapter other than vanilla LoRA.
    """
    reason = LeanDecoder.unsupported_reason(model)
    if reason is not None:
        return reason
    base = _base_model(model)
    config = base.config
    if getattr(config, "_attn_implementation", "sdpa") != "sdpa":
        return f"attention implementation {config._attn_implementation!r} (the lean forward computes SDPA's)"
    if model.training and getattr(config, "attention_dropout", 0.0):
        return f"attention_dropout {config.attention_dropout} while training"
    # transformers ≥ 5.2x names it is_activation_checkpointing (the old name warns).
    checkpointing = getattr(base, "is_activation_checkpointing", None)
    if checkpointing is None:
        checkpointing = getattr(base, "is_gradient_checkpointing", False)
    if checkpointing:
        return "gradient checkpointing"
    for layer in base.model.layers:
        for module in (layer.self_attn, layer.mlp):
            for name in _PROJECTIONS:
                linear = getattr(module, name, None)
                if linear is None:
                    continue
                if _is_lora(linear) and getattr(linear, "lora_variant", {}):
                    return f"a LoRA variant on {name} ({sorted(linear.lora_variant)})"
    return None


def per_token_logps(model, batch: dict[str, torch.Tensor], temperature: float,
                    with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(o_t | q, o_<t) of the completion tokens (B, T), and their entropy if asked (no grad).

    The same quantity as the trainer's Hugging Face path: logits for the last T + 1 positions
    only, divided by the sampling temperature (grpo.selective_log_probs).
    """
    T = batch["completion_ids"].size(1)
    logits = forward_logits(model, batch["input_ids"], batch["attention_mask"], batch["position_ids"],
                            keep=T + 1)[:, :-1]  # the logit at position t predicts token t + 1
    logps = selective_log_probs(logits, batch["completion_ids"], temperature)
    entropy = None
    if with_entropy:  # a logged statistic, not part of the loss: no autograd graph for it
        with torch.no_grad():
            entropy = entropy_from_logits(logits, temperature)
    return logps, entropy


def forward_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                   keep: int) -> torch.Tensor:
    """Logits (B, keep, V) of the last `keep` positions, as `model(..., logits_to_keep=keep).logits`."""
    base = _base_model(model)
    inner, config = base.model, base.config
    B, L = input_ids.shape
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    scale = head_dim**-0.5
    training = model.training

    x = F.embedding(input_ids, inner.embed_tokens.weight, inner.embed_tokens.padding_idx)
    cos, sin = inner.rotary_emb(x, position_ids)  # the model's own module: its scaling, float32 as HF
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    mask = _attention_mask(attention_mask, L)
    for layer in inner.layers:
        attn, mlp = layer.self_attn, layer.mlp
        h = _rms_norm(x, layer.input_layernorm)
        q = _linear(attn.q_proj, h, training).view(B, L, -1, head_dim).transpose(1, 2)
        k = _linear(attn.k_proj, h, training).view(B, L, -1, head_dim).transpose(1, 2)
        v = _linear(attn.v_proj, h, training).view(B, L, -1, head_dim).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        gqa = {}
        if n_kv != n_heads:  # as transformers' SDPA integration: GQA in SDPA without a mask, else repeat_kv
            if mask is None:
                gqa = {"enable_gqa": True}
            else:
                k, v = _repeat_kv(k, n_heads // n_kv), _repeat_kv(v, n_heads // n_kv)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=scale,
                                             is_causal=mask is None, **gqa)
        att = att.transpose(1, 2).contiguous().reshape(B, L, -1).contiguous()
        x = x + _linear(attn.o_proj, att, training)
        h = _rms_norm(x, layer.post_attention_layernorm)
        x = x + _linear(mlp.down_proj, F.silu(_linear(mlp.gate_proj, h, training)) * _linear(mlp.up_proj, h, training),
                        training)
    x = _rms_norm(x[:, -keep:], inner.norm)  # row-wise: the same values as normalising every position
    head = base.get_output_embeddings()
    return F.linear(x, head.weight, head.bias)


def _attention_mask(attention_mask: torch.Tensor, L: int) -> torch.Tensor | None:
    """What transformers' `create_causal_mask` hands SDPA for a cache-less forward.

    No padding: None (SDPA's own causal mask, `is_causal=True`). Else a boolean (B, 1, L, L):
    key j is visible to query i when j ≤ i and j is a real token. A padding query sees nothing;
    its output is never read (positions are cut to the completion's).
    """
    if bool(attention_mask.all()):
        return None
    causal = torch.ones(L, L, dtype=torch.bool, device=attention_mask.device).tril()
    return (causal[None, None] & attention_mask.bool()[:, None, None, :]).expand(-1, 1, L, L)


def _linear(linear, x: torch.Tensor, training: bool) -> torch.Tensor:
    """An nn.Linear, or PEFT's lora.Linear as its forward computes it: W x + b, then + s·B(A(dropout(x)))."""
    if not _is_lora(linear):
        return F.linear(x, linear.weight, linear.bias)
    base = linear.get_base_layer()
    result = F.linear(x, base.weight, base.bias)
    if linear.disable_adapters or linear.merged:  # π_ref (adapters off), or weights merged by the user
        return result
    result_dtype = result.dtype  # PEFT keeps adapters in float32 under a float16/bfloat16 base, then casts back
    for name in linear.active_adapters:
        if name not in linear.lora_A:
            continue
        A, Bm = linear.lora_A[name].weight, linear.lora_B[name].weight
        dropout = linear.lora_dropout[name]
        p = getattr(dropout, "p", 0.0)  # nn.Identity when lora_dropout is 0
        a_in = F.dropout(x, p, training=training and dropout.training) if p else x
        a_in = a_in.to(A.dtype)
        scaling = linear.scaling[name]
        if result.dtype == a_in.dtype and _is_power_of_two(scaling):
            # result + s·(A x)Bᵀ as one addmm: the same bits, one op and one temporary fewer (and
            # fewer in the backward). Multiplying by a power of two is exact in floating point, so
            # s·acc + result rounds once, as result + (acc·s) does; addmm's backward scales its
            # gradients by s the same exact way. Other scalings keep PEFT's separate mul and add.
            lora_a = F.linear(a_in, A)
            result = torch.addmm(result.reshape(-1, result.size(-1)), lora_a.reshape(-1, lora_a.size(-1)),
                                 Bm.t(), alpha=scaling).view(result.shape)
        else:
            result = result + F.linear(F.linear(a_in, A), Bm) * scaling
    return result.to(result_dtype)


def _is_power_of_two(x: float) -> bool:
    """2^k for an integer k (lora_alpha / r is 2 in every recipe here: 32/16, 16/8)."""
    mantissa, _ = math.frexp(x)
    return x > 0 and mantissa == 0.5


def _rms_norm(x: torch.Tensor, norm) -> torch.Tensor:
    """LlamaRMSNorm / Qwen2RMSNorm as written there (float32 variance, then the input dtype, then the gain)."""
    dtype = x.dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """The rotate-half layout of Llama's rotary embedding (Su et al. 2021)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    b, kv, s, d = x.shape
    return x[:, :, None].expand(b, kv, n_rep, s, d).reshape(b, kv * n_rep, s, d)


def _base_model(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _is_lora(module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "get_base_layer")


def use_lean(model, train_forward: str) -> bool:
    """Whether `grpo.train_forward` = train_forward selects the lean forward for this model.

    "hf": never; "auto": when `unsupported_reason` finds nothing; "lean": always, and a model it
    cannot run is an error that says why (rather than a silent fall-back to the slow path).
    """
    if train_forward == "hf":
        return False
    reason = unsupported_reason(model)
    if train_forward == "auto":
        return reason is None
    if train_forward == "lean":
        if reason is not None:
            raise ValueError(f"grpo.train_forward = 'lean' cannot run this model: {reason}; "
                             "use 'auto' (falls back to the Hugging Face forward) or 'hf'")
        return True
    raise ValueError(f"grpo.train_forward = {train_forward!r}; allowed: 'auto', 'hf', 'lean'")
