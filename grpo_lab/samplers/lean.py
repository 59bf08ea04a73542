"""The lean sampler: the Llama/Qwen2 decode step written out in plain torch, with a static KV cache.

It samples exactly what :mod:`grpo_lab.samplers.hf` samples (same tokens for the same generator;
tests/test_samplers.py holds it to that) but costs less per decoded token. A small model is bound
by per-operation overhead, not by FLOPs, so the savings come from doing fewer, larger operations:

* LoRA is merged for the rollout: W' = W + (α/r)·B·A per adapted layer (Hu et al. 2021, Eq. 3),
  so an adapted linear costs one matmul instead of three; q/k/v and gate/up are concatenated into
  one matrix each. These copies live only as long as the rollout.
* The KV cache is two preallocated (batch, kv_heads, max_len, head_dim) tensors per layer, written
  in place; attention reads the columns written so far (a view, no copy).
* The G samples of a prompt share one prefill: the prompt runs once and its cache is copied G times.

Counted with a ``TorchDispatchMode`` on SmolLM2-135M with LoRA on all seven projections (torch
2.13, transformers 5.24, peft 0.21): a decode step dispatches 142 aten operations per layer through
Hugging Face's forward and 58 through :class:`LeanDecoder` (52 since the attention mask became an
additive bias built once per step and the rotary's sign moved into a precomputed sin).

Only what `LeanDecoder.unsupported_reason` accepts runs here; ``grpo.sampler: auto`` uses it for
exactly those models and the ``hf`` sampler for the rest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grpo_lab.samplers.base import SamplingBatch, TorchSampler, sample_token


class LeanSampler(TorchSampler):
    """Samples with :class:`LeanDecoder` (Llama and Qwen2 models; see its `unsupported_reason`)."""

    name = "lean"

    def check(self, model) -> None:
        reason = LeanDecoder.unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the lean sampler cannot run this model: {reason}; use the 'hf' sampler "
                             "(grpo.sampler: hf, or auto to choose per model)")

    def decode(self, model, batch: SamplingBatch, temperature: float, top_p: float,
               generator: torch.Generator | None) -> None:
        """The sampling loop on `LeanDecoder`: one prefill per prompt, static KV cache and mask.

        Batch slots whose row has finished stay in the cache and keep running through the decoder
        (fed the token they last wrote; their logits are never sampled) until a quarter of the slots
        have finished; then the cache keeps only the live slots. Sampling always sees exactly the
        live rows, in row order, as the hf sampler does, so the generator's stream is consumed the
        same way and the two draw the same tokens.
        """
        prompt_ids, prompt_mask, num_samples = batch.prompt_ids, batch.prompt_mask, batch.num_samples
        max_new_tokens = batch.max_new_tokens
        device = prompt_ids.device
        size, prompt_len = prompt_ids.shape
        # The attention mask over every column the cache will hold: the prompt's, then ones.
        mask = torch.ones(size, prompt_len + max_new_tokens, dtype=torch.bool, device=device)
        mask[:, :prompt_len] = prompt_mask.bool()
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        first = slice(None, None, num_samples)  # one row per prompt: the samples of a prompt are contiguous
        dec = LeanDecoder(model, size // num_samples, prompt_len + max_new_tokens)
        logits = dec.forward(prompt_ids[first], positions[first], mask[first], start=0)
        dec.repeat_interleave(num_samples, end=prompt_len)
        logits = logits.repeat_interleave(num_samples, dim=0)
        next_position = positions[:, -1] + 1

        slot_row = torch.arange(size, device=device)  # the original row each cache slot holds
        live = torch.arange(size, device=device)  # the slots whose row is still being written
        step_tokens = torch.full((size,), batch.pad_id, dtype=torch.long, device=device)
        for t in range(max_new_tokens):
            live_logits = logits if len(live) == len(slot_row) else logits[live]
            tokens = sample_token(live_logits, temperature, top_p, generator, batch.banned)
            done = batch.record(tokens, slot_row[live], t)
            if t == max_new_tokens - 1:
                break
            step_tokens[live] = tokens
            if done.any():
                live = live[~done]
                if len(live) == 0:
                    break
                if 4 * len(live) <= 3 * len(slot_row):  # a quarter of the slots finished: keep only the live ones
                    dec.keep(live, end=prompt_len + t)
                    slot_row, mask, next_position = slot_row[live], mask[live], next_position[live]
                    step_tokens = step_tokens[live]
                    live = torch.arange(len(live), device=device)
            logits = dec.forward(step_tokens[:, None], next_position[:, None], mask, start=prompt_len + t)
            next_position = next_position + 1


class LeanDecoder:
    """A sampling-only forward pass for Llama/Qwen2 models, with a preallocated KV cache.

    It computes what the Hugging Face model computes (pre-norm decoder layers: RMSNorm, rotary
    attention, SwiGLU MLP; Touvron et al. 2023, "LLaMA") with fewer, larger operations (see the
    module docstring). cos/sin of the rotary embedding come from the model's own rotary module,
    for all positions once, so its scaling (linear, llama3) is the model's.

    The logits equal Hugging Face's up to float rounding (merged vs. separate LoRA matmuls), which
    tests/test_samplers.py checks, along with identical samples for a fixed generator.
    """

    SUPPORTED = ("llama", "qwen2")

    @staticmethod
    def unsupported_reason(model) -> str | None:
        """None if this model can run on the lean decoder, else why not (then use the hf sampler)."""
        base = _base_model(model)
        config = getattr(base, "config", None)
        if config is None or getattr(config, "model_type", None) not in LeanDecoder.SUPPORTED:
            return f"model_type {getattr(config, 'model_type', None)!r} is not one of {LeanDecoder.SUPPORTED}"
        if getattr(config, "hidden_act", "silu") != "silu":
            return f"hidden_act {config.hidden_act!r}"
        if getattr(config, "use_sliding_window", False) or any(
            t != "full_attention" for t in (getattr(config, "layer_types", None) or [])
        ):
            return "sliding-window attention"
        rotary = getattr(getattr(base, "model", None), "rotary_emb", None)
        if rotary is None or getattr(rotary, "rope_type", "default") not in ("default", "linear", "llama3"):
            return f"rope type {getattr(rotary, 'rope_type', None)!r} (dynamic or unknown)"
        for name, module in base.named_modules():
            if module._forward_hooks or module._forward_pre_hooks:  # it calls no module, so hooks would not run
                return f"forward hooks on {name or 'the model'}"
            if _is_lora(module):
                if not name.endswith(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
                    return f"an adapter on {name}"
                if any(module.use_dora.get(a, False) for a in module.active_adapters):
                    return "DoRA adapters"
                if not isinstance(module.get_base_layer(), torch.nn.Linear):
                    return f"{name} is not a plain Linear (quantised?)"
        return None

    def __init__(self, model, batch: int, max_len: int):
        base = _base_model(model)
        config, inner = base.config, base.model
        self.n_heads = config.num_attention_heads
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.embed = inner.embed_tokens.weight
        self.norm = (inner.norm.weight, inner.norm.variance_epsilon)
        self.lm_head = base.get_output_embeddings().weight
        self.layers = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "ln1": (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                "ln2": (layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon),
                "qkv": _fused_linear([attn.q_proj, attn.k_proj, attn.v_proj]),
                "o": _fused_linear([attn.o_proj]),
                "gate_up": _fused_linear([mlp.gate_proj, mlp.up_proj]),
                "down": _fused_linear([mlp.down_proj]),
            })
        dtype, device = self.embed.dtype, self.embed.device
        shape = (batch, self.n_kv, max_len, self.head_dim)
        self.cache = [(torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device))
                      for _ in self.layers]
        # Rotary cos/sin for every position, from the model's own module (its scaling included).
        all_positions = torch.arange(max_len, device=device)[None]
        cos, sin = inner.rotary_emb(self.embed[:1][None], all_positions)
        self.cos, self.sin = cos[0], sin[0]  # (max_len, head_dim)
        # The sign of rotate-half folded into sin: [-x2, x1]·[s1, s2] = [x2, x1]·[-s1, s2] exactly
        # (negation is exact), so the rotation is one roll and no neg/slice/cat per layer.
        half = self.head_dim // 2
        self.sin_signed = torch.cat([-self.sin[:, :half], self.sin[:, half:]], dim=-1)

    def repeat_interleave(self, n: int, end: int) -> None:
        """Copy every slot n times (slot i becomes slots i·n … i·n + n - 1): one prefill, n samples.

        Only the columns written so far (before `end`) are copied.
        """
        def repeat(buffer: torch.Tensor) -> torch.Tensor:
            out = buffer.new_empty((buffer.size(0) * n, *buffer.shape[1:]))
            out[:, :, :end] = buffer[:, :, :end].repeat_interleave(n, dim=0)
            return out

        self.cache = [(repeat(k), repeat(v)) for k, v in self.cache]

    def keep(self, slots: torch.Tensor, end: int) -> None:
        """Keep only these batch slots in the cache (finished rows leave); columns from `end` on are unwritten."""
        def take(buffer: torch.Tensor) -> torch.Tensor:
            kept = buffer.new_empty((len(slots), *buffer.shape[1:]))
            kept[:, :, :end] = buffer[slots, :, :end]
            return kept

        self.cache = [(take(k), take(v)) for k, v in self.cache]

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, start: int) -> torch.Tensor:
        """Run `input_ids` (B, S), written at cache columns [start, start + S); return the last logits (B, V).

        `mask` (B, max_len) says which cache columns are real tokens (left padding is not).
        """
        B, S = input_ids.shape
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        end = start + S
        # Which columns each query may attend to: real tokens, causally; a padding query attends to
        # itself only, so no row is fully masked (that would give NaN in the padded columns' K/V).
        allowed = mask[:, None, None, :end]
        if S > 1:
            causal = torch.ones(S, end, dtype=torch.bool, device=mask.device).tril(start)
            itself = torch.zeros(S, end, dtype=torch.bool, device=mask.device)
            itself[:, start:] = torch.eye(S, dtype=torch.bool, device=mask.device)
            allowed = (allowed & causal) | itself
        # SDPA takes the mask as an additive bias: 0 where allowed, -inf elsewhere. That is the tensor
        # SDPA builds from a boolean mask itself (bitwise the same output), but built once per call
        # instead of once per layer, and SDPA's CPU kernel runs faster on it (B 64, 75 columns:
        # 159 against 216 µs a call, docs/benchmarks.md).
        bias = torch.zeros(allowed.shape, dtype=self.embed.dtype, device=mask.device)
        bias.masked_fill_(allowed.logical_not(), float("-inf"))
        cos, sin = self.cos[positions][:, None], self.sin_signed[positions][:, None]  # (B, 1, S, D)

        x = F.embedding(input_ids, self.embed)
        for layer, (k_cache, v_cache) in zip(self.layers, self.cache):
            h = _rms_norm(x, *layer["ln1"])
            qkv = F.linear(h, *layer["qkv"]).view(B, S, H + 2 * KV, D).transpose(1, 2)
            qk = _apply_rotary(qkv[:, : H + KV], cos, sin)  # q and k rotate together: one set of ops
            k_cache[:, :, start:end] = qk[:, H:]
            v_cache[:, :, start:end] = qkv[:, H + KV :]
            att = F.scaled_dot_product_attention(
                qk[:, :H], k_cache[:, :, :end], v_cache[:, :, :end], attn_mask=bias, enable_gqa=H != KV
            )
            x = x + F.linear(att.transpose(1, 2).reshape(B, S, H * D), *layer["o"])
            gate, up = F.linear(_rms_norm(x, *layer["ln2"]), *layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, *layer["down"])
        return F.linear(_rms_norm(x[:, -1], *self.norm), self.lm_head)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as Llama computes it: in float32, then back to the input dtype, then the gain."""
    return weight * F.rms_norm(x.float(), (x.size(-1),), eps=eps).to(x.dtype)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) in the rotate-half layout that HF Llama uses.

    HF computes x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1]. Here the sign lives in
    `sin_signed` = [-s1, s2] and the halves swap with one roll: the same products, bit for bit.
    """
    return x * cos + x.roll(x.size(-1) // 2, dims=-1) * sin_signed


def _base_model(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _is_lora(module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "get_base_layer")


def _effective_weight(linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of a Linear, with the active LoRA adapters' W += (α/r)·B·A added (PEFT's own delta)."""
    if not _is_lora(linear):
        return linear.weight, linear.bias
    base = linear.get_base_layer()
    weight = base.weight
    if not linear.disable_adapters and not linear.merged:
        for name in linear.active_adapters:
            if name in linear.lora_A:
                weight = weight + linear.get_delta_weight(name).to(weight.dtype)
    return weight, base.bias


def _fused_linear(linears) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One (weight, bias) computing several Linears on the same input: their outputs concatenated."""
    parts = [_effective_weight(m) for m in linears]
    weight = torch.cat([w for w, _ in parts]) if len(parts) > 1 else parts[0][0]
    if all(b is None for _, b in parts):
        return weight, None
    bias = torch.cat([b if b is not None else w.new_zeros(w.size(0)) for w, b in parts])
    return weight, bias
