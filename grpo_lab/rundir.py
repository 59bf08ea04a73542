"""Owning a run directory: one writer at a time, and a fresh run never destroys an earlier one.

Two things can silently corrupt a run directory without any crash:

* two `train` processes writing into it at once (duplicate metric lines, one removing the
  other's temporary checkpoint). `RunDirectoryLock` is an exclusive `fcntl.flock` on
  `RUN/.lock`, held for the whole run: the second process stops at once with a message naming
  the directory and the holder's pid. The kernel releases a flock when its process dies, however
  it dies, so a crashed run never leaves the directory stuck.
* a fresh (non-resumed) run started in a directory that already holds a run: its run log,
  summary and checkpoints would be overwritten piece by piece, and a kill part-way left a mix
  (the new run's first lines under the old run's summary). `set_aside_previous_run` first moves
  every file of the earlier run into `RUN/previous/<timestamp>/`, so the directory holds one run
  only and nothing is deleted.
"""

from __future__ import annotations

import errno
import os
import time
import warnings
from pathlib import Path

import yaml

from grpo_lab.config import Config, ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then a no-op (documented in README Guarantees)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
PREVIOUS_DIR = "previous"

RUN_FILES = (
    "config.yaml", "metrics.jsonl", "completions.jsonl", "watched.jsonl", "events.jsonl", "summary.json", "report.md",
    "wandb_run_id",
    "checkpoints", "checkpoints.previous", "eval", "figures", "wandb",
)
"""What a run writes into its directory (trainer, tracking.RunLogger, report.write_report)."""


class RunDirectoryBusy(OSError):
    """Another process holds the run directory's lock; the message names the directory and its pid."""


class RunDirectoryLock:
    """An exclusive, non-blocking lock on a run directory, released on `release()` or process death.

    Use as a context manager or call `acquire()` / `release()`. Acquiring twice is a no-op.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunDirectoryLock:
        if self._fd is not None or fcntl is None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            who = f"process {holder}" if holder else "another process"
            raise RunDirectoryBusy(
                f"{self.run_dir} is in use by {who} (it holds {self.path}); wait until that run ends, or "
                "set tracking.run_dir to another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunDirectoryLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def previous_run_files(run_dir: str | Path) -> list[Path]:
    """The files and folders of an earlier run in `run_dir` (empty when there is none).

    Empty run logs do not count: a directory holding only those has no run worth keeping.
    """
    run_dir = Path(run_dir)
    found = []
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir() and any(path.iterdir()):
            found.append(path)
        elif path.is_file() and (path.stat().st_size > 0 or name in ("summary.json",)):
            found.append(path)
    return found


def set_aside_previous_run(run_dir: str | Path) -> Path | None:
    """Move an earlier run's files into `run_dir/previous/<timestamp>/` and return that folder.

    Why move instead of overwrite: a fresh run that is killed early would otherwise leave the
    directory with a few of its own lines under the earlier run's summary, and the earlier
    (maybe finished) run destroyed. Nothing is deleted; `config.yaml` goes too, so the moved run
    is complete on its own. Returns None when the directory holds no earlier run.
    """
    run_dir = Path(run_dir)
    files = previous_run_files(run_dir)
    if not [p for p in files if p.name != "config.yaml"]:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = run_dir / PREVIOUS_DIR / stamp
    n = 1
    while target.exists():
        n += 1
        target = run_dir / PREVIOUS_DIR / f"{stamp}-{n}"
    target.mkdir(parents=True)
    for path in files:
        os.replace(path, target / path.name)
    warnings.warn(
        f"{run_dir} held an earlier run and this run starts afresh (not a resume): moved the earlier run's "
        f"files ({', '.join(p.name for p in files)}) to {target}",
        stacklevel=3,
    )
    return target


def check_resume_config(config: Config, run_dir: str | Path) -> None:
    """Refuse a resume whose config differs from the run's own in a key a resume cannot change.

    The run's config.yaml is what its checkpoints were made with; see config.RESUMABLE_KEYS.
    """
    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.exists():
        return
    try:
        saved_dict = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{saved_path}: unreadable ({type(exc).__name__}: {exc})") from None
    saved = Config.from_dict(saved_dict, source=str(saved_path))
    config.check_resume(saved, source=str(saved_path))
