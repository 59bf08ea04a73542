"""Rollouts: sample G completions for each prompt, batched, with a KV cache.

This is a small sampling loop rather than `model.generate` so that every step is visible and
cheap: prompts are left-padded so that all sequences end at the same column; position ids come
from the attention mask (`cumsum(mask) - 1`), the same rule the training forward pass uses, so
the log-probs of training match the sampler's.

Two decoders run that loop:

* `LeanDecoder` (Llama and Qwen2 families, the models this project trains): the transformer's
  decode step written out in ~40 lines of torch, with the LoRA adapters merged into the weights
  for the duration of the rollout (W + s·BA, as TRL does before handing weights to vLLM), q/k/v
  and gate/up fused into one matmul each, and a preallocated ("static") KV cache and attention
  mask that are written in place. A small model is bound by per-operation overhead, not FLOPs:
  Hugging Face's forward with PEFT costs ~200 small ops per decoded token, this one ~60.
* the Hugging Face forward with a `DynamicCache` for any other causal LM.

Both sample the same tokens for the same generator: each step draws `torch.multinomial` over the
rows still writing, in their original order, so the random stream is consumed identically
(tests/test_rollout.py checks the two decoders token for token). A finished row (EOS or a stop
string such as `</answer>`) stops being sampled at once; the lean decoder drops finished rows from
its cache when half the batch has finished (cheap, amortised), so long tails cost only the
sequences still writing.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache, LlamaForCausalLM

# transformers ≥ 5.2x calls the KV-cache argument `cache` and deprecates `past_key_values`.
_CACHE_KW = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


@dataclass
class Rollout:
    """A batch of prompts and their sampled completions (B = prompts × num_samples rows)."""

    prompts: list[str]
    completions: list[str]
    prompt_ids: torch.Tensor  # (B, P), left-padded
    prompt_mask: torch.Tensor  # (B, P)
    completion_ids: torch.Tensor  # (B, T), right-padded with the pad token
    completion_mask: torch.Tensor  # (B, T), 1 for generated tokens up to and including the stop
    truncated: torch.Tensor  # (B,) bool: hit max_new_tokens without EOS or a stop string
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(dim=1)

    def __len__(self) -> int:
        return len(self.completions)


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
    banned: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample one token per row from logits (B, V) with temperature and nucleus (top-p) filtering.

    `banned`: token ids that may never be sampled (their logits become -inf before top-p).
    """
    logits = logits.float() / temperature
    if banned is not None:
        logits = logits.index_fill(-1, banned, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p of the mass
        # (Holtzman et al. 2020); the most likely token is always kept.
        drop = probs.cumsum(dim=-1) - probs > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, sorted_idx, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _StopChecker:
    """Finds stop strings in generated text without decoding every token of every row.

    A token can complete a stop string S only if its text contains S's last character at a place
    where S ends: either S lies inside the token's text, or the text up to there is the tail of S
    (S began in earlier tokens). Those candidate tokens are found once for the vocabulary; only
    when one is sampled is that row's tail decoded and searched. ("</think>" never completes
    "</answer>", so it costs nothing.)
    """

    def __init__(self, tokenizer, stop_strings: list[str], device: torch.device):
        self.tokenizer = tokenizer
        self.stop_strings = [s for s in stop_strings if s]
        candidate, self.window = _stop_candidates(tokenizer, tuple(self.stop_strings))
        self.candidate = candidate.to(device)

    def hits(self, tokens: torch.Tensor, completion_ids: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Which of the active rows just completed a stop string with the token written at column t."""
        hit = torch.zeros_like(tokens, dtype=torch.bool)
        if not self.stop_strings:
            return hit
        for j in self.candidate[tokens].nonzero().flatten().tolist():
            tail = completion_ids[rows[j], max(0, t + 1 - self.window) : t + 1]
            text = self.tokenizer.decode(tail, skip_special_tokens=False)
            hit[j] = any(s in text for s in self.stop_strings)
        return hit


# Scanning the vocabulary costs one Python call per token (150k for Qwen): do it once per
# tokenizer and stop list, not at every rollout.
_STOP_CANDIDATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stop_candidates(tokenizer, stop_strings: tuple[str, ...]) -> tuple[torch.Tensor, int]:
    """(vocab-sized bool mask of tokens that can complete a stop string, tail window in tokens)."""
    key = (stop_strings, len(tokenizer))
    cached = _STOP_CANDIDATES.setdefault(tokenizer, {})
    if key not in cached:
        candidate = torch.zeros(len(tokenizer), dtype=torch.bool)
        window = 0
        if stop_strings:
            pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            hits = [token_id for token_id, piece in enumerate(pieces)
                    if any(_can_complete(tokenizer.convert_tokens_to_string([piece]) if piece is not None else "", s)
                           for s in stop_strings)]
            candidate[hits] = True
            window = max(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in stop_strings) + 2
        cached[key] = (candidate, window)
    return cached[key]


def _can_complete(text: str, stop: str) -> bool:
    """Whether a token with this text can be the one that completes `stop`."""
    for end, ch in enumerate(text, start=1):
        if ch == stop[-1] and (text[:end].endswith(stop) or stop.endswith(text[:end])):
            return True
    # Byte-level tokenizers may decode a lone token to a replacement character: stay safe.
    return "\ufffd" in text


@torch.no_grad()  # not inference_mode: the rollout's tensors feed the training forward pass
def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_strings: list[str] | tuple[str, ...] = ("</answer>",),
    generator: torch.Generator | None = None,
    decoder: str = "auto",
    forbid_token_ids: list[int] | tuple[int, ...] = (),
) -> Rollout:
    """Sample `num_samples` completions for every prompt; the samples of a prompt are contiguous.

    Works with any Hugging Face causal LM (PEFT-wrapped or not). `generator` makes sampling
    reproducible without touching the global RNG (evaluation uses its own, so evaluating does not
    change what training samples next). `decoder`: "auto" (the lean decoder when the model is a
    Llama/Qwen2, else Hugging Face's forward), "lean" or "hf" (to compare them).
    `forbid_token_ids`: tokens never sampled (evaluation's causal test of reflection masks the first
    token of the reflection phrase; see grpo_lab.evaluate.evaluate_model's `forbid_phrases`).
    """
    device = next(model.parameters()).device
    expanded = [p for p in prompts for _ in range(num_samples)]
    enc = tokenizer(expanded, return_tensors="pt", padding=True, padding_side="left")
    prompt_ids = enc["input_ids"].to(device)
    prompt_mask = enc["attention_mask"].to(device)
    batch = prompt_ids.size(0)
    eos_ids = _eos_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    stopper = _StopChecker(tokenizer, list(stop_strings), device)

    completion_ids = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    eos = torch.tensor(eos_ids, device=device)
    banned = torch.tensor(sorted(set(forbid_token_ids)), dtype=torch.long, device=device) if forbid_token_ids else None

    def record(tokens: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Write the tokens sampled for `rows` at column t; return which of them finished."""
        completion_ids[rows, t] = tokens
        lengths[rows] += 1
        done = torch.isin(tokens, eos) | stopper.hits(tokens, completion_ids, rows, t)
        finished[rows[done]] = True
        return done

    if decoder == "auto":
        decoder = "lean" if LeanDecoder.unsupported_reason(model) is None else "hf"
    was_training = model.training
    model.eval()
    try:
        if decoder == "lean":
            _sample_lean(model, prompt_ids, prompt_mask, num_samples, max_new_tokens, temperature, top_p, generator,
                         pad_id, record, banned)
        elif decoder == "hf":
            _sample_hf(model, prompt_ids, prompt_mask, max_new_tokens, temperature, top_p, generator, record, banned)
        else:
            raise ValueError(f"decoder={decoder!r}; allowed: 'auto', 'lean', 'hf'")
    finally:
        if was_training:
            model.train()

    width = int(lengths.max().item()) if batch else 0
    completion_ids = completion_ids[:, :width]
    completion_mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_id)
    texts = tokenizer.batch_decode(
        [ids[:n].tolist() for ids, n in zip(completion_ids, lengths.tolist())], skip_special_tokens=True
    )
    return Rollout(
        prompts=expanded,
        completions=texts,
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        truncated=~finished,
    )


def _sample_hf(model, prompt_ids, prompt_mask, max_new_tokens, temperature, top_p, generator, record,
               banned=None) -> None:
    """The sampling loop on Hugging Face's forward and a DynamicCache (any causal LM).

    Finished rows are dropped from the batch and the cache at once (`batch_select_indices`).
    """
    device = prompt_ids.device
    rows = torch.arange(prompt_ids.size(0), device=device)  # which original rows are still being written
    attention_mask = prompt_mask
    position_ids = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(
        input_ids=prompt_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        logits_to_keep=1,
        **{_CACHE_KW: cache},
    )
    next_position = position_ids[:, -1] + 1
    logits = out.logits[:, -1]

    for t in range(max_new_tokens):
        tokens = sample_token(logits, temperature, top_p, generator, banned)
        done = record(tokens, rows, t)
        if done.all() or t == max_new_tokens - 1:
            break
        if done.any():  # drop finished rows from the batch and from the KV cache
            keep = (~done).nonzero().flatten()
            cache.batch_select_indices(keep)
            rows, tokens = rows[keep], tokens[keep]
            attention_mask, next_position = attention_mask[keep], next_position[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=1)
        out = model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=next_position[:, None],
            use_cache=True,
            **{_CACHE_KW: cache},
        )
        next_position = next_position + 1
        logits = out.logits[:, -1]


def _sample_lean(model, prompt_ids, prompt_mask, num_samples, max_new_tokens, temperature, top_p, generator, pad_id,
                 record, banned=None) -> None:
    """The sampling loop on `LeanDecoder`: one prefill per prompt, static KV cache and mask.

    The G samples of a prompt share its prefill: the prompt runs once and its cache is copied G
    times (prefix sharing, as vLLM does). Batch slots whose row has finished still run through the
    decoder (fed the pad token, their logits ignored) until a quarter of the slots have finished;
    then the cache keeps only the live slots. Sampling always sees exactly the live rows, in row
    order, as `_sample_hf` does.
    """
    device = prompt_ids.device
    batch, prompt_len = prompt_ids.shape
    # The attention mask over every column the cache will hold: the prompt's, then ones.
    mask = torch.ones(batch, prompt_len + max_new_tokens, dtype=torch.bool, device=device)
    mask[:, :prompt_len] = prompt_mask.bool()
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    first = slice(None, None, num_samples)  # one row per prompt: the samples of a prompt are contiguous
    dec = LeanDecoder(model, batch // num_samples, prompt_len + max_new_tokens)
    logits = dec.forward(prompt_ids[first], positions[first], mask[first], start=0)
    dec.repeat_interleave(num_samples, end=prompt_len)
    logits = logits.repeat_interleave(num_samples, dim=0)
    next_position = positions[:, -1] + 1

    slot_row = torch.arange(batch, device=device)  # the original row each cache slot holds
    live = torch.arange(batch, device=device)  # the slots whose row is still being written
    step_tokens = torch.full((batch,), pad_id, dtype=torch.long, device=device)
    for t in range(max_new_tokens):
        live_logits = logits if len(live) == len(slot_row) else logits[live]
        tokens = sample_token(live_logits, temperature, top_p, generator, banned)
        done = record(tokens, slot_row[live], t)
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
    attention, SwiGLU MLP; Touvron et al. 2023, "LLaMA") with fewer, larger operations:

    * LoRA is merged for the rollout: W' = W + (α/r)·B·A per adapted layer (Hu et al. 2021, Eq. 3),
      so an adapted linear costs one matmul instead of three; q/k/v and gate/up are concatenated
      into one matrix each. These copies live only as long as the rollout.
    * The KV cache is two (batch, kv_heads, max_len, head_dim) tensors per layer, written in
      place; attention reads the columns written so far (a view, no copy).
    * cos/sin of the rotary embedding come from the model's own rotary module, for all positions
      once.

    The logits equal Hugging Face's up to float rounding (merged vs. separate LoRA matmuls), which
    tests/test_rollout.py checks, along with identical samples for a fixed generator.
    """

    SUPPORTED = ("llama", "qwen2")

    @staticmethod
    def unsupported_reason(model) -> str | None:
        """None if this model can run on the lean decoder, else why not (it then uses Hugging Face's)."""
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
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # (B, 1, S, D)

        x = F.embedding(input_ids, self.embed)
        for layer, (k_cache, v_cache) in zip(self.layers, self.cache):
            h = _rms_norm(x, *layer["ln1"])
            qkv = F.linear(h, *layer["qkv"]).view(B, S, H + 2 * KV, D).transpose(1, 2)
            qk = _apply_rotary(qkv[:, : H + KV], cos, sin)  # q and k rotate together: one set of ops
            k_cache[:, :, start:end] = qk[:, H:]
            v_cache[:, :, start:end] = qkv[:, H + KV :]
            att = F.scaled_dot_product_attention(
                qk[:, :H], k_cache[:, :, :end], v_cache[:, :, :end], attn_mask=allowed, enable_gqa=H != KV
            )
            x = x + F.linear(att.transpose(1, 2).reshape(B, S, H * D), *layer["o"])
            gate, up = F.linear(_rms_norm(x, *layer["ln2"]), *layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, *layer["down"])
        return F.linear(_rms_norm(x[:, -1], *self.norm), self.lm_head)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as Llama computes it: in float32, then back to the input dtype, then the gain."""
    return weight * F.rms_norm(x.float(), (x.size(-1),), eps=eps).to(x.dtype)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) in the rotate-half layout that HF Llama uses."""
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


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


def _eos_ids(tokenizer, model) -> list[int]:
    """Every token that ends a completion: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif isinstance(gen_eos, (list, tuple)):
        ids.update(int(i) for i in gen_eos)
    if not ids:
        raise ValueError("the tokenizer has no eos_token and the model's generation_config names none")
    return sorted(ids)
