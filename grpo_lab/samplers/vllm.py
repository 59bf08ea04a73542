"""The vllm sampler: rollouts with vLLM on the training GPU (``grpo.sampler: vllm``; extra ``[vllm]``).

Why: on one GPU, sampling is most of a GRPO step (G long completions per prompt, token by token).
vLLM's paged KV cache and continuous batching sample far faster than a Python loop over
``model(...)`` (the hf and lean samplers). vLLM runs in the same process and on the same GPU
("colocated"), holding its own copy of the frozen base weights in
``grpo.vllm_gpu_memory_utilization`` of the GPU's memory.

Syncing the policy: only the LoRA adapter trains, so each step the adapter is saved to a
temporary directory (a few MB) and handed to vLLM as a new ``LoRARequest`` (a fresh id per step,
so vLLM loads the new weights instead of reusing its cached adapter). Full fine-tuning is not
supported here (its weights would have to be copied into vLLM's model every step).

What comes back is the same :class:`grpo_lab.samplers.base.Rollout` as the PyTorch samplers: prompts
tokenised by *our* tokenizer and left-padded, completion token ids as vLLM sampled them,
right-padded, a mask up to and including the stop (EOS or a stop string), and ``truncated`` where
vLLM stopped for length. Training then recomputes every log-prob with the PyTorch model, so vLLM's
numerics never enter the loss (its sampling distribution may differ slightly from the PyTorch
model's: bf16 kernels; TRL offers an importance-sampling correction for that, not done here).
Forbidden tokens (the exam's ``eval.forbid_phrases``) are passed as a logit bias of -inf.

Status: written against vLLM's offline ``LLM`` API (``LLM.generate`` with ``SamplingParams`` and
``LoRARequest``), but **never run**: vLLM cannot be installed on the CPU-only machine this project
is developed on, and no GPU was available. Only the error paths are tested.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from grpo_lab.samplers.base import Rollout

# vLLM accepts only these values for max_lora_rank; the adapter's rank is rounded up to one.
_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class VLLMUnavailableError(RuntimeError):
    """vLLM cannot be used here (not installed, no CUDA GPU, or full fine-tuning); the message says why."""


def check_vllm_available() -> None:
    """Raise VLLMUnavailableError unless vLLM is importable and a CUDA GPU is present."""
    if importlib.util.find_spec("vllm") is None:
        raise VLLMUnavailableError(
            "grpo.sampler = vllm but vLLM is not installed. Install the extra on a machine with a CUDA GPU: "
            "pip install -e \".[vllm]\" (it brings its own torch build; see docs/scale_up.md), or set "
            "grpo.sampler = auto to sample with the built-in PyTorch samplers."
        )
    if not torch.cuda.is_available():
        raise VLLMUnavailableError(
            "grpo.sampler = vllm needs a CUDA GPU (vLLM does not sample on CPU here); set grpo.sampler = auto"
        )


class VLLMSampler:
    """A colocated vLLM engine on the base model; `generate` samples with the current LoRA adapter."""

    name = "vllm"

    def __init__(self, base_model_path: str, *, lora_rank: int, dtype: torch.dtype, max_model_len: int,
                 gpu_memory_utilization: float, seed: int = 0, trust_remote_code: bool = False,
                 reason: str = "asked for"):
        check_vllm_available()
        self.reason = reason
        from vllm import LLM  # lazy: importing vllm initialises CUDA

        self.llm = LLM(
            model=base_model_path,
            dtype={torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, "float32"),
            enable_lora=True,
            max_lora_rank=next((r for r in _VLLM_LORA_RANKS if r >= lora_rank), lora_rank),
            max_loras=1,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            trust_remote_code=trust_remote_code,
        )
        self._adapter_dir = Path(tempfile.mkdtemp(prefix="grpo-lab-vllm-lora-"))
        self._version = 0

    def sync_adapter(self, model):
        """Save the current LoRA adapter and return a LoRARequest that makes vLLM load it."""
        from vllm.lora.request import LoRARequest

        self._version += 1
        path = self._adapter_dir / f"v{self._version}"
        model.save_pretrained(path, safe_serialization=True)
        old = self._adapter_dir / f"v{self._version - 2}"  # keep the previous one while vLLM may hold it
        shutil.rmtree(old, ignore_errors=True)
        return LoRARequest(f"policy-v{self._version}", self._version, str(path))

    @classmethod
    def from_config(cls, config, model) -> VLLMSampler:
        """The sampler for `grpo.sampler: vllm` (clear errors before anything loads)."""
        from grpo_lab.models import resolve_dtype, resolve_model_path

        if not config.model.use_lora:
            raise VLLMUnavailableError("grpo.sampler = vllm needs model.use_lora = true (only the adapter is synced)")
        check_vllm_available()
        device = next(model.parameters()).device
        context = getattr(model.config, "max_position_embeddings", 4096)
        max_len = min(context, (config.grpo.max_prompt_length or context) + config.grpo.max_new_tokens)
        return cls(
            resolve_model_path(config.model.name_or_path), lora_rank=config.model.lora_r,
            dtype=resolve_dtype(config.model.dtype, device), max_model_len=max_len,
            gpu_memory_utilization=config.grpo.vllm_gpu_memory_utilization, seed=config.grpo.seed,
            trust_remote_code=config.model.trust_remote_code, reason="grpo.sampler = vllm",
        )

    @torch.no_grad()
    def generate(self, model, tokenizer, prompts: list[str], *, num_samples: int, max_new_tokens: int,
                 temperature: float, top_p: float, stop_strings: Sequence[str], generator: torch.Generator | None,
                 forbid_token_ids: Sequence[int] = ()) -> Rollout:
        """Same arguments and result as the PyTorch samplers (samples of a prompt are contiguous)."""
        from vllm import SamplingParams

        lora = self.sync_adapter(model)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item()) if generator is not None else None
        params = SamplingParams(
            n=num_samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
            stop=list(stop_strings) or None, include_stop_str_in_output=True, seed=seed,
            logit_bias={int(t): float("-inf") for t in forbid_token_ids} or None,
        )
        encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, lora_request=lora,
                                    use_tqdm=False)
        return build_rollout(tokenizer, prompts, encoded, outputs, num_samples, max_new_tokens,
                             device=next(model.parameters()).device)

    def close(self) -> None:
        shutil.rmtree(self._adapter_dir, ignore_errors=True)


def build_rollout(tokenizer, prompts: list[str], encoded: list[list[int]], outputs, num_samples: int,
                  max_new_tokens: int, device: torch.device) -> Rollout:
    """A Rollout from vLLM RequestOutputs (each with `.outputs[j].token_ids`, `.text`, `.finish_reason`)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows_prompt, rows_completion, texts, truncated, prompt_texts = [], [], [], [], []
    for prompt, ids, out in zip(prompts, encoded, outputs):
        if len(out.outputs) != num_samples:
            raise RuntimeError(f"vLLM returned {len(out.outputs)} samples for a prompt, expected {num_samples}")
        for sample in out.outputs:
            rows_prompt.append(ids)
            rows_completion.append(list(sample.token_ids)[:max_new_tokens])
            texts.append(sample.text)
            truncated.append(sample.finish_reason == "length")
            prompt_texts.append(prompt)
    P = max(len(ids) for ids in rows_prompt)
    T = max(1, max(len(ids) for ids in rows_completion))
    B = len(rows_prompt)
    prompt_ids = torch.full((B, P), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((B, P), dtype=torch.long)
    completion_ids = torch.full((B, T), pad_id, dtype=torch.long)
    completion_mask = torch.zeros((B, T), dtype=torch.long)
    for i, (p, c) in enumerate(zip(rows_prompt, rows_completion)):
        prompt_ids[i, P - len(p):] = torch.tensor(p, dtype=torch.long)  # left padding, as the sampler does
        prompt_mask[i, P - len(p):] = 1
        if c:
            completion_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            completion_mask[i, : len(c)] = 1
    return Rollout(
        prompts=prompt_texts, completions=texts, prompt_ids=prompt_ids.to(device), prompt_mask=prompt_mask.to(device),
        completion_ids=completion_ids.to(device), completion_mask=completion_mask.to(device),
        truncated=torch.tensor(truncated, dtype=torch.bool, device=device),
    )

