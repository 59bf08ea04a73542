"""Checkpoint verification: a manifest of sizes and hashes, and falling back to the newest valid one.

A checkpoint directory is renamed into place only when it is complete (`save_checkpoint`),
so a crash cannot leave half of one behind. A checkpoint can still be damaged afterwards: a disk
that filled up or failed, a copy that was cut short, a file edited by hand. Without a check, resume
would stop with a traceback from safetensors, torch or json that names no file, and never try the
intact checkpoint before it. So `save_checkpoint` writes `manifest.json` last (the size and SHA-256
of every other file), and `find_valid_checkpoint` walks the checkpoints newest first, skipping the
ones whose files do not match their manifest, with a warning that says which file and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grpo_lab.run_state import RunState

MANIFEST = "manifest.json"
"""The file a checkpoint's manifest is written to; written after every other file of the checkpoint."""

REQUIRED_FILES = ("trainer_state.json", "optimizer.pt", "rng_state.pt")
"""Files every checkpoint holds besides its weights (adapter_model.safetensors or model*.safetensors)."""


class CheckpointCorrupt(ValueError):
    """A checkpoint's files do not match its manifest (or cannot be read); the message names the file."""


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (checkpoints and fetched models are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str | Path) -> Path:
    """Record the size and SHA-256 of every file in a (not yet renamed) checkpoint directory.

    Written last and synced, so a checkpoint with a manifest had all its files complete when the
    manifest was made.
    """
    directory = Path(directory)
    files = {
        p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    path = directory / MANIFEST
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"version": 1, "files": files}, indent=1))
        f.flush()
        os.fsync(f.fileno())
    return path


def verify_checkpoint(directory: str | Path) -> None:
    """Raise `CheckpointCorrupt` naming the first file that is missing, truncated or changed.

    A checkpoint written before manifests existed (no manifest.json) is checked for its required
    files and a readable trainer_state.json only.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        _verify_without_manifest(directory)
        return
    try:
        files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointCorrupt(f"{manifest_path}: unreadable manifest ({type(exc).__name__}: {exc})") from None
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointCorrupt(f"{path}: missing (listed in {MANIFEST})")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointCorrupt(f"{path}: {size} bytes, the manifest says {expected['size']} (truncated or changed)")
        if sha256_file(path) != expected["sha256"]:
            raise CheckpointCorrupt(f"{path}: its SHA-256 differs from the manifest's (the file was changed or damaged)")


def _verify_without_manifest(directory: Path) -> None:
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise CheckpointCorrupt(f"{directory / name}: missing")
    if not list(directory.glob("*.safetensors")):
        raise CheckpointCorrupt(f"{directory}: no *.safetensors weights")
    try:
        json.loads((directory / "trainer_state.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointCorrupt(f"{directory / 'trainer_state.json'}: not valid JSON ({exc})") from None


def checkpoints_newest_first(run_dir: str | Path) -> list[Path]:
    """The run's renamed-into-place checkpoint directories (step-NNNNNN), newest first."""
    root = Path(run_dir) / "checkpoints"
    return sorted((p for p in root.glob("step-*") if p.is_dir()), reverse=True)


def find_valid_checkpoint(run_dir: str | Path, warn: bool = True) -> Path | None:
    """The newest checkpoint that passes `verify_checkpoint`, or None when there is none.

    Each newer checkpoint that fails is skipped with a warning naming it, the damaged file and why.
    """
    for checkpoint in checkpoints_newest_first(run_dir):
        try:
            verify_checkpoint(checkpoint)
        except CheckpointCorrupt as exc:
            if warn:
                warnings.warn(f"skipping checkpoint {checkpoint}: {exc}", stacklevel=2)
            continue
        return checkpoint
    return None


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest intact checkpoint of a run (half-written and damaged ones are skipped, with a warning)."""
    found = find_valid_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"no intact checkpoint in {Path(run_dir) / 'checkpoints'}")
    return found


# --------------------------------------------------------------------------------------------
# Writing and reading a whole checkpoint: the weights (model.save_pretrained) + the run state


def save_checkpoint(run_dir: str | Path, step: int, model, state: RunState,
                    eval_metrics: dict[str, float] | None = None, keep: int = 2) -> Path:
    """Write RUN/checkpoints/step-NNNNNN atomically: adapter (or full weights), run state, manifest.

    Everything goes to a temporary directory first, which is renamed into place when complete:
    a checkpoint directory either exists whole or not at all, whenever the process dies. The
    manifest is written last. The newest `keep` checkpoints are kept.
    """
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp, safe_serialization=True)
        state.save(tmp, eval_metrics)
        write_manifest(tmp)  # last: sizes and hashes of the complete files, checked on resume
    except OSError as exc:  # e.g. a full disk: say which checkpoint, what is intact, how to go on
        previous = find_valid_checkpoint(run_dir, warn=False)
        intact = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise OSError(f"writing checkpoint {final.name} in {root} failed ({exc}); {intact}. Free space "
                      f"and resume: grpo-lab train --resume {run_dir}") from exc
    if final.exists():  # never delete the only copy before its replacement is in place
        old = root / f".old-step-{step:06d}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    for stale in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, model, state: RunState, use_lora: bool) -> dict[str, float] | None:
    """Restore the weights and the run state; returns the checkpoint step's exam metrics, if it ran."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    if use_lora:
        set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    else:
        weights = {}
        for shard in sorted(path.glob("*.safetensors")):  # model.safetensors, or shards of a big model
            weights.update(load_file(str(shard)))
        model.load_state_dict(weights, strict=False)
    return state.load(path)


def load_newest_valid_checkpoint(run_dir: str | Path, load: Callable[[Path], Any]) -> Path | None:
    """Load (`load(path)`) the newest checkpoint that verifies, skipping damaged ones with a warning each.

    A checkpoint with a manifest that verifies but does not load raises (that is not damage but,
    e.g., a different model). One written before manifests existed is skipped if it does not load.
    When checkpoints exist but none is usable, raise rather than silently start from step 0.
    """
    candidates = checkpoints_newest_first(run_dir)
    reasons = []
    for checkpoint in candidates:
        try:
            verify_checkpoint(checkpoint)
        except CheckpointCorrupt as exc:
            reasons.append(str(exc))
            warnings.warn(f"skipping checkpoint {checkpoint.name}: {exc}", stacklevel=4)
            continue
        has_manifest = (checkpoint / MANIFEST).exists()
        try:
            load(checkpoint)
        except Exception as exc:
            if has_manifest:
                if hasattr(exc, "add_note"):  # Python ≥ 3.11
                    exc.add_note(f"grpo-lab: while loading checkpoint {checkpoint}")
                raise
            reason = f"{checkpoint}: could not be loaded ({type(exc).__name__}: {exc})"
            reasons.append(reason)
            warnings.warn(f"skipping checkpoint {checkpoint.name}: {reason}", stacklevel=4)
            continue
        if reasons:
            warnings.warn(f"resuming from {checkpoint} (the newest intact checkpoint)", stacklevel=4)
        return checkpoint
    if candidates:
        raise CheckpointCorrupt(
            f"none of the {len(candidates)} checkpoints in {Path(run_dir) / 'checkpoints'} is intact: "
            + "; ".join(reasons) + ". Start a fresh run (without --resume) to train from step 0"
        )
    return None
