"""Experiment tracking: wandb, plus a local run directory that always loads into pandas.

Every run writes a plain directory that needs nothing but Python to read back::

    run_dir/
      config.yaml        the run's config (written atomically)
      metrics.jsonl      one JSON object per `RunLogger.log` call, each with a "step" key
      completions.jsonl  sample completions, one JSON object per row, each with a "step" key
      summary.json       final numbers (`RunLogger.summary`), written atomically
      previous/<time>/   earlier runs set aside by a fresh run in the same directory (grpo_lab.rundir)
      .lock              held by the training process (grpo_lab.rundir)
      wandb/             wandb's offline run files, when wandb is offline and WANDB_DIR is unset

wandb is a convenience on top, never a requirement: if it cannot start (no key, no network, a
broken install) we warn once and keep logging locally, so a notebook never stalls on tracking.

Why JSON lines with an fsync per line: a training run can be killed at any moment (a preempted
GPU, a notebook kernel restart). Appending one line at a time and forcing it to disk means a crash
loses at most the line being written, and `read_jsonl` skips such a torn last line with a warning.

Typical use::

    with RunLogger("runs/demo", cfg.to_dict()) as logger:
        for step in range(1, num_steps + 1):
            logger.log({"reward": 0.5, "completions/mean_length": 120.0}, step=step)
        logger.summary({"final": {"eval/pass@1": 0.4}})
    df = load_run("runs/demo")          # one row per step, df.attrs["config"] holds the config
"""

from __future__ import annotations

import glob
import json
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grpo_lab.plain import to_plain

# --------------------------------------------------------------------------------------------
# Metric names. Training names follow TRL's GRPOTrainer (REFERENCE §5) so dashboards carry over;
# the phenomenon names (REFERENCE §4) and the eval names are grpo-lab's own.

TRAIN_METRIC_NAMES: tuple[str, ...] = (
    "reward",                            # mean total reward over the generation batch
    "reward_std",                        # mean over groups of the within-group reward std
    "frac_reward_zero_std",              # fraction of groups whose rewards are all equal (no gradient)
    "completions/mean_length",           # tokens per completion
    "completions/min_length",
    "completions/max_length",
    "completions/clipped_ratio",         # fraction truncated at max_completion_length
    "completions/mean_terminated_length",  # mean length of the completions that ended with EOS
    "completions/mean_length_correct",   # REFERENCE §4: length split by correctness
    "completions/mean_length_incorrect",
    "phenomena/reflection_rate",         # fraction of completions with >= 1 reflection keyword
    "kl",                                # mean per-token k3 KL to the reference policy
    "entropy",                           # mean per-token entropy of the policy
    "clip_ratio/low_mean",               # fraction of tokens clipped at 1 - eps (negative advantage)
    "clip_ratio/high_mean",              # fraction clipped at 1 + eps (positive advantage)
    "clip_ratio/region_mean",
    "loss",                              # ~0 with num_iterations=1 although the gradient is not (TRL #3452)
    "grad_norm",
    "learning_rate",
    "num_tokens",                        # tokens seen so far (prompt + completion)
    "step_time",                         # seconds per optimisation step
)
"""Training metrics logged once per RL step. Per reward function there are also
`rewards/<fn>/mean` and `rewards/<fn>/std` (see `REWARD_METRIC_TEMPLATES`)."""

REWARD_METRIC_TEMPLATES: tuple[str, ...] = ("rewards/{fn}/mean", "rewards/{fn}/std")
"""Per-reward-function names, e.g. `rewards/accuracy_reward/mean` (TRL's convention)."""

