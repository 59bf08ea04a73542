"""Loading a causal LM and its tokenizer the Hugging Face way, and putting LoRA adapters on it.

The same function loads the embedded micro model ("micro"), a local directory or a hub id:
`AutoModelForCausalLM` / `AutoTokenizer`, weights from safetensors, `trust_remote_code` off unless
the config asks for it. With LoRA (PEFT) the reference policy needs no second copy: it is the
same model with its adapters disabled (`model.disable_adapter()`), as TRL does.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from pathlib import Path

import torch
import yaml

from grpo_lab.checkpoint import latest_checkpoint
from grpo_lab.config import Config, ModelConfig
from grpo_lab.micro_world import ensure_micro_model
from grpo_lab.model_zoo import cached_model_dir, is_known_model


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for model.device; one that is not present is a clear error, not a traceback later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"model.device = {name!r} is not a device; use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"model.device = {name!r} but CUDA is not available on this machine; use \"cpu\" or \"auto\"")
        if device.index is not None and device.index >= count:
            raise ValueError(f"model.device = {name!r} but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"model.device = {name!r} but MPS is not available on this machine; use \"cpu\" or \"auto\"")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"model.device = {name!r}: grpo-lab trains on \"cpu\", \"cuda\" or \"mps\"")
    return device


def check_adapter_dir(path: str | os.PathLike) -> Path:
    """A LoRA adapter directory to load: adapter_config.json and adapter_model.safetensors, nothing pickled.

    Why check first: PEFT would load a pickled adapter_model.bin (a malicious one fails only at
    torch's weights_only unpickler, with a traceback), and a directory with a config but no weights
    makes it look the path up on the Hugging Face hub ("Repo id must be in the form ...").
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"adapter {path}: no such directory")
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"adapter {path}: no adapter_config.json (is it a LoRA adapter or checkpoint directory?)")
    if not (path / "adapter_model.safetensors").is_file():
        pickled = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        if pickled:
            raise ValueError(
                f"adapter {path}: has {', '.join(pickled)} but no adapter_model.safetensors; grpo-lab loads adapter "
                "weights from safetensors only (pickled weights can run code when loaded). Convert them where you "
                "trust the file"
            )
        raise FileNotFoundError(f"adapter {path}: adapter_config.json but no adapter_model.safetensors")
    return path


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_model_path(name_or_path: str) -> str:
    """"micro" → the embedded micro model (pretrained on first use); a known packaged model such as
    "smollm2-135m" → its cached directory (grpo_lab.model_zoo; an error names the fetch command if it
    is not cached); otherwise a local path, which must exist, or a hub id."""
    if name_or_path == "micro":
        return str(ensure_micro_model())
    if is_known_model(name_or_path):
        return str(cached_model_dir(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    # A hub id is "org/name" (or a bare name); anything else that does not exist is a bad path.
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(
            f"model.name_or_path = {name_or_path!r}: no such directory (a local model needs config.json and "
            "weights; a hub id looks like 'Qwen/Qwen2.5-0.5B')"
        )
    return name_or_path  # a hub id: transformers resolves it (from the local cache when offline)


def _download_hint(name_or_path: str) -> str:
    """How to get a hub model onto a machine without network (empty for local paths)."""
    if Path(name_or_path).exists() or name_or_path.count("/") != 1:
        return ""
    # "org/name" is also how a relative path looks: say both readings.
    where = Path(name_or_path).expanduser().resolve()
    local = "models/" + name_or_path.split("/")[1]
    return (f"There is no local directory {where} either. If {name_or_path!r} is a hub id, get it with "
            f"`hf download {name_or_path} --local-dir {local}` where there is network, copy {local}/ here and "
            f"set --set model.name_or_path={local}.")


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer at `path`, padding on the left; one without a pad token pads with EOS."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"could not load a tokenizer from model.name_or_path = {path!r} ({type(exc).__name__}: {exc}). "
            "Without network a hub id only works if it is in the local Hugging Face cache; otherwise pass a "
            f"local directory with the tokenizer files. {_download_hint(path)}"
        ) from exc
    tokenizer = _as_saved(tokenizer, path)
    tokenizer.padding_side = "left"  # sampling appends on the right, so prompts pad on the left
    if tokenizer.pad_token is None:  # many base models ship without one: reuse EOS (handled, not an error)
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer at {path!r} has neither a pad_token nor an eos_token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer



def _as_saved(tokenizer, path: str):
    """The generic fast tokenizer when the directory saved one and AutoTokenizer swapped it.

    transformers 5 maps some model types to their own tokenizer class whatever tokenizer_config.json
    says: a Qwen2 model saved with a custom `tokenizers` tokenizer (the micro world's word-level one)
    comes back as a Qwen2Tokenizer that tokenizes differently. A directory whose tokenizer_config
    names the generic class ("TokenizersBackend" / "PreTrainedTokenizerFast") gets exactly that.
    """
    config_file = Path(path) / "tokenizer_config.json"
    if not config_file.is_file() or not (Path(path) / "tokenizer.json").is_file():
        return tokenizer
    saved_class = json.loads(config_file.read_text()).get("tokenizer_class")
    if saved_class not in ("TokenizersBackend", "PreTrainedTokenizerFast") or type(tokenizer).__name__ == saved_class:
        return tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(path)

def load_model_and_tokenizer(cfg: ModelConfig):
    """Load the model and tokenizer named by the config, on its device and dtype, with LoRA if asked.

    Returns (model, tokenizer). With cfg.use_lora the model is a `peft.PeftModel` whose base
    weights are frozen; otherwise every weight trains (full fine-tuning).
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(cfg.name_or_path)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    tokenizer = load_tokenizer(path, cfg.trust_remote_code)
    try:
        # Weights from safetensors only: a pickled .bin checkpoint can run code when unpickled.
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=cfg.trust_remote_code, use_safetensors=True
        )
    except (OSError, ValueError) as exc:
        raise OSError(
            f"could not load model.name_or_path = {cfg.name_or_path!r} ({type(exc).__name__}: {exc}). "
            "grpo-lab loads weights from safetensors files only. Without network, a hub id only works if it "
            f"is in the local Hugging Face cache; otherwise pass a local directory. {_download_hint(path)}"
        ) from exc
    model.to(device)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.use_lora:
        model = add_lora(model, cfg)
    return model, tokenizer


def add_lora(model, cfg: ModelConfig):
    """Wrap the model with PEFT LoRA adapters on cfg.lora_target_modules (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    present = {name.split(".")[-1] for name, _ in model.named_modules()}
    targets = [m for m in cfg.lora_target_modules if m in present]
    missing = sorted(set(cfg.lora_target_modules) - present)
    if not targets:
        raise ValueError(
            f"model.lora_target_modules = {cfg.lora_target_modules} matches no module of this model; "
            f"its linear layers include: {sorted(n for n in present if n.endswith('proj'))[:12]}"
        )
    if missing:
        warnings.warn(f"model.lora_target_modules: {missing} not found in the model; adapting {targets}", stacklevel=2)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
    )
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()  # PEFT + checkpointing needs grads flowing into inputs
    return get_peft_model(model, lora)


class ReferencePolicy:
    """π_ref: the base model with adapters disabled (LoRA), or a frozen copy (full fine-tuning)."""

    def __init__(self, model, use_lora: bool, needed: bool):
        self.model = model
        self.use_lora = use_lora
        self.copy = None
        if needed and not use_lora:
            self.copy = copy.deepcopy(model).eval()
            for p in self.copy.parameters():
                p.requires_grad_(False)

    @contextlib.contextmanager
    def active(self):
        """Yield the module to run as the reference policy."""
        if self.copy is not None:
            yield self.copy
        elif self.use_lora:
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.model


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def load_policy(run_dir_or_checkpoint: str | os.PathLike, device: str = "auto"):
    """The trained policy of a run: its base model with the last checkpoint's LoRA adapter.

    Accepts a run directory (uses its newest checkpoint) or a checkpoint directory. Returns
    (model, tokenizer) in eval mode.
    """
    from peft import PeftModel

    path = Path(run_dir_or_checkpoint)
    if (path / "checkpoints").exists():
        run_dir, checkpoint = path, latest_checkpoint(path)
    else:
        run_dir, checkpoint = path.parent.parent, path
    cfg = Config.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), source=str(run_dir / "config.yaml"))
    cfg.model.use_lora = False
    cfg.model.device = device
    model, tokenizer = load_model_and_tokenizer(cfg.model)
    model = PeftModel.from_pretrained(model, str(check_adapter_dir(checkpoint))).eval()
    return model, tokenizer