EVAL_METRIC_NAMES: tuple[str, ...] = (
    "eval/pass@1",                 # mean correctness over k=16 samples per question (avg@16)
    "eval/cons@16",                # correctness of the majority-voted answer over 16 samples
    "eval/cons_tie_rate",          # fraction of questions whose vote was a tie (broken by a fixed rule)
    "eval/pass@16",                # unbiased pass@k: 1 - C(n-c, k) / C(n, k)
    "eval/mean_length",            # tokens per sampled answer
    "eval/mean_length_correct",
    "eval/mean_length_incorrect",
    "eval/reflection_rate",        # fraction of sampled answers with >= 1 reflection keyword
    "eval/format_rate",            # fraction in the strict R1-Zero format (a prefilled <think> included)
)
"""Held-out exam metrics (REFERENCE §3), logged at the steps where evaluation runs."""

DEFAULT_WANDB_INIT_TIMEOUT = 30.0
"""Seconds wandb.init may take before we give up on wandb. wandb's own default is 90 s, which
is how long an online run with a key but no network would otherwise hang (REFERENCE §6)."""

WANDB_INIT_GRACE_S = 1.0
"""Extra seconds our own watchdog waits on top of the timeout handed to wandb, so that wandb's
own (cleaner) timeout error normally comes first; the watchdog catches an init that ignores it."""

DEFAULT_WANDB_CALL_TIMEOUT = 30.0
"""Seconds any later call into wandb (run.log, summary.update, run.finish) may take."""

WANDB_MODES = ("online", "offline", "disabled")


# --------------------------------------------------------------------------------------------
# Small file helpers


def _atomic_write_text(path: Path, text: str) -> None:
    """Write a file so readers see either the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records, one line each, and force them to disk before returning."""
    with open(path, "a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file written by `RunLogger`.

    A torn last line (the process died while writing it: cut anywhere, even inside a UTF-8
    character, or NUL-filled by the file system) is skipped with a warning naming the file and
    line. An unparseable or non-UTF-8 line anywhere else means real corruption, not a crash, so it
    raises `ValueError` naming the file and line number. Blank lines are ignored.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            shown = raw[:80].decode("utf-8", "replace")
            if i == last:
                warnings.warn(
                    f"{path}: skipping torn last line {i + 1} (the run was probably interrupted "
                    f"while writing it): {shown!r}",
                    stacklevel=2,
                )
                continue
            why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"not valid JSON ({e.msg})"
            raise ValueError(f"{path}: line {i + 1} is {why}: {shown!r}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {i + 1} is not a JSON object: {line[:80]!r}")
        records.append(record)
    return records


def read_summary(path: str | Path) -> dict[str, Any]:
    """summary.json as a dict; a damaged one raises `ValueError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a valid summary file ({type(exc).__name__}: {exc}); delete or fix it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a valid summary file (a JSON object is expected, got {type(data).__name__})")
    return data


def _write_jsonl_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    _atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# --------------------------------------------------------------------------------------------
# RunLogger


class RunLogger:
    """Log a run to a local directory and (optionally) to wandb. Use as a context manager.

    Args:
        run_dir: the run directory; created if missing.
        config: the run's config, saved as `config.yaml` and as the wandb config. Dataclasses,
            Paths, tuples and numpy scalars are converted to plain YAML values.
        wandb_mode: "online", "offline" (default: no account needed, `wandb sync` later) or
            "disabled" (wandb writes nothing at all). The `WANDB_MODE` environment variable,
            when set, wins over this argument, so CI or a shell can switch wandb off without
            editing a notebook.
        project: wandb project name.
        run_name: wandb run name; defaults to the run directory's name.
        resume: keep the existing `metrics.jsonl` / `completions.jsonl` and append to them.
            Call `truncate_after(checkpoint_step)` next so that the steps logged after the
            checkpoint (and about to be redone) are not duplicated. Without `resume`, an earlier
            run's files in `run_dir` are moved to `run_dir/previous/<UTC time>/` (with a warning,
            grpo_lab.rundir) so a re-run cell starts clean and nothing is lost.
        wandb_init_timeout: seconds before giving up on `wandb.init` (wandb's default is 90).
        wandb_call_timeout: seconds any later call into wandb (log, summary, finish) may take;
            on a time-out wandb is switched off with one warning and logging goes on locally.

    wandb files go to `$WANDB_DIR/wandb/` when WANDB_DIR is set, else to `run_dir/wandb/`.
    Set `WANDB_SILENT=true` to keep wandb's run ids and paths off stderr (needed for nbval).
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: dict[str, Any],
        *,
        wandb_mode: str = "offline",
        project: str = "grpo-lab",
        run_name: str | None = None,
        resume: bool = False,
        wandb_init_timeout: float = DEFAULT_WANDB_INIT_TIMEOUT,
        wandb_call_timeout: float = DEFAULT_WANDB_CALL_TIMEOUT,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config = to_plain(config) if config is not None else {}
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.completions_path = self.run_dir / "completions.jsonl"
        self.summary_path = self.run_dir / "summary.json"
        self._wandb_run: Any = None  # a wandb Run while wandb is active, else None
        self.wandb_call_timeout = wandb_call_timeout
        self._warned = False
        self._closed = False

        if not resume:
            # A fresh run never overwrites an earlier one: its files move to run_dir/previous/<time>/.
            from grpo_lab.rundir import set_aside_previous_run

            set_aside_previous_run(self.run_dir)
        _atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.config, sort_keys=False))
        for path in (self.metrics_path, self.completions_path):
            if not path.exists():
                path.touch()
            elif resume:
                # Rewriting drops a torn last line from a crash; otherwise the next append would
                # turn it into a corrupt middle line that read_jsonl refuses.
                _write_jsonl_atomic(path, read_jsonl(path))
            elif path.stat().st_size > 0:
                _atomic_write_text(path, "")

        mode = os.environ.get("WANDB_MODE") or wandb_mode
        if mode not in WANDB_MODES:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {mode!r}")
        self.wandb_mode = mode
        if mode != "disabled":  # disabled: never even import wandb, so nothing touches the disk
            self._init_wandb(mode, project, run_name or self.run_dir.name, resume, wandb_init_timeout)

    def _init_wandb(self, mode: str, project: str, name: str, resume: bool, timeout: float) -> None:
        """Start wandb; on any failure warn once and carry on with local logging only."""
        id_path = self.run_dir / "wandb_run_id"
        try:
            import wandb

            kwargs: dict[str, Any] = {}
            if resume and id_path.exists():  # continue the same wandb run (online dashboards)
                kwargs = {"id": id_path.read_text().strip(), "resume": "allow"}
            self._wandb_run = _call_with_timeout(
                lambda: wandb.init(
                    project=project,
                    name=name,
                    config=self.config,
                    mode=mode,
                    # Passed explicitly: wandb reads WANDB_DIR only once per process.
                    dir=os.environ.get("WANDB_DIR") or str(self.run_dir),
                    settings=wandb.Settings(init_timeout=timeout, silent=True),
                    **kwargs,
                ),
                timeout + WANDB_INIT_GRACE_S,
                what="wandb.init",
            )
            _atomic_write_text(id_path, self._wandb_run.id)
        except Exception as e:  # noqa: BLE001 -- tracking must never stop training
            self._wandb_run = None
            self._warn_wandb(f"wandb.init failed ({type(e).__name__}: {e})")

    def _warn_wandb(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"{reason}; logging to {self.run_dir} only", stacklevel=3)

    def _wandb_call(self, fn: Callable[[], Any], what: str) -> None:
        """Call into wandb, bounded: a failure or a call that does not return within
        `wandb_call_timeout` switches wandb off (one warning) instead of raising or blocking."""
        if self._wandb_run is None:
            return
        try:
            _call_with_timeout(fn, self.wandb_call_timeout, what=what)
        except Exception as e:  # noqa: BLE001
            self._warn_wandb(f"wandb call failed ({type(e).__name__}: {e})")
            self._wandb_run = None

    @property
    def wandb_active(self) -> bool:
        """True while wandb is receiving the logs."""
        return self._wandb_run is not None

    # -- logging -------------------------------------------------------------------------------

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Record metrics for one step: a line in metrics.jsonl (synced to disk) and wandb.

        Several calls with the same step (training metrics, then eval metrics) are merged into
        one row by `load_run`. wandb drops steps lower than one it has already seen.
        """
        record = {"step": int(step), **to_plain({k: v for k, v in metrics.items() if k != "step"})}
        _append_jsonl(self.metrics_path, [record])
        if self._wandb_run is not None:
            run, data = self._wandb_run, {k: v for k, v in record.items() if k != "step"}
            self._wandb_call(lambda: run.log(data, step=int(step)), what="wandb run.log")

    def log_completions(self, step: int, rows: list[dict[str, Any]]) -> None:
        """Record sample completions, e.g. rows of {prompt, completion, reward, length, ...}.

        Each row gets a "step" key in completions.jsonl; wandb gets a Table under "completions".
        """
        records = [{"step": int(step), **to_plain(row)} for row in rows]
        _append_jsonl(self.completions_path, records)
        if self._wandb_run is not None and records:
            run = self._wandb_run
            columns = list(dict.fromkeys(k for r in records for k in r))
            data = [[_table_cell(r.get(c)) for c in columns] for r in records]

            def log_table() -> None:
                import wandb

                run.log({"completions": wandb.Table(columns=columns, data=data)}, step=int(step))

            self._wandb_call(log_table, what="wandb run.log")

    def summary(self, d: dict[str, Any]) -> None:
        """Record final numbers: merged into summary.json (atomically) and the wandb summary.

        grpo-lab's convention (read by `report.write_report`): `{"step0": {eval metrics before
        training}, "final": {eval metrics after training}, ...}`.
        """
        current: dict[str, Any] = read_summary(self.summary_path) if self.summary_path.exists() else {}
        current.update(to_plain(d))
        _atomic_write_text(self.summary_path, json.dumps(current, indent=2, ensure_ascii=False) + "\n")
        if self._wandb_run is not None:
            run, plain = self._wandb_run, to_plain(d)
            self._wandb_call(lambda: run.summary.update(plain), what="wandb summary.update")

    def truncate_after(self, step: int) -> None:
        """Drop logged lines with step > `step` (metrics and completions), atomically.

        Why: a run resumed from the checkpoint of step N redoes steps N+1, N+2, ...; their lines
        from the interrupted attempt must go so the resumed run neither loses nor duplicates rows.
        """
        for path in (self.metrics_path, self.completions_path):
            if path.exists():
                _write_jsonl_atomic(path, [r for r in read_jsonl(path) if r.get("step", -math.inf) <= step])

    def drop_metrics(self, where: Callable[[dict[str, Any]], bool]) -> None:
        """Drop the metrics lines for which `where(record)` is true, atomically.

        The trainer uses it on resume to drop the eval lines of the checkpoint's own step that
        were logged after the checkpoint was written (the eval is then redone, not duplicated).
        """
        if self.metrics_path.exists():
            records = read_jsonl(self.metrics_path)
            kept = [r for r in records if not where(r)]
            if len(kept) != len(records):
                _write_jsonl_atomic(self.metrics_path, kept)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the wandb run (local files are already on disk). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._wandb_run is not None:
            self._wandb_call(self._wandb_run.finish, what="wandb run.finish")
            self._wandb_run = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _call_with_timeout(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `fn()` in a daemon thread and wait at most `timeout` seconds for it.

    Why: `wandb.init` is meant to honour its own init_timeout, but a hung network call, a stuck
    service process or a misbehaving install must not be able to stall a training run or a
    notebook. On a timeout we raise `TimeoutError` and abandon the thread; should `fn` still
    return a run later, that run is finished quietly in the thread so nothing keeps logging.
    """
    lock = threading.Lock()
    result: dict[str, Any] = {}
    abandoned = threading.Event()

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            with lock:
                result["error"] = exc
            return
        with lock:
            result["value"] = value
            late = abandoned.is_set()
        if late and hasattr(value, "finish"):
            try:
                value.finish()
            except Exception:  # noqa: BLE001
                pass

    thread = threading.Thread(target=target, name=f"grpo-lab-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    with lock:
        if "value" not in result and "error" not in result:
            abandoned.set()
            raise TimeoutError(f"{what} did not return within {timeout:.1f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _table_cell(value: Any) -> Any:
    """wandb.Table columns must hold one type; nested values become JSON strings."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


# --------------------------------------------------------------------------------------------
# Loading runs into pandas


def _run_dir_of(path: str | Path, filename: str) -> tuple[Path, Path]:
    """Accept a run directory or a file inside it; return (run_dir, run_dir/filename)."""
    path = Path(path)
    if path.is_file() or path.suffix == ".jsonl":
        return path.parent, path
    return path, path / filename


def load_run(path: str | Path) -> pd.DataFrame:
    """Load a run directory (or its metrics.jsonl) into a DataFrame, one row per step.

    Lines logged with the same step are merged into one row (later keys win), so training and
    eval metrics of a step sit side by side; keys not logged at a step are NaN. Rows are sorted
    by step. `df.attrs` holds "config" (from config.yaml, {} if missing), "summary" (from
    summary.json, {} if missing), "run_dir" and "name" (the directory's name).
    """
    run_dir, metrics_path = _run_dir_of(path, "metrics.jsonl")
    if not metrics_path.exists():
        raise FileNotFoundError(f"no metrics.jsonl at {metrics_path}: is {run_dir} a grpo-lab run directory?")
    rows: dict[int, dict[str, Any]] = {}
    for record in read_jsonl(metrics_path):
        if "step" not in record:
            raise ValueError(f"{metrics_path}: a line has no 'step' key: {record}")
        rows.setdefault(int(record["step"]), {}).update(record)
    df = pd.DataFrame([rows[s] for s in sorted(rows)])
    if df.empty:
        df = pd.DataFrame({"step": pd.Series(dtype="int64")})
    df = df[["step"] + [c for c in df.columns if c != "step"]].reset_index(drop=True)

    config_path = run_dir / "config.yaml"
    summary_path = run_dir / "summary.json"
    df.attrs["config"] = (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}) if config_path.exists() else {}
    df.attrs["summary"] = read_summary(summary_path) if summary_path.exists() else {}
    df.attrs["run_dir"] = str(run_dir)
    df.attrs["name"] = run_dir.resolve().name
    return df


def load_runs(pattern: str | Path) -> pd.DataFrame:
    """Load every run directory matching a glob pattern (e.g. "runs/seed*") into one DataFrame.

    A `run` column names each row's run (the directory name, or its path where names clash);
    directories without a metrics.jsonl are skipped. `df.attrs["configs"]` maps run -> config.
    """
    dirs = []
    for match in sorted(glob.glob(str(pattern))):
        run_dir, metrics_path = _run_dir_of(match, "metrics.jsonl")
        if metrics_path.exists() and run_dir not in dirs:
            dirs.append(run_dir)
    if not dirs:
        raise FileNotFoundError(f"no run directories (with a metrics.jsonl) match {str(pattern)!r}")
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in dirs]
    frames, configs = [], {}
    for name, run_dir in zip(names, dirs):
        df = load_run(run_dir)
        configs[name] = df.attrs["config"]
        frames.append(df.assign(run=name))
    out = pd.concat(frames, ignore_index=True)
    out = out[["run"] + [c for c in out.columns if c != "run"]]
    out.attrs = {"configs": configs}
    return out


def load_completions(path: str | Path) -> pd.DataFrame:
    """Load completions.jsonl (given a run directory or the file) into a DataFrame."""
    run_dir, completions_path = _run_dir_of(path, "completions.jsonl")
    if not completions_path.exists():
        raise FileNotFoundError(f"no completions.jsonl at {completions_path}")
    df = pd.DataFrame(read_jsonl(completions_path))
    df.attrs["run_dir"] = str(run_dir)
    df.attrs["name"] = run_dir.resolve().name
    return df
